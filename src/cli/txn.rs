//! The `kv txn` syntax: one `--if` text is a compare, one `--then` or `--else` text is an
//! operation. Pure parsing, no I/O; clap calls these as value parsers, so a bad text is a usage
//! error that names the flag and the text, and every message here says what is allowed.
//!
//! ```text
//! COMPARE := TARGET(KEY) OP OPERAND
//!   TARGET  := value | version | create | mod | lease
//!   OP      := = | != | < | >
//!   OPERAND := a whole number, or for value: the text (quote it, '' or "", to keep spaces or
//!              to compare with the empty value)
//! OP := put KEY VALUE [--lease ID] | del KEY | get KEY
//! ```
//! Keys cannot contain `)` in a compare; words of an operation may be quoted with '…' or "…".

use crate::types::{Compare, CompareOp, CompareTarget, LeaseId, TxnOp};

/// What `--help` shows for `kv txn`, with examples.
pub const HELP: &str = "\
Run a transaction: if every --if compare holds, the --then operations run, otherwise the --else
operations; atomically, at one revision (etcd's Txn).

Compares (--if, repeat for several; all must hold):
  value(KEY) OP TEXT       the key's value (a compare on an absent key is false, whatever OP)
  version(KEY) OP N        writes since the key was created (0 = absent)
  create(KEY) OP N         revision that created the key (0 = absent): a holder's fencing token
  mod(KEY) OP N            revision of the key's last write (0 = absent)
  lease(KEY) OP ID         the lease the key is attached to (0 = none)
  OP is one of = != < >. Quote TEXT ('' or \"\") to keep spaces or to mean the empty value.

Operations (--then / --else, repeat for several, run in order):
  put KEY VALUE [--lease ID]   write KEY (attached to lease ID)
  del KEY                      delete KEY
  get KEY                      read KEY as the branch sees it
  Quote a word with '…' or \"…\" to keep spaces in it.

At most 128 compares and operations in all; a branch may not write one key twice.

Prints SUCCESS (compares held, --then ran) or FAILURE (--else ran), the revision, and one line per
operation of the branch that ran. Exit codes: 0 the compares held; 1 they did not (the --else
branch was applied), or the transaction failed or its outcome is unknown (said on stderr);
2 usage error.

Examples:
  # Campaign: take the leader key only if nobody holds it, attached to your lease.
  quorumlab kv txn --if 'create(leader) = 0' --then 'put leader n1 --lease 7' --else 'get leader'
  # Compare-and-swap on the value, reading the key either way.
  quorumlab kv txn --if 'value(config) = v1' --then 'put config v2' --else 'get config'
  # Delete a key only if it was not rewritten since revision 41.
  quorumlab kv txn --if 'mod(job) < 42' --then 'del job'";

/// Parses one `--if` text, e.g. `create(leader) = 0` or `value(k) != 'a b'`.
pub fn parse_compare(text: &str) -> Result<Compare, String> {
    const SHAPE: &str = "expected TARGET(KEY) OP OPERAND, e.g. 'create(leader) = 0' or 'value(k) != x'";
    let s = text.trim();
    let open = s.find('(').ok_or_else(|| format!("no '(' in {s:?}; {SHAPE}"))?;
    let target = s[..open].trim();
    let after = &s[open + 1..];
    let close = after.find(')').ok_or_else(|| format!("no ')' closing the key in {s:?}; {SHAPE}"))?;
    let key = &after[..close];
    if key.is_empty() {
        return Err(format!("empty key in {s:?}; {SHAPE}"));
    }
    let rest = after[close + 1..].trim_start();
    let (op, operand) = if let Some(r) = rest.strip_prefix("!=") {
        (CompareOp::NotEqual, r)
    } else if let Some(r) = rest.strip_prefix("==").or_else(|| rest.strip_prefix('=')) {
        (CompareOp::Equal, r)
    } else if let Some(r) = rest.strip_prefix('<') {
        (CompareOp::Less, r)
    } else if let Some(r) = rest.strip_prefix('>') {
        (CompareOp::Greater, r)
    } else {
        let got = rest.split_whitespace().next().unwrap_or("nothing");
        return Err(format!("unknown operator {got:?} in {s:?}; use =, !=, < or >"));
    };
    let operand = operand.trim();
    if operand.is_empty() {
        return Err(format!("nothing to compare with in {s:?}; {SHAPE} (write '' for the empty value)"));
    }
    let number = |what: &str| {
        operand.parse::<u64>().map_err(|_| format!("{what} compares with a whole number ≥ 0, got {operand:?} in {s:?}"))
    };
    let target = match target {
        "value" => CompareTarget::Value(unquote(operand).into_bytes()),
        "version" => CompareTarget::Version(number("version")?),
        "create" => CompareTarget::CreateRevision(number("create")?),
        "mod" => CompareTarget::ModRevision(number("mod")?),
        "lease" => CompareTarget::Lease(number("lease")?),
        other => {
            return Err(format!("unknown target {other:?} in {s:?}; use value, version, create, mod or lease"));
        }
    };
    Ok(Compare { key: key.as_bytes().to_vec(), op, target })
}

fn unquote(s: &str) -> String {
    for q in ['\'', '"'] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return s[1..s.len() - 1].to_string();
        }
    }
    s.to_string()
}

