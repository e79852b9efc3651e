//! Criterion benchmarks for issue 3's goals: the whole Knossos set (< 1 s), synthetic kv histories of 10,000
//! and 100,000 ops over 100 keys with 10 clients and 1 % unknown outcomes (100k < 2 s), and an adversarial
//! single-key history with 20 concurrent clients; issue 8's 50-client, 10-key history with one failing key and
//! one hard innocent key. Memo sizes are printed once per benchmark so memory is
//! reported next to time. Run: `cargo bench -p quorumlab-check`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use quorumlab_check::format::{default_model, read_history, InputFormat};
use quorumlab_check::synth::{kv_history, SplitMix, SynthConfig};
use quorumlab_check::{
    check_history, check_history_with_options, Budget, CheckOptions, History, Kv, ModelKind, Outcome, Verdict,
};

fn knossos_texts() -> Vec<(String, String)> {
    let root = common::knossos_dir();
    let mut texts = Vec::new();
    for folder in ["cas-register/good", "cas-register/bad", "multi-register/good"] {
        for file in common::edn_files(&root.join(folder)) {
            let text = std::fs::read_to_string(&file).expect("readable history");
            texts.push((file.display().to_string(), text));
        }
    }
    texts
}

fn check_text(text: &str) -> Verdict {
    let (history, format) = read_history(text, InputFormat::Auto).expect("valid history");
    check_history(&history, &default_model(format, &history), &Budget::unlimited()).expect("well-formed")
}

fn report(name: &str, verdicts: &[Verdict]) {
    let ops: usize = verdicts.iter().map(|v| v.stats.operations).sum();
    let steps: u64 = verdicts.iter().map(|v| v.stats.steps).sum();
    let entries = verdicts.iter().map(|v| v.stats.peak_memo_entries).max().unwrap_or(0);
    let bytes = verdicts.iter().map(|v| v.stats.peak_memo_bytes_estimate).max().unwrap_or(0);
    eprintln!(
        "[{name}] {ops} ops, {steps} search steps, peak memo {entries} entries (~{:.1} MiB estimated)",
        bytes as f64 / (1 << 20) as f64
    );
}

fn synthetic(operations: usize, keys: usize, clients: usize, seed: u64) -> History {
    let config = SynthConfig { operations, keys, clients, unknown_per_mille: 10 };
    kv_history(&config, &mut SplitMix(seed))
}

fn bench_knossos(c: &mut Criterion) {
    let texts = knossos_texts();
    let verdicts: Vec<Verdict> = texts.iter().map(|(_, t)| check_text(t)).collect();
    report(&format!("knossos set, {} files", texts.len()), &verdicts);
    c.bench_function("knossos_set_parse_and_check", |b| {
        b.iter(|| {
            texts.iter().map(|(_, t)| check_text(black_box(t)).outcome).filter(|o| *o == Outcome::Linearizable).count()
        })
    });
}

fn bench_kv(c: &mut Criterion, operations: usize) {
    let history = synthetic(operations, 100, 10, 42);
    let model = ModelKind::Kv(Kv::default());
    let verdict = check_history(&history, &model, &Budget::unlimited()).expect("well-formed");
    assert_eq!(verdict.outcome, Outcome::Linearizable, "synthetic histories are linearizable by construction");
    report(&format!("kv {operations} ops / 100 keys / 10 clients / 1% unknown"), &[verdict]);
    let mut group = c.benchmark_group("kv");
    group.sample_size(10).measurement_time(Duration::from_secs(10));
    group.bench_function(format!("{operations}_ops_100_keys"), |b| {
        b.iter(|| check_history(black_box(&history), &model, &Budget::unlimited()).map(|v| v.outcome))
    });
    group.finish();
}

fn bench_kv_10k(c: &mut Criterion) {
    bench_kv(c, 10_000);
}

fn bench_kv_100k(c: &mut Criterion) {
    bench_kv(c, 100_000);
}

