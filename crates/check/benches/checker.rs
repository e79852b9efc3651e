//! Criterion benchmarks for issue 3's goals: the whole Knossos set (< 1 s), synthetic kv histories of 10,000
//! and 100,000 ops over 100 keys with 10 clients and 1 % unknown outcomes (100k < 2 s), and an adversarial
//! single-key history with 20 concurrent clients. Memo sizes are printed once per benchmark so memory is
//! reported next to time. Run: `cargo bench -p quorumlab-check`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use quorumlab_check::format::{default_model, read_history, InputFormat};
use quorumlab_check::synth::{kv_history, SplitMix, SynthConfig};
use quorumlab_check::{check_history, Budget, History, Kv, ModelKind, Outcome, Verdict};

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

criterion_group!(benches, bench_knossos, bench_kv_10k, bench_kv_100k, bench_adversarial);
criterion_main!(benches);
