//! Splitting a history whose ops span several objects: the connected components of "two ops share an object".
//!
//! Locality (Herlihy & Wing) holds for any split in which no op touches two parts: each component is a set of
//! objects that only its own ops read or change, so the whole history is linearizable iff every component is.
//! A component is named after its objects in sorted order, e.g. `leader (+ lease 7, lease 9)`; components are
//! disjoint, so their first objects differ and so do their names.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// How many objects after the first a component's name lists before it just counts the rest.
const NAMED_OBJECTS: usize = 3;

#[derive(Default)]
struct UnionFind {
    index: HashMap<String, usize>,
    /// Invariant: `parent[i] <= i`, so following `parent` from any index ends at a root (its own parent),
    /// the smallest index of its set.
    parent: Vec<usize>,
}

impl UnionFind {
    fn id(&mut self, object: &str) -> usize {
        if let Some(&i) = self.index.get(object) {
            return i;
        }
        let i = self.parent.len();
        self.parent.push(i);
        self.index.insert(object.to_string(), i);
        i
    }

    fn root(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.root(a), self.root(b));
        if a != b {
            self.parent[a.max(b)] = a.min(b);
        }
    }
}

/// For each op (given the objects it touches), the name of its component; `None` for ops touching nothing.
pub(crate) fn component_names(objects: &[Vec<String>]) -> Vec<Option<String>> {
    let mut sets = UnionFind::default();
    for touched in objects {
        let ids: Vec<usize> = touched.iter().map(|o| sets.id(o)).collect();
        for pair in ids.windows(2) {
            sets.union(pair[0], pair[1]);
        }
    }
    let mut members: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    let all: Vec<(String, usize)> = sets.index.iter().map(|(o, &i)| (o.clone(), i)).collect();
    for (object, i) in all {
        let root = sets.root(i);
        members.entry(root).or_default().insert(object);
    }
    let names: BTreeMap<usize, String> = members.iter().map(|(&root, objects)| (root, name(objects))).collect();
    objects
        .iter()
        .map(|touched| {
            let first = touched.first()?;
            let root = sets.root(sets.index[first.as_str()]);
            Some(names[&root].clone())
        })
        .collect()
}

fn name(objects: &BTreeSet<String>) -> String {
    let mut sorted = objects.iter();
    let first = sorted.next().cloned().unwrap_or_default();
    let rest: Vec<&String> = sorted.collect();
    if rest.is_empty() {
        return first;
    }
    let shown: Vec<&str> = rest.iter().take(NAMED_OBJECTS).map(|s| s.as_str()).collect();
    let more = rest.len() - shown.len();
    if more == 0 {
        format!("{first} (+ {})", shown.join(", "))
    } else {
        format!("{first} (+ {} and {more} more)", shown.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(ops: &[&[&str]]) -> Vec<Vec<String>> {
        ops.iter().map(|op| op.iter().map(|s| s.to_string()).collect()).collect()
    }

    #[test]
    fn ops_sharing_an_object_land_in_one_component_and_others_stay_apart() {
        let names = component_names(&objects(&[&["a"], &["b", "lease 1"], &["c"], &["lease 1", "d"], &[], &["a"]]));
        assert_eq!(names[0].as_deref(), Some("a"));
        assert_eq!(names[1].as_deref(), Some("b (+ d, lease 1)"));
        assert_eq!(names[3], names[1], "b and d are joined through lease 1");
        assert_eq!(names[2].as_deref(), Some("c"));
        assert_eq!(names[4], None);
        assert_eq!(names[5], names[0]);
    }

    #[test]
    fn a_long_component_name_counts_what_it_does_not_list() {
        let names = component_names(&objects(&[&["a", "b", "c", "d", "e", "f"]]));
        assert_eq!(names[0].as_deref(), Some("a (+ b, c, d and 2 more)"));
    }
}
