//! Hand-built histories for the checkers' tests. Times are in simulated milliseconds.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Ack, DbRecord, Entry, EntryId, Promotion, ServedRead};
use crate::{MemberId, Token};

pub fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

pub struct Hist {
    pub r: DbRecord,
    next_seq: BTreeMap<(MemberId, Token), u64>,
}

impl Hist {
    pub fn sync() -> Hist {
        Hist { r: DbRecord { synchronous: true, ..DbRecord::default() }, next_seq: BTreeMap::new() }
    }

    pub fn asynchronous() -> Hist {
        Hist { r: DbRecord::default(), next_seq: BTreeMap::new() }
    }

    pub fn promote(&mut self, member: u64, token: u64, at_ms: u64) -> &mut Hist {
        self.r.promotions.push(Promotion { member: MemberId(member), token: Token(token), at: ms(at_ms) });
        self
    }

    /// Member `member`'s primary appends under `token` on top of `parent` (which must be recorded).
    pub fn append(&mut self, member: u64, token: u64, parent: Option<EntryId>, key: &str, value: &str) -> EntryId {
        let seq = self.next_seq.entry((MemberId(member), Token(token))).or_insert(0);
        *seq += 1;
        let id = EntryId { member: MemberId(member), token: Token(token), seq: *seq };
        let pos = parent.map_or(1, |p| self.r.entries[&p].pos + 1);
        self.r.entries.insert(id, Entry { id, parent, pos, key: key.into(), value: value.into() });
        id
    }

    /// `n` appends in a row on top of `parent`; keys cycle through `k0` … `k7` by position and
    /// each value is the entry's own id.
    pub fn extend(&mut self, member: u64, token: u64, mut parent: Option<EntryId>, n: usize) -> Vec<EntryId> {
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            let pos = parent.map_or(1, |p| self.r.entries[&p].pos + 1);
            let id = self.append(member, token, parent, &format!("k{}", pos % 8), "");
            let value = id.to_string();
            self.r.entries.get_mut(&id).expect("just appended").value = value;
            ids.push(id);
            parent = Some(id);
        }
        ids
    }

    /// The entry's own primary acknowledges it at `at_ms`.
    pub fn ack(&mut self, entry: EntryId, at_ms: u64) -> &mut Hist {
        self.r.acks.push(Ack { entry, member: entry.member, at: ms(at_ms) });
        self
    }

    #[allow(clippy::too_many_arguments)]
    pub fn read(
        &mut self,
        member: u64,
        token: u64,
        sent_ms: u64,
        served_ms: u64,
        key: &str,
        value: Option<&str>,
        head: Option<EntryId>,
    ) -> &mut Hist {
        self.r.reads.push(ServedRead {
            member: MemberId(member),
            token: Token(token),
            sent: ms(sent_ms),
            served: ms(served_ms),
            key: key.into(),
            value: value.map(Into::into),
            head,
        });
        self
    }

    pub fn finish(&mut self, member: u64, head: Option<EntryId>) -> &mut Hist {
        self.r.final_primary = Some((MemberId(member), head));
        self
    }
}
