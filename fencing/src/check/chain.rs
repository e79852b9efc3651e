//! The chains the recorded entries form, indexed once so that "is `a` on the chain of `b`"
//! (ancestor-or-self through parent links) costs O(1).
//!
//! Parent links make the entries a forest: positions rise by exactly one from parent to child
//! (checked while building), so there is no cycle. One pass numbers every entry in depth-first
//! preorder: entry `i` gets `enter[i]`, and its subtree — every entry whose chain runs through
//! it — holds exactly the numbers `enter[i] .. exit[i]`. So `a` is an ancestor-or-self of `b` iff
//! `enter[a] <= enter[b] < exit[a]`. Building costs one sort by position: O(n log n) time, O(n)
//! memory and no recursion, so a 10,000-deep chain needs no stack.

use super::{DbRecord, Entry, EntryId, Malformed};

/// The index over one record's entries. Entries are numbered in the record's map order (by id).
#[derive(Clone, Debug)]
pub struct Chains<'r> {
    record: &'r DbRecord,
    entries: Vec<&'r Entry>,
    parent: Vec<Option<usize>>,
    /// Invariant: `enter` is a permutation of `0..n`, `exit[i] = enter[i] + subtree size`, and a
    /// child's interval lies inside its parent's.
    enter: Vec<usize>,
    exit: Vec<usize>,
    /// `preorder[enter[i]] == i`: every parent comes before its children.
    preorder: Vec<usize>,
    /// `ack_entry[k]` is the entry of `record.acks[k]`.
    ack_entry: Vec<usize>,
}

impl<'r> Chains<'r> {
    /// Indexes `record`'s entries and acks, or says how they contradict themselves.
    pub fn build(record: &'r DbRecord) -> Result<Chains<'r>, Malformed> {
        let mut entries = Vec::with_capacity(record.entries.len());
        for (key, entry) in &record.entries {
            if *key != entry.id {
                return Err(Malformed::KeyMismatch { key: *key, id: entry.id });
            }
            entries.push(entry);
        }
        let index = |id: &EntryId| entries.binary_search_by(|e| e.id.cmp(id)).ok();
        let mut parent = Vec::with_capacity(entries.len());
        for entry in &entries {
            let p = match entry.parent {
                None if entry.pos == 1 => None,
                None => return Err(Malformed::BadPosition { entry: entry.id, pos: entry.pos, parent: None }),
                Some(pid) => {
                    let p = index(&pid).ok_or(Malformed::MissingParent { entry: entry.id, parent: pid })?;
                    if entries[p].pos.checked_add(1) != Some(entry.pos) {
                        let parent = Some((pid, entries[p].pos));
                        return Err(Malformed::BadPosition { entry: entry.id, pos: entry.pos, parent });
                    }
                    Some(p)
                }
            };
            parent.push(p);
        }
        let mut ack_entry = Vec::with_capacity(record.acks.len());
        for (k, ack) in record.acks.iter().enumerate() {
            let i = index(&ack.entry).ok_or(Malformed::UnknownAckedEntry {
                index: k,
                entry: ack.entry,
                member: ack.member,
            })?;
            ack_entry.push(i);
        }

        // Parents before children: positions rise by one along every parent link.
        let n = entries.len();
        let mut by_pos: Vec<usize> = (0..n).collect();
        by_pos.sort_by_key(|&i| entries[i].pos);
        let mut size = vec![1usize; n];
        for &i in by_pos.iter().rev() {
            if let Some(p) = parent[i] {
                size[p] += size[i];
            }
        }
        // Each entry's subtree gets the next free block of numbers inside its parent's block
        // (or after the previous root's): its own number, then its children's blocks.
        let mut enter = vec![0usize; n];
        let mut next_free = vec![0usize; n];
        let mut next_root = 0usize;
        for &i in &by_pos {
            let slot = match parent[i] {
                None => &mut next_root,
                Some(p) => &mut next_free[p],
            };
            enter[i] = *slot;
            *slot += size[i];
            next_free[i] = enter[i] + 1;
        }
        let exit: Vec<usize> = (0..n).map(|i| enter[i] + size[i]).collect();
        let mut preorder = vec![usize::MAX; n];
        for i in 0..n {
            debug_assert_eq!(preorder[enter[i]], usize::MAX, "two entries numbered {}", enter[i]);
            preorder[enter[i]] = i;
        }
        debug_assert!(
            (0..n).all(|i| parent[i].is_none_or(|p| enter[p] < enter[i] && exit[i] <= exit[p])),
            "a child's interval lies inside its parent's"
        );
        Ok(Chains { record, entries, parent, enter, exit, preorder, ack_entry })
    }

    pub fn record(&self) -> &'r DbRecord {
        self.record
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The number of the entry with this id, if it was recorded.
    pub fn index(&self, id: &EntryId) -> Option<usize> {
        self.entries.binary_search_by(|e| e.id.cmp(id)).ok()
    }

    pub fn entry(&self, i: usize) -> &'r Entry {
        self.entries[i]
    }

    pub fn parent(&self, i: usize) -> Option<usize> {
        self.parent[i]
    }

    /// The entry of `record.acks[k]`.
    pub fn ack_entry(&self, k: usize) -> usize {
        self.ack_entry[k]
    }

