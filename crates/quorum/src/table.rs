//! `quorum table`: cluster size, majority and failures tolerated, and why an even size buys nothing.

use serde::Serialize;

use crate::majority::{failures_tolerated, majority};
use crate::report::Doc;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableRow {
    pub voters: usize,
    pub majority: usize,
    pub failures_tolerated: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableReport {
    pub rows: Vec<TableRow>,
    pub even_size_note: String,
    /// Why an odd size is no guarantee either: a three-way split.
    pub odd_size_note: String,
}

/// Rows for cluster sizes `1..=max`.
pub fn table_report(max: usize) -> TableReport {
    let rows: Vec<TableRow> = (1..=max)
        .map(|n| TableRow { voters: n, majority: majority(n), failures_tolerated: failures_tolerated(n) })
        .collect();
    let example = if max >= 4 { 3 } else { 1 };
    let pairs: Vec<String> =
        (1..max).filter(|&n| !n.is_multiple_of(2) && n != example).map(|n| format!("{n} → {}", n + 1)).collect();
    let even_size_note = format!(
        "An even size adds no tolerance: going from {example} to {} voters raises the majority from {} to {} while \
         the failures tolerated stay at {} (likewise {}). The extra voter is one more machine that can fail and one \
         more acknowledgement a write may wait for; it tolerates nothing more, and a partition into two equal \
         halves leaves neither with a majority.",
        example + 1,
        majority(example),
        majority(example + 1),
        failures_tolerated(example),
        if pairs.is_empty() { "for every odd size".to_string() } else { pairs.join(", ") },
    );
    let odd_size_note = "An odd size does not guarantee a majority partition, whatever etcd's FAQ says: it \
        guarantees one only when the network splits in two. Split it in three and every group can fall short: \
        2/2/1 with dc3 lost and dc1–dc2 cut leaves 2 | 2 | 0 of 5, no majority anywhere (`quorum explain \
        etcd-2-2-1 --fault lose:dc3 --fault cut:dc1:dc2`)."
        .to_string();
    TableReport { rows, even_size_note, odd_size_note }
}

impl TableReport {
    pub fn doc(&self) -> Doc {
        let mut doc = Doc::default();
        let rows = self
            .rows
            .iter()
            .map(|r| vec![r.voters.to_string(), r.majority.to_string(), r.failures_tolerated.to_string()])
            .collect();
        doc.table(&["Cluster Size", "Majority", "Failure Tolerance"], rows);
        doc.lines(vec![
            "majority          = n/2 + 1     (integer division: the fewest votes no other group can also have)".into(),
            "failure tolerance = (n − 1)/2   (voters that may fail while a majority remains: n − majority)".into(),
        ]);
        doc.para(self.even_size_note.clone());
        doc.para(self.odd_size_note.clone());
        doc
    }
}