/// Parses one `--then` / `--else` text: `put KEY VALUE [--lease ID]`, `del KEY` or `get KEY`.
pub fn parse_op(text: &str) -> Result<TxnOp, String> {
    const ALLOWED: &str = "use 'put KEY VALUE [--lease ID]', 'del KEY' or 'get KEY'";
    let words = split_words(text)?;
    let mut it = words.iter().map(String::as_str);
    let verb = it.next().ok_or_else(|| format!("empty operation; {ALLOWED}"))?;
    let rest: Vec<&str> = it.collect();
    let key = |n: usize| -> Result<Vec<u8>, String> {
        match rest.first() {
            Some(&"") => Err(format!("empty key in {text:?}; {ALLOWED}")),
            Some(k) if rest.len() == n => Ok(k.as_bytes().to_vec()),
            _ => Err(format!("{verb:?} takes {} in {text:?}; {ALLOWED}", if n == 1 { "one key" } else { "KEY VALUE" })),
        }
    };
    match verb {
        "del" | "delete" => Ok(TxnOp::Delete { key: key(1)? }),
        "get" => Ok(TxnOp::Get { key: key(1)? }),
        "put" => {
            let mut plain = Vec::new();
            let mut lease: LeaseId = 0;
            let mut i = 0;
            while i < rest.len() {
                let w = rest[i];
                let id = if let Some(v) = w.strip_prefix("--lease=") {
                    Some(v)
                } else if w == "--lease" {
                    i += 1;
                    Some(*rest.get(i).ok_or_else(|| format!("--lease needs a lease id in {text:?}"))?)
                } else {
                    plain.push(w);
                    None
                };
                if let Some(id) = id {
                    lease = id
                        .parse()
                        .ok()
                        .filter(|id| *id > 0)
                        .ok_or_else(|| format!("a lease id is a whole number ≥ 1, got {id:?} in {text:?}"))?;
                }
                i += 1;
            }
            match plain[..] {
                ["", _] => Err(format!("empty key in {text:?}; {ALLOWED}")),
                [k, v] => Ok(TxnOp::Put { key: k.as_bytes().to_vec(), value: v.as_bytes().to_vec(), lease }),
                _ => Err(format!("\"put\" takes KEY VALUE [--lease ID] in {text:?}; quote a value with spaces")),
            }
        }
        other => Err(format!("unknown operation {other:?} in {text:?}; {ALLOWED}")),
    }
}

