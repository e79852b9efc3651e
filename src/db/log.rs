//! The database's replicated log, I/O-free: the state one database member keeps, and the one rule
//! that makes fencing tokens a fence.
//!
//! Safety property (**a replica checks and appends atomically**): when tokens are enforced, a
//! replica that has seen token `t` refuses any replication under a token below `t`, and the check,
//! the raise of the seen token and the append happen in one call on one `&mut self`, so no other
//! primary's append can slip between the check and the write. A replica that checked, yielded and
//! then appended (the planted bug [`crate::db::DbBug::CheckYieldAppend`]) lets a deposed primary
//! complete a synchronous commit.
//!
//! Every entry names its parent (the entry before it in its primary's log), so following parents
//! from any entry gives the whole chain it was written on: the checker in
//! [`quorumlab_fencing::check`] finds forks that way.

use quorumlab_fencing::check::{Entry, EntryId};
use quorumlab_fencing::{MemberId, Token};

/// Why a replica refused replication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The sender's token is below one this replica has seen.
    Token { seen: u64 },
    /// The sender is not the primary this replica follows.
    Upstream,
    /// The entry before the batch does not match this replica's log; `len` is where to look again.
    Mismatch { len: u64 },
}

impl Refused {
    pub fn code(&self) -> &'static str {
        match self {
            Refused::Token { .. } => "token",
            Refused::Upstream => "upstream",
            Refused::Mismatch { .. } => "mismatch",
        }
    }
}

/// One member's log and the highest fencing token it has seen.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DbLog {
    entries: Vec<Entry>,
    seen_token: u64,
    /// This member's own append counter, per token: the `seq` of its next entry.
    next_seq: u64,
}

impl DbLog {
    /// A log restored from storage.
    pub fn restore(entries: Vec<Entry>, seen_token: u64, next_seq: u64) -> DbLog {
        DbLog { entries, seen_token, next_seq }
    }

    pub fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn seen_token(&self) -> u64 {
        self.seen_token
    }

    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry at 1-based position `pos`.
    pub fn at(&self, pos: u64) -> Option<&Entry> {
        pos.checked_sub(1).and_then(|i| self.entries.get(i as usize))
    }

    pub fn head(&self) -> Option<EntryId> {
        self.entries.last().map(|e| e.id)
    }

    /// Raises the seen token (a credential authority installing a new primary's token).
    pub fn install_token(&mut self, token: u64) -> u64 {
        self.seen_token = self.seen_token.max(token);
        self.seen_token
    }

    /// A primary appends a client's write under `token`. Refused when tokens are enforced and a
    /// higher token has been seen here (the primary was fenced).
    pub fn append_local(
        &mut self,
        member: u64,
        token: u64,
        enforce_tokens: bool,
        key: &str,
        value: &str,
    ) -> Result<Entry, Refused> {
        if enforce_tokens && token < self.seen_token {
            return Err(Refused::Token { seen: self.seen_token });
        }
        self.seen_token = self.seen_token.max(token);
        let id = EntryId { member: MemberId(member), token: Token(token), seq: self.next_seq };
        self.next_seq += 1;
        let entry =
            Entry { id, parent: self.head(), pos: self.len() + 1, key: key.to_string(), value: value.to_string() };
        self.entries.push(entry.clone());
        Ok(entry)
    }

    /// Checks the token and the entry before the batch, then truncates a diverging tail and
    /// appends: all or nothing. Returns the number of entries this call changed (appended or
    /// replaced), so the host knows whether to persist.
    pub fn replicate(
        &mut self,
        token: u64,
        enforce_tokens: bool,
        prev_pos: u64,
        prev: Option<EntryId>,
        batch: &[Entry],
    ) -> Result<usize, Refused> {
        if enforce_tokens && token < self.seen_token {
            return Err(Refused::Token { seen: self.seen_token });
        }
        self.check_prev(prev_pos, prev)?;
        self.seen_token = self.seen_token.max(token);
        Ok(self.append_after(prev_pos, batch))
    }