/// One key, 20 clients always busy: every op overlaps ~19 others. Without unknown outcomes 1,000 ops; with
/// 1 % unknown outcomes (each stays concurrent with everything after it) only 200, because that is where
/// the search stops being cheap: 1,000 such ops exhaust a 200 MiB memo.
fn bench_adversarial(c: &mut Criterion) {
    let model = ModelKind::Kv(Kv::default());
    let mut group = c.benchmark_group("adversarial_single_key_20_clients");
    group.sample_size(10).measurement_time(Duration::from_secs(10));
    for (operations, unknown_per_mille) in [(1_000, 0), (200, 10)] {
        let config = SynthConfig { operations, keys: 1, clients: 20, unknown_per_mille };
        let history = kv_history(&config, &mut SplitMix(7));
        let verdict = check_history(&history, &model, &Budget::unlimited()).expect("well-formed");
        assert_eq!(verdict.outcome, Outcome::Linearizable);
        report(&format!("adversarial {operations} ops, 1 key, 20 clients, {unknown_per_mille}‰ unknown"), &[verdict]);
        group.bench_function(format!("{operations}_ops_{unknown_per_mille}_per_mille_unknown"), |b| {
            b.iter(|| check_history(black_box(&history), &model, &Budget::unlimited()).map(|v| v.outcome))
        });
    }
    group.finish();
}

/// Issue 8's shape: 50 clients, 10 keys, `k3` not linearizable, `k7` innocent but hard (its search runs past
/// 20 million steps). The default check stops after `k3`; `--all-keys` has to search `k7` to the end of its
/// budget, here 2 million steps. Set `QUORUMLAB_BENCH_BEFORE=1` to also time, once, the behaviour before
/// early stop: every key, one thread, the command line's default budget (60 s, 1 GiB of memo per key). Measured
/// on this machine, with the code before early stop too: ~30 s and 91.6 million steps, after which `k7`'s
/// memo passes 1 GiB and `k7` alone is reported unknown.
fn bench_fifty_clients(c: &mut Criterion) {
    let history = common::fifty_clients_ten_keys(3, 7, 600);
    let model = ModelKind::Kv(Kv::default());
    let stop = CheckOptions::with_budget(Budget::with_max_steps(20_000_000));
    let all_keys = CheckOptions { all_keys: true, ..CheckOptions::with_budget(Budget::with_max_steps(2_000_000)) };
    for (name, options) in [("stop at first failing key", &stop), ("all keys, 2M-step budget", &all_keys)] {
        let verdict = check_history_with_options(&history, &model, options).expect("well-formed");
        assert_eq!(verdict.outcome, Outcome::NotLinearizable);
        report(&format!("50 clients / 10 keys, {name}"), &[verdict]);
    }
    if std::env::var_os("QUORUMLAB_BENCH_BEFORE").is_some() {
        let before = CheckOptions {
            all_keys: true,
            threads: std::num::NonZeroUsize::new(1),
            budget: Budget::with_timeout(Duration::from_secs(60)),
        };
        #[allow(clippy::disallowed_methods, reason = "a one-off wall-clock figure for the report, not a decision")]
        let start = std::time::Instant::now();
        let verdict = check_history_with_options(&history, &model, &before).expect("well-formed");
        #[allow(clippy::disallowed_methods, reason = "a one-off wall-clock figure for the report, not a decision")]
        let elapsed = start.elapsed();
        let k7 = verdict.partitions.get(7).map(|p| p.outcome);
        report(
            &format!("50 clients / 10 keys, before early stop: {elapsed:.1?}, {:?}, k7 {k7:?}", verdict.outcome),
            &[verdict],
        );
    }
    let mut group = c.benchmark_group("fifty_clients_ten_keys");
    group.sample_size(10).measurement_time(Duration::from_secs(10));
    group.bench_function("stop_at_first_failing_key", |b| {
        b.iter(|| check_history_with_options(black_box(&history), &model, &stop).map(|v| v.outcome))
    });
    group.bench_function("all_keys_2m_step_budget", |b| {
        b.iter(|| check_history_with_options(black_box(&history), &model, &all_keys).map(|v| v.outcome))
    });
    group.finish();
}

criterion_group!(benches, bench_knossos, bench_kv_10k, bench_kv_100k, bench_adversarial, bench_fifty_clients);
criterion_main!(benches);