    /// Entries in depth-first preorder: every parent before its children.
    pub fn preorder(&self) -> &[usize] {
        &self.preorder
    }

    /// Entry `i`'s preorder number; its subtree is `enter(i) .. exit(i)`.
    pub fn enter(&self, i: usize) -> usize {
        self.enter[i]
    }

    pub fn exit(&self, i: usize) -> usize {
        self.exit[i]
    }

    /// Is `a` on the chain that ends at `b` (`a` is `b` or one of its ancestors)?
    pub fn is_ancestor_or_self(&self, a: usize, b: usize) -> bool {
        self.enter[a] <= self.enter[b] && self.enter[b] < self.exit[a]
    }

    /// The entry at position `pos` on the chain ending at `i`, if that chain is that long.
    /// O(distance): meant for explaining one violation, not for judging.
    pub fn at_position(&self, mut i: usize, pos: u64) -> Option<usize> {
        if pos == 0 || pos > self.entries[i].pos {
            return None;
        }
        while self.entries[i].pos > pos {
            i = self.parent[i]?;
        }
        Some(i)
    }

    /// The last entry the chains ending at `a` and `b` share, if any. O(distance): meant for
    /// explaining one violation.
    pub fn common_ancestor(&self, a: usize, b: usize) -> Option<usize> {
        let pos = self.entries[a].pos.min(self.entries[b].pos);
        let (mut a, mut b) = (self.at_position(a, pos)?, self.at_position(b, pos)?);
        while a != b {
            a = self.parent[a]?;
            b = self.parent[b]?;
        }
        Some(a)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::Hist;
    use super::*;

    #[test]
    fn ancestry_follows_parent_links_across_branches_and_roots() {
        let mut h = Hist::sync();
        let trunk = h.extend(1, 1, None, 3);
        let left = h.extend(1, 1, Some(trunk[2]), 2);
        let right = h.extend(2, 2, Some(trunk[1]), 3);
        let other_root = h.extend(3, 3, None, 1);
        let c = Chains::build(&h.r).expect("well formed");
        let ix = |id: EntryId| c.index(&id).expect("recorded");
        assert!(c.is_ancestor_or_self(ix(trunk[0]), ix(left[1])));
        assert!(c.is_ancestor_or_self(ix(trunk[1]), ix(right[2])));
        assert!(c.is_ancestor_or_self(ix(left[1]), ix(left[1])), "self");
        assert!(!c.is_ancestor_or_self(ix(trunk[2]), ix(right[2])), "the branch parted after position 2");
        assert!(!c.is_ancestor_or_self(ix(left[1]), ix(trunk[0])), "a descendant is no ancestor");
        assert!(!c.is_ancestor_or_self(ix(other_root[0]), ix(left[0])));
        assert_eq!(c.common_ancestor(ix(left[1]), ix(right[2])), Some(ix(trunk[1])));
        assert_eq!(c.common_ancestor(ix(left[1]), ix(other_root[0])), None);
        assert_eq!(c.at_position(ix(right[2]), 2), Some(ix(trunk[1])));
        assert_eq!(c.at_position(ix(right[2]), 6), None);
        let mut seen = vec![false; c.len()];
        for &i in c.preorder() {
            assert!(c.parent(i).is_none_or(|p| seen[p]), "parent before child");
            seen[i] = true;
        }
    }

    #[test]
    fn contradictions_are_named_not_panicked_on() {
        let mut h = Hist::sync();
        let a = h.append(1, 1, None, "x", "1");
        let b = h.append(1, 1, Some(a), "x", "2");
        let ghost = EntryId { member: crate::MemberId(7), token: crate::Token(7), seq: 7 };

        let mut r = h.r.clone();
        r.entries.get_mut(&b).expect("recorded").parent = Some(ghost);
        assert_eq!(Chains::build(&r).err(), Some(Malformed::MissingParent { entry: b, parent: ghost }));

        let mut r = h.r.clone();
        r.entries.get_mut(&b).expect("recorded").pos = 5;
        assert_eq!(Chains::build(&r).err(), Some(Malformed::BadPosition { entry: b, pos: 5, parent: Some((a, 1)) }));

        let mut r = h.r.clone();
        r.entries.get_mut(&a).expect("recorded").pos = 0;
        assert_eq!(Chains::build(&r).err(), Some(Malformed::BadPosition { entry: a, pos: 0, parent: None }));

        let mut r = h.r.clone();
        let mut moved = r.entries.remove(&b).expect("recorded");
        moved.id = ghost;
        r.entries.insert(b, moved);
        assert_eq!(Chains::build(&r).err(), Some(Malformed::KeyMismatch { key: b, id: ghost }));

        let mut r = h.r.clone();
        r.acks.push(super::super::Ack { entry: ghost, member: crate::MemberId(7), at: Default::default() });
        assert_eq!(
            Chains::build(&r).err(),
            Some(Malformed::UnknownAckedEntry { index: 0, entry: ghost, member: crate::MemberId(7) })
        );

        // A self-parent would be a cycle; positions rule it out.
        let mut r = h.r.clone();
        r.entries.get_mut(&b).expect("recorded").parent = Some(b);
        assert!(matches!(Chains::build(&r), Err(Malformed::BadPosition { .. })));
    }
}