    /// Whether the entry at `prev_pos` is `prev` (position 0 is the empty prefix).
    pub fn check_prev(&self, prev_pos: u64, prev: Option<EntryId>) -> Result<(), Refused> {
        let matches = match prev_pos {
            0 => prev.is_none(),
            p => self.at(p).map(|e| e.id) == prev && prev.is_some(),
        };
        if matches {
            Ok(())
        } else {
            Err(Refused::Mismatch { len: self.len().min(prev_pos.saturating_sub(1)) })
        }
    }

    /// Appends `batch` after `prev_pos` (already checked), keeping entries that are the same and
    /// truncating from the first that differs.
    pub fn append_after(&mut self, prev_pos: u64, batch: &[Entry]) -> usize {
        let mut changed = 0;
        for (i, e) in batch.iter().enumerate() {
            let pos = prev_pos + 1 + i as u64;
            match self.at(pos) {
                Some(mine) if mine.id == e.id => {}
                _ => {
                    self.entries.truncate((pos - 1) as usize);
                    let mut e = e.clone();
                    e.pos = pos;
                    self.entries.push(e);
                    changed += 1;
                }
            }
        }
        changed
    }

    /// The value of `key` as of position `upto` (the newest write to it at or before `upto`), and
    /// the entry the answer was read at.
    pub fn read(&self, key: &str, upto: u64) -> (Option<String>, Option<EntryId>) {
        let upto = upto.min(self.len());
        let head = self.at(upto).map(|e| e.id);
        let value = self.entries[..upto as usize].iter().rev().find(|e| e.key == key).map(|e| e.value.clone());
        (value, head)
    }

    /// Forgets the tail after `len` (a rejoining member rewinding to what its new primary has).
    pub fn truncate(&mut self, len: u64) {
        self.entries.truncate(len as usize);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(member: u64, token: u64, seq: u64) -> EntryId {
        EntryId { member: MemberId(member), token: Token(token), seq }
    }

    #[test]
    fn a_replica_refuses_a_lower_token_and_appends_nothing() {
        let mut primary = DbLog::default();
        let e1 = primary.append_local(1, 5, true, "k", "a").unwrap();
        let mut replica = DbLog::default();
        assert_eq!(replica.replicate(5, true, 0, None, std::slice::from_ref(&e1)), Ok(1));
        replica.install_token(7);
        let e2 = primary.append_local(1, 5, true, "k", "b").unwrap();
        assert_eq!(
            replica.replicate(5, true, 1, Some(e1.id), std::slice::from_ref(&e2)),
            Err(Refused::Token { seen: 7 })
        );
        assert_eq!(replica.len(), 1);
        // Without enforcement (no credentials fence) the same call is accepted: that is the contrast.
        assert_eq!(replica.replicate(5, false, 1, Some(e1.id), &[e2]), Ok(1));
    }

    #[test]
    fn a_diverging_tail_is_replaced_and_a_gap_is_a_mismatch() {
        let mut old = DbLog::default();
        let a = old.append_local(1, 5, true, "k", "a").unwrap();
        let _stale = old.append_local(1, 5, true, "k", "stale").unwrap();
        let mut new = DbLog::default();
        new.replicate(5, true, 0, None, std::slice::from_ref(&a)).unwrap();
        let b = new.append_local(2, 7, true, "k", "b").unwrap();
        assert_eq!(old.replicate(7, true, 3, Some(id(2, 7, 0)), &[]), Err(Refused::Mismatch { len: 2 }));
        assert_eq!(old.replicate(7, true, 1, Some(a.id), std::slice::from_ref(&b)), Ok(1));
        assert_eq!(old.head(), Some(b.id));
        assert_eq!(old.read("k", 2), (Some("b".into()), Some(b.id)));
        assert_eq!(old.read("k", 1), (Some("a".into()), Some(a.id)));
        assert_eq!(old.read("other", 2).0, None);
    }

    #[test]
    fn a_fenced_primary_cannot_append() {
        let mut log = DbLog::default();
        log.install_token(9);
        assert_eq!(log.append_local(1, 5, true, "k", "v"), Err(Refused::Token { seen: 9 }));
        assert!(log.is_empty());
    }
}
