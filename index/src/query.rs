//! A user's search turned into words for a full-text index. The words are
//! letters and digits only and are passed as quoted terms (and as
//! parameters, never spliced into SQL), so nothing a user types is read as
//! query syntax.

use std::collections::BTreeSet;
use std::fmt;

/// Most words in a search.
const MAX_WORDS: usize = 16;
/// Longest word kept, in characters.
const MAX_WORD: usize = 64;

/// Why a search was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryError {
    /// No letters or digits in it.
    NoWords,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::NoWords => {
                f.write_str("the search has no words (letters or digits) to look for")
            }
        }
    }
}

impl std::error::Error for QueryError {}

/// Runs of letters and digits in `text`, each cut to [`MAX_WORD`]
/// characters and lower-cased: a name's words and a search's are made
/// alike, so they meet.
fn split(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().take(MAX_WORD).collect::<String>().to_lowercase())
}

/// The words of `query`: at most [`MAX_WORDS`] of them.
pub(crate) fn words(query: &str) -> Result<Vec<String>, QueryError> {
    let words: Vec<String> = split(query).take(MAX_WORDS).collect();
    if words.is_empty() {
        return Err(QueryError::NoWords);
    }
    Ok(words)
}

/// Every word of a torrent's name, each once (what a search finds it by).
pub(crate) fn name_words(name: &str) -> BTreeSet<String> {
    split(name).collect()
}

/// An FTS5 match expression for `query`: every word, each a quoted term
/// (implicitly AND-ed).
pub fn fts_terms(query: &str) -> Result<String, QueryError> {
    Ok(words(query)?
        .iter()
        .map(|w| format!("\"{w}\""))
        .collect::<Vec<_>>()
        .join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_words_survive() {
        assert_eq!(
            fts_terms("Ubuntu 24.04 ISO").expect("ok"),
            "\"ubuntu\" \"24\" \"04\" \"iso\""
        );
        assert_eq!(
            fts_terms("x\" OR 1=1; DROP TABLE torrents; --").expect("ok"),
            "\"x\" \"or\" \"1\" \"1\" \"drop\" \"table\" \"torrents\""
        );
        assert_eq!(fts_terms("*:^()\"-"), Err(QueryError::NoWords));
        assert_eq!(words(&"a ".repeat(100)).expect("ok").len(), MAX_WORDS);
    }

    #[test]
    fn a_name_and_a_search_make_the_same_words() {
        let name = format!("The.MATRIX.1999.1080p.x264-GRP {}", "é".repeat(100));
        let stored = name_words(&name);
        assert_eq!(stored.len(), 7);
        for w in words(&name).expect("ok") {
            assert!(stored.contains(&w), "{w}");
        }
        assert!(stored.contains(&"é".repeat(MAX_WORD)));
    }
}
