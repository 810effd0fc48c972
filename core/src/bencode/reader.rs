//! `Reader`: a pull parser that walks bencode token by token without
//! building a tree, for hot paths that read a few known keys out of small
//! messages (KRPC). Same rules and errors as the tree decoder; keys are not
//! checked for order.

use super::decode::Scanner;
use super::MAX_DEPTH;
use crate::error::{DecodeError, DecodeErrorKind};

/// One step of the walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token<'a> {
    /// `i…e`
    Int(i64),
    /// `N:…` (a dictionary key, or a value).
    Bytes(&'a [u8]),
    /// `l`: items follow until [`Token::End`].
    List,
    /// `d`: key/value pairs follow until [`Token::End`].
    Dict,
    /// `e`: the innermost open list or dictionary ends.
    End,
}

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    s: Scanner<'a>,
    /// Open containers (at most [`MAX_DEPTH`]).
    depth: usize,
    /// Bit `i`: the container at depth `i + 1` is a dictionary.
    is_dict: u64,
    /// Bit `i`: that dictionary's next item is a key.
    want_key: u64,
    /// The root value has been read completely.
    done: bool,
}

impl<'a> Reader<'a> {
    /// A walk over `input`, which must hold exactly one value.
    pub fn new(input: &'a [u8]) -> Reader<'a> {
        Reader {
            s: Scanner { input, pos: 0 },
            depth: 0,
            is_dict: 0,
            want_key: 0,
            done: false,
        }
    }

    /// Where the next token starts.
    pub fn offset(&self) -> usize {
        self.s.pos
    }

    /// Open lists and dictionaries.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// The next token.
    pub fn next_token(&mut self) -> Result<Token<'a>, DecodeError> {
        if self.done {
            return Err(self
                .s
                .err(DecodeErrorKind::TrailingBytes, "end of bencoded value"));
        }
        let level = self.depth.wrapping_sub(1);
        let in_dict = self.depth > 0 && self.is_dict & (1 << level) != 0;
        let want_key = in_dict && self.want_key & (1 << level) != 0;
        // The tree decoder's contexts, so both report the same error.
        let context = if want_key {
            "dictionary key"
        } else if self.depth > 0 && !in_dict {
            "list item"
        } else {
            "value"
        };
        let b = self.s.peek(context)?;
        if want_key {
            return match b {
                b'e' => Ok(self.close()),
                b'0'..=b'9' => {
                    self.want_key &= !(1 << level);
                    Ok(Token::Bytes(self.s.string("dictionary key")?))
                }
                _ => Err(self.s.err(DecodeErrorKind::KeyNotString, "dictionary key")),
            };
        }
        if b == b'e' {
            if in_dict || self.depth == 0 {
                return Err(self.s.err(DecodeErrorKind::UnexpectedByte, "value"));
            }
            return Ok(self.close());
        }
        if in_dict {
            // After this value (however deep), the next item is a key.
            self.want_key |= 1 << level;
        }
        let token = match b {
            b'i' => {
                self.s.pos += 1;
                Token::Int(self.s.integer()?)
            }
            b'0'..=b'9' => Token::Bytes(self.s.string("byte string")?),
            b'l' | b'd' if self.depth >= MAX_DEPTH => {
                return Err(self
                    .s
                    .err(DecodeErrorKind::DepthLimit, "nested list or dictionary"));
            }
            b'l' | b'd' => {
                self.s.pos += 1;
                let bit = 1u64 << self.depth;
                if b == b'd' {
                    self.is_dict |= bit;
                    self.want_key |= bit;
                } else {
                    self.is_dict &= !bit;
                }
                self.depth += 1;
                return Ok(if b == b'd' { Token::Dict } else { Token::List });
            }
            _ => return Err(self.s.err(DecodeErrorKind::UnexpectedByte, "value")),
        };
        self.done = self.depth == 0;
        Ok(token)
    }

    fn close(&mut self) -> Token<'a> {
        self.s.pos += 1;
        self.depth -= 1;
        self.done = self.depth == 0;
        Token::End
    }

    /// Skips the rest of a value whose first token was `first` (nothing
    /// for a string or an integer; up to its `End` for a container).
    pub fn skip(&mut self, first: Token<'a>) -> Result<(), DecodeError> {
        if !matches!(first, Token::List | Token::Dict) {
            return Ok(());
        }
        let target = self.depth - 1;
        while self.depth > target {
            self.next_token()?;
        }
        Ok(())
    }

    /// Checks that the value ended and nothing follows it.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if !self.done {
            return Err(self.s.err(DecodeErrorKind::UnexpectedEnd, "value"));
        }
        if self.s.pos != self.s.input.len() {
            return Err(self
                .s
                .err(DecodeErrorKind::TrailingBytes, "end of bencoded value"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode::decode;

    fn tokens(input: &[u8]) -> Result<Vec<Token<'_>>, DecodeError> {
        let mut r = Reader::new(input);
        let mut out = Vec::new();
        loop {
            out.push(r.next_token()?);
            if r.depth() == 0 {
                r.finish()?;
                return Ok(out);
            }
        }
    }

    #[test]
    fn walks_bep3_values() {
        use Token::*;
        assert_eq!(tokens(b"i3e").unwrap(), vec![Int(3)]);
        assert_eq!(
            tokens(b"d3:cow3:moo4:spaml1:ai-2eee").unwrap(),
            vec![
                Dict,
                Bytes(b"cow"),
                Bytes(b"moo"),
                Bytes(b"spam"),
                List,
                Bytes(b"a"),
                Int(-2),
                End,
                End
            ]
        );
        assert_eq!(tokens(b"le").unwrap(), vec![List, End]);
    }

    #[test]
    fn refuses_what_the_tree_decoder_refuses() {
        for bad in [
            &b"di1e1:ae"[..],
            b"d1:ae",
            b"d1:a",
            b"l",
            b"e",
            b"i03e",
            b"i1ei2e",
            b"4:spa",
            b"d1:ai1ee1:x",
        ] {
            let want = decode(bad).unwrap_err().kind();
            let got = tokens(bad).unwrap_err().kind();
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = vec![b'l'; MAX_DEPTH + 1];
        assert_eq!(
            tokens(&deep).unwrap_err().kind(),
            DecodeErrorKind::DepthLimit
        );
    }

    #[test]
    fn skips_nested_values() {
        let input = b"d1:ald1:xli1eee1:be1:bi7ee";
        let mut r = Reader::new(input);
        assert_eq!(r.next_token().unwrap(), Token::Dict);
        assert_eq!(r.next_token().unwrap(), Token::Bytes(b"a"));
        let first = r.next_token().unwrap();
        r.skip(first).unwrap();
        assert_eq!(r.next_token().unwrap(), Token::Bytes(b"b"));
        assert_eq!(r.next_token().unwrap(), Token::Int(7));
        assert_eq!(r.next_token().unwrap(), Token::End);
        r.finish().unwrap();
    }
}
