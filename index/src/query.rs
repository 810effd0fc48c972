//! A user's search turned into words for a full-text index. The words are
//! letters and digits only and are passed as quoted terms (and as
//! parameters, never spliced into SQL), so nothing a user types is read as
//! query syntax.

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

/// The words of `query`, lower-cased: runs of letters and digits, at most
/// [`MAX_WORDS`] of at most [`MAX_WORD`] characters.
pub(crate) fn words(query: &str) -> Result<Vec<String>, QueryError> {
    let words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(MAX_WORDS)
        .map(|w| w.chars().take(MAX_WORD).collect::<String>().to_lowercase())
        .collect();
    if words.is_empty() {
        return Err(QueryError::NoWords);
    }
    Ok(words)
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
}
