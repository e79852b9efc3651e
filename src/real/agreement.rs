//! Sim-vs-real agreement: one schedule run in the simulator and on real processes, their availability set side
//! by side per fault window and client datacenter. The simulator is only worth its speed if what it calls
//! available is available on real sockets too, and the reverse; a row where they differ is reported with the
//! likeliest reason, read from the two records (never from the scenario's name).

use serde::Serialize;

use crate::sim::invariants::availability::{self, Outcome};
use crate::sim::run::{RunConfig, RunRecord};
use quorumlab_quorum::Availability;

/// One window and client datacenter, both ways.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub window: String,
    pub dc: String,
    pub predicted: String,
    pub sim: Outcome,
    pub real: Outcome,
    pub agree: bool,
    /// Why they differ (empty when they agree).
    pub why: String,
}

/// The rows of one schedule's two runs: every window (those the oracle does not model, a pause, included) and
/// every client datacenter, each run's history read the same way ([`availability::observe`]).
pub fn compare(config: &RunConfig, sim: &RunRecord, real: &RunRecord) -> Vec<Row> {
    let ops = |r: &RunRecord| match &r.history {
        Some(h) => availability::operations(h, &r.tags),
        None => Vec::new(),
    };
    let (sim_ops, real_ops) = (ops(sim), ops(real));
    let (settle, deadline) = (config.settle(), config.workload.op_timeout);
    let mut rows = Vec::new();
    for (i, w) in sim.windows.iter().enumerate() {
        let window = w.faults.join(" + ");
        for dc in config.topology.client_dcs() {
            let verdict =
                |r: &RunRecord| r.availability.iter().find(|(j, v)| *j == i && v.dc == dc).map(|(_, v)| v.clone());
            let (sim_v, real_v) = (verdict(sim), verdict(real));
            let predicted = sim_v.as_ref().map(|v| v.predicted);
            let s = availability::observe(w, &sim_ops, dc, settle, deadline).outcome();
            let Some(rw) = real.windows.get(i) else {
                rows.push(Row {
                    window: window.clone(),
                    dc: dc.to_string(),
                    predicted: predicted.map_or("not modelled", |p| p.name()).to_string(),
                    sim: s,
                    real: Outcome::NotJudged,
                    agree: false,
                    why: "the real run has no such window (it stopped early: see its failures)".into(),
                });
                continue;
            };
            let o = availability::observe(rw, &real_ops, dc, settle, deadline).outcome();
            let agree = s == o;
            let why = if agree {
                String::new()
            } else if w.leader != rw.leader {
                format!(
                    "the window opened with different leaders (simulator: {}, real: {}), so a fault that names \
                     the leader hit different nodes",
                    w.leader.map_or("none".into(), |l| format!("node {l}")),
                    rw.leader.map_or("none".into(), |l| format!("node {l}"))
                )
            } else if predicted.is_none() && lossy(config) {
                "loss differs by design: the simulator breaks the whole link for a tick and loses what is in \
                 flight, real mode drops single packets, which TCP retransmits; the oracle models neither"
                    .into()
            } else if predicted.is_none() {
                "the oracle does not model this fault, so neither run is held to an outcome".into()
            } else if predicted == Some(Availability::Either) {
                "the oracle allows either outcome here: a race decides, and the two runs raced differently".into()
            } else if let Some(r) = real_v.as_ref().filter(|r| !r.agree) {
                format!("real mode disagrees with the oracle: {}", r.note)
            } else if let Some(v) = sim_v.as_ref().filter(|v| !v.agree) {
                format!("the simulator disagrees with the oracle: {}", v.note)
            } else {
                "both runs agree with the oracle, and read differently only below its bar".into()
            };
            rows.push(Row {
                window: window.clone(),
                dc: dc.to_string(),
                predicted: predicted.map_or("not modelled", |p| p.name()).to_string(),
                sim: s,
                real: o,
                agree,
                why,
            });
        }
    }
    rows
}

fn lossy(config: &RunConfig) -> bool {
    config.schedule.steps.iter().any(|s| matches!(s.fault, crate::sim::schedule::Fault::Loss { .. }))
}

/// The agreement table in Markdown: one line per row, with the case's name.
pub fn markdown(cases: &[(String, Vec<Row>)]) -> String {
    let mut out = String::from(
        "| case | dc | predicted | simulator | real | agree | why they differ |\n|---|---|---|---|---|---|---|\n",
    );
    for (name, rows) in cases {
        if rows.is_empty() {
            out.push_str(&format!("| {name} | — | not predicted | — | — | — | no window the oracle models |\n"));
        }
        for r in rows {
            out.push_str(&format!(
                "| {name} | {} | {} | {} | {} | {} | {} |\n",
                r.dc,
                r.predicted,
                r.sim.name(),
                r.real.name(),
                if r.agree { "yes" } else { "NO" },
                r.why
            ));
        }
    }
    out
}
