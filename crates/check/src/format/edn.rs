//! A small EDN reader: enough of Clojure's data notation for Jepsen histories, with line numbers in errors.
//!
//! Supported: `nil`, `true`, `false`, integers (with an optional `N` suffix), floats (kept as text), strings
//! with escapes, characters, keywords, symbols, `[]`, `()`, `{}`, `#{}`, tagged literals `#tag form`, the
//! discard `#_ form`, `;` comments, and commas as whitespace. Input is never trusted: every malformed byte
//! yields an [`EdnError`], and nesting deeper than [`MAX_DEPTH`] is refused instead of overflowing the stack.

use std::fmt;

/// Deep enough for any history; shallow enough that recursion cannot exhaust the stack.
pub const MAX_DEPTH: usize = 128;

#[derive(Clone, Debug, PartialEq)]
pub enum Edn {
    Nil,
    Bool(bool),
    Int(i64),
    /// Floats and big numbers, as written; histories have no use for their value.
    Number(String),
    Str(String),
    Char(char),
    /// Without the leading colon.
    Keyword(String),
    Symbol(String),
    Vector(Vec<Edn>),
    List(Vec<Edn>),
    Set(Vec<Edn>),
    Map(Vec<(Edn, Edn)>),
    Tagged(String, Box<Edn>),
}