/// Splits on whitespace; '…' and "…" keep spaces (no escapes inside).
fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(words);
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            if c == '\'' || c == '"' {
                let mut closed = false;
                for d in chars.by_ref() {
                    if d == c {
                        closed = true;
                        break;
                    }
                    word.push(d);
                }
                if !closed {
                    return Err(format!("unterminated {c} quote in {text:?}"));
                }
            } else {
                word.push(c);
            }
        }
        words.push(word);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(key: &str, op: CompareOp, target: CompareTarget) -> Compare {
        Compare { key: key.as_bytes().to_vec(), op, target }
    }

    #[test]
    fn compares_of_every_target_and_operator_parse() {
        use CompareOp::*;
        use CompareTarget::*;
        assert_eq!(parse_compare("create(leader) = 0"), Ok(cmp("leader", Equal, CreateRevision(0))));
        assert_eq!(parse_compare("  version(k)>2 "), Ok(cmp("k", Greater, Version(2))));
        assert_eq!(parse_compare("mod(k) < 10"), Ok(cmp("k", Less, ModRevision(10))));
        assert_eq!(parse_compare("lease(k) == 7"), Ok(cmp("k", Equal, Lease(7))));
        assert_eq!(parse_compare("value(k) != x"), Ok(cmp("k", NotEqual, Value(b"x".to_vec()))));
        assert_eq!(parse_compare("value(k) = 'a b'"), Ok(cmp("k", Equal, Value(b"a b".to_vec()))));
        assert_eq!(parse_compare("value(k) = \"\""), Ok(cmp("k", Equal, Value(Vec::new()))));
        assert_eq!(parse_compare("value(a/b.c) = x=y"), Ok(cmp("a/b.c", Equal, Value(b"x=y".to_vec()))));
    }

    #[test]
    fn a_malformed_compare_says_what_is_wrong_and_what_is_allowed() {
        for (text, says) in [
            ("leader = 0", "no '('"),
            ("create(leader = 0", "no ')'"),
            ("create() = 0", "empty key"),
            ("create(leader) ~ 0", "use =, !=, < or >"),
            ("create(leader)", "use =, !=, < or >"),
            ("create(leader) =", "nothing to compare with"),
            ("create(leader) = x", "whole number"),
            ("create(leader) = -1", "whole number"),
            ("version(k) > 99999999999999999999", "whole number"),
            ("owner(k) = 1", "use value, version, create, mod or lease"),
        ] {
            let e = parse_compare(text).expect_err(text);
            assert!(e.contains(says), "{text:?} should say {says:?}: {e}");
        }
    }

    #[test]
    fn operations_parse_with_leases_and_quotes() {
        assert_eq!(parse_op("put k v"), Ok(TxnOp::Put { key: b"k".to_vec(), value: b"v".to_vec(), lease: 0 }));
        let leased = TxnOp::Put { key: b"leader".to_vec(), value: b"n1".to_vec(), lease: 7 };
        assert_eq!(parse_op("put leader n1 --lease 7"), Ok(leased.clone()));
        assert_eq!(parse_op("put --lease=7 leader n1"), Ok(leased));
        let spaced = TxnOp::Put { key: b"k".to_vec(), value: b"hello world".to_vec(), lease: 0 };
        assert_eq!(parse_op("put k 'hello world'"), Ok(spaced));
        let empty = TxnOp::Put { key: b"k".to_vec(), value: Vec::new(), lease: 0 };
        assert_eq!(parse_op("put k \"\""), Ok(empty));
        assert_eq!(parse_op("del k"), Ok(TxnOp::Delete { key: b"k".to_vec() }));
        assert_eq!(parse_op("delete k"), Ok(TxnOp::Delete { key: b"k".to_vec() }));
        assert_eq!(parse_op(" get  k "), Ok(TxnOp::Get { key: b"k".to_vec() }));
    }

    #[test]
    fn a_malformed_operation_says_what_is_wrong_and_what_is_allowed() {
        for (text, says) in [
            ("", "empty operation"),
            ("set k v", "unknown operation \"set\""),
            ("put k", "KEY VALUE [--lease ID]"),
            ("put k a b", "quote a value with spaces"),
            ("put k v --lease", "needs a lease id"),
            ("put k v --lease x", "whole number ≥ 1"),
            ("put k v --lease 0", "whole number ≥ 1"),
            ("put '' v", "empty key"),
            ("del", "one key"),
            ("del a b", "one key"),
            ("get ''", "empty key"),
            ("put k 'v", "unterminated ' quote"),
        ] {
            let e = parse_op(text).expect_err(text);
            assert!(e.contains(says), "{text:?} should say {says:?}: {e}");
        }
    }
}
