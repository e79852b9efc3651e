//! The verdict in words a student can follow: what was placed, what could not be, and why.

use std::fmt::Write;

use crate::verdict::{OpSummary, Outcome, PartitionVerdict, Verdict, Violation};

/// How many prefix steps to show before eliding the earlier ones.
const PREFIX_SHOWN: usize = 12;

pub fn render(verdict: &Verdict, source: &str) -> String {
    let mut out = String::new();
    let s = &verdict.stats;
    let _ = writeln!(out, "{source}: {}", verdict.outcome.words());
    let _ = writeln!(
        out,
        "model {}, {} {}, {} operations ({} with unknown outcome); {} search steps; largest memo {} entries (~{})",
        verdict.model,
        verdict.partitions.len(),
        if verdict.partitions.len() == 1 { "partition" } else { "partitions (one per key)" },
        s.operations,
        s.unknown_outcomes,
        s.steps,
        s.peak_memo_entries,
        bytes(s.peak_memo_bytes_estimate),
    );
    if !verdict.unchecked_keys.is_empty() {
        let n = verdict.unchecked_keys.len();
        let _ = writeln!(
            out,
            "Stopped at the first key that is not linearizable: {n} later key{} not checked (--all-keys checks every key).",
            if n == 1 { " was" } else { "s were" }
        );
    }
    let linearizable = verdict.partitions.iter().filter(|p| p.outcome == Outcome::Linearizable).count();
    if linearizable > 0 && linearizable < verdict.partitions.len() {
        let _ = writeln!(out, "{linearizable} of {} keys are linearizable.", verdict.partitions.len());
    }
    for partition in &verdict.partitions {
        match partition.outcome {
            Outcome::Linearizable => {}
            Outcome::Unknown => {
                let reason = partition.unknown_reason.as_deref().unwrap_or("the budget ran out");
                let _ = writeln!(out, "\n{}: unknown — {reason}. No verdict is better than a guess.", key(partition));
            }
            Outcome::NotLinearizable => {
                if let Some(violation) = &partition.violation {
                    out.push('\n');
                    explain(&mut out, partition, violation);
                }
            }
        }
    }
    out
}

fn key(partition: &PartitionVerdict) -> String {
    match &partition.key {
        Some(k) => format!("key {k:?}"),
        None => "the history".to_string(),
    }
}

fn op_line(op: &OpSummary) -> String {
    let when = op.interval.describe();
    let unknown = if op.unknown { " [outcome unknown]" } else { "" };
    format!("process {}: {}{unknown} ({when})", op.process, op.description)
}

fn explain(out: &mut String, partition: &PartitionVerdict, v: &Violation) {
    let _ = writeln!(out, "{} is NOT linearizable.", key(partition));
    let _ = writeln!(
        out,
        "Starting from {}, the longest linearizable prefix the search found places {} operation{}:",
        v.initial_state,
        v.prefix.len(),
        if v.prefix.len() == 1 { "" } else { "s" }
    );
    let skipped = v.prefix.len().saturating_sub(PREFIX_SHOWN);
    if skipped > 0 {
        let _ = writeln!(out, "     … {skipped} earlier operations …");
    }
    for (i, placed) in v.prefix.iter().enumerate().skip(skipped) {
        let _ = writeln!(out, "  {:>3}. {}  ⇒ {}", i + 1, op_line(&placed.op), placed.state_after);
    }
    let _ = writeln!(out, "Then this operation cannot be placed:");
    let _ = writeln!(out, "       {}", op_line(&v.culprit));
    let _ = writeln!(
        out,
        "It must take effect after it was invoked and before it returned, and it needs {}.",
        v.requirement
    );
    if v.observed_states.is_empty() {
        let _ = writeln!(
            out,
            "It fits where it could take effect, but every such order leaves an operation that returned \
             before it with no valid place."
        );
    } else {
        let more = if v.observed_states_truncated { ", and more" } else { "" };
        let _ = writeln!(
            out,
            "But in every order of the operations running at the same time, the state it could observe was \
             one of: {}{more}.",
            v.observed_states.join(", ")
        );
        if v.culprit_fits_somewhere {
            let _ = writeln!(
                out,
                "(In some orders it did fit, but each of those left a later operation that returned earlier \
                 with no valid place.)"
            );
        }
    }
}

pub(crate) fn bytes(n: usize) -> String {
    if n >= 10 << 20 {
        format!("{} MiB", n >> 20)
    } else if n >= 10 << 10 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}