impl Edn {
    /// The value under keyword `key` if this is a map.
    pub fn get(&self, key: &str) -> Option<&Edn> {
        match self {
            Edn::Map(entries) => {
                entries.iter().find(|(k, _)| matches!(k, Edn::Keyword(name) if name == key)).map(|(_, v)| v)
            }
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdnError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for EdnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Reads forms one at a time from a string, tracking the line.
pub struct Reader<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
}

fn is_delimiter(b: u8) -> bool {
    b.is_ascii_whitespace() || matches!(b, b',' | b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'"' | b';')
}

impl<'a> Reader<'a> {
    pub fn new(text: &'a str) -> Reader<'a> {
        Reader { text, pos: 0, line: 1 }
    }

    pub fn line(&self) -> usize {
        self.line
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T, EdnError> {
        Err(EdnError { line: self.line, message: message.into() })
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        if b == b'\n' {
            self.line += 1;
        }
        Some(b)
    }

    /// Skips whitespace, commas and comments; returns the next byte without consuming it.
    pub fn skip_blank(&mut self) -> Option<u8> {
        while let Some(b) = self.peek() {
            if b.is_ascii_whitespace() || b == b',' {
                self.bump();
            } else if b == b';' {
                while let Some(b) = self.bump() {
                    if b == b'\n' {
                        break;
                    }
                }
            } else {
                return Some(b);
            }
        }
        None
    }

    /// Consumes one byte that the caller has just peeked.
    pub fn consume(&mut self) {
        self.bump();
    }

    /// Reads the next form, or `None` at the end of input.
    pub fn read(&mut self) -> Result<Option<Edn>, EdnError> {
        match self.skip_blank() {
            None => Ok(None),
            Some(_) => self.read_form(0).map(Some),
        }
    }

    fn read_form(&mut self, depth: usize) -> Result<Edn, EdnError> {
        if depth > MAX_DEPTH {
            return self.error(format!("nesting deeper than {MAX_DEPTH} levels"));
        }
        let Some(b) = self.skip_blank() else {
            return self.error("unexpected end of input: a value was expected");
        };
        match b {
            b'[' => {
                self.bump();
                Ok(Edn::Vector(self.read_seq(b']', depth)?))
            }
            b'(' => {
                self.bump();
                Ok(Edn::List(self.read_seq(b')', depth)?))
            }
            b'{' => {
                self.bump();
                let start = self.line;
                let items = self.read_seq(b'}', depth)?;
                if items.len() % 2 != 0 {
                    return Err(EdnError {
                        line: start,
                        message: "a map needs an even number of forms (a key without a value)".into(),
                    });
                }
                let mut entries = Vec::with_capacity(items.len() / 2);
                let mut items = items.into_iter();
                while let (Some(k), Some(v)) = (items.next(), items.next()) {
                    entries.push((k, v));
                }
                Ok(Edn::Map(entries))
            }
            b')' | b']' | b'}' => self.error(format!("unmatched closing `{}`", b as char)),
            b'"' => self.read_string(),
            b'\\' => self.read_char(),
            b'#' => self.read_dispatch(depth),
            _ => self.read_atom(),
        }
    }

    fn read_seq(&mut self, close: u8, depth: usize) -> Result<Vec<Edn>, EdnError> {
        let start = self.line;
        let mut items = Vec::new();
        loop {
            match self.skip_blank() {
                None => {
                    return Err(EdnError {
                        line: start,
                        message: format!("`{}` opened here is never closed", opening(close)),
                    })
                }
                Some(b) if b == close => {
                    self.bump();
                    return Ok(items);
                }
                Some(b'#') if self.text.as_bytes().get(self.pos + 1) == Some(&b'_') => {
                    self.pos += 2;
                    self.read_form(depth + 1)?;
                }
                Some(_) => items.push(self.read_form(depth + 1)?),
            }
        }
    }

    fn read_dispatch(&mut self, depth: usize) -> Result<Edn, EdnError> {
        self.bump();
        match self.peek() {
            Some(b'{') => {
                self.bump();
                Ok(Edn::Set(self.read_seq(b'}', depth)?))
            }
            Some(b'_') => {
                self.bump();
                self.read_form(depth + 1)?;
                self.read_form(depth)
            }
            Some(b) if b.is_ascii_alphabetic() => {
                let tag = self.read_token();
                let form = self.read_form(depth + 1)?;
                Ok(Edn::Tagged(tag, Box::new(form)))
            }
            _ => self.error("`#` must start a set `#{`, a discard `#_` or a tag `#name`"),
        }
    }

    fn read_token(&mut self) -> String {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if is_delimiter(b) {
                break;
            }
            self.bump();
        }
        self.text[start..self.pos].to_string()
    }

    fn read_string(&mut self) -> Result<Edn, EdnError> {
        let start = self.line;
        self.bump();
        let mut out = String::new();
        loop {
            let rest = &self.text[self.pos..];
            let Some(stop) = rest.find(['"', '\\']) else {
                return Err(EdnError { line: start, message: "string opened here is never closed".into() });
            };
            out.push_str(&rest[..stop]);
            for _ in 0..stop {
                self.bump();
            }
            match self.bump() {
                Some(b'"') => return Ok(Edn::Str(out)),
                _ => match self.bump() {
                    Some(b'n') => out.push('\n'),
                    Some(b't') => out.push('\t'),
                    Some(b'r') => out.push('\r'),
                    Some(b'"') => out.push('"'),
                    Some(b'\\') => out.push('\\'),
                    Some(b'u') => {
                        let hex = self.text.get(self.pos..self.pos + 4).unwrap_or("");
                        let Some(c) = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32) else {
                            return self.error(format!("bad unicode escape \\u{hex}"));
                        };
                        out.push(c);
                        self.pos += 4;
                    }
                    _ => return self.error("unknown escape in string"),
                },
            }
        }
    }

    fn read_char(&mut self) -> Result<Edn, EdnError> {
        self.bump();
        // A character literal is at least one char, even a delimiter such as `\(`.
        let Some(first) = self.text[self.pos..].chars().next() else {
            return self.error("`\\` at end of input");
        };
        self.pos += first.len_utf8();
        let token = format!("{first}{}", self.read_token());
        let c = match token.as_str() {
            "newline" => '\n',
            "space" => ' ',
            "tab" => '\t',
            "return" => '\r',
            t if t.chars().count() == 1 => first,
            t => return self.error(format!("unknown character literal \\{t}")),
        };
        Ok(Edn::Char(c))
    }

    fn read_atom(&mut self) -> Result<Edn, EdnError> {
        let token = self.read_token();
        if token.is_empty() {
            // Only reachable for a byte that is a delimiter but not handled above; consume it to make progress.
            let b = self.bump().unwrap_or(b'?');
            return self.error(format!("unexpected `{}`", b as char));
        }
        if let Some(name) = token.strip_prefix(':') {
            if name.is_empty() {
                return self.error("a keyword needs a name after `:`");
            }
            return Ok(Edn::Keyword(name.to_string()));
        }
        let first = token.as_bytes()[0];
        let numeric = first.is_ascii_digit()
            || ((first == b'-' || first == b'+') && token.as_bytes().get(1).is_some_and(u8::is_ascii_digit));
        if numeric {
            let digits = token.strip_suffix('N').unwrap_or(&token);
            return Ok(match digits.parse::<i64>() {
                Ok(i) => Edn::Int(i),
                Err(_) if token.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-./".contains(&b)) => {
                    Edn::Number(token)
                }
                Err(_) => return self.error(format!("`{token}` is not a number")),
            });
        }
        Ok(match token.as_str() {
            "nil" => Edn::Nil,
            "true" => Edn::Bool(true),
            "false" => Edn::Bool(false),
            _ => Edn::Symbol(token),
        })
    }
}

fn opening(close: u8) -> char {
    match close {
        b']' => '[',
        b')' => '(',
        _ => '{',
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &str) -> Result<Vec<Edn>, EdnError> {
        let mut reader = Reader::new(text);
        let mut forms = Vec::new();
        while let Some(form) = reader.read()? {
            forms.push(form);
        }
        Ok(forms)
    }

    #[test]
    fn reads_the_shapes_jepsen_writes() {
        let forms = read_all("; c\n{:a 1, :b [nil true \"s\\\"\"] :c #{:x} :d (1 -2N) :e 1.5 :f #inst \"x\" :g \\a}")
            .expect("valid");
        let map = &forms[0];
        assert_eq!(map.get("a"), Some(&Edn::Int(1)));
        assert_eq!(map.get("b"), Some(&Edn::Vector(vec![Edn::Nil, Edn::Bool(true), Edn::Str("s\"".into())])));
        assert_eq!(map.get("d"), Some(&Edn::List(vec![Edn::Int(1), Edn::Int(-2)])));
        assert_eq!(map.get("e"), Some(&Edn::Number("1.5".into())));
        assert_eq!(map.get("g"), Some(&Edn::Char('a')));
    }

    #[test]
    fn errors_name_the_line_where_the_problem_starts() {
        let err = read_all("[{:a 1}\n {:b 2\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        let err = read_all("{:a 1}\n\n{:b}").unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        let err = read_all("\"abc").unwrap_err();
        assert!(err.message.contains("never closed"), "{err}");
        assert!(read_all("]").is_err());
        assert!(read_all("#").is_err());
        assert!(read_all("\\").is_err());
        assert!(read_all(&"[".repeat(10_000)).is_err());
    }
}
