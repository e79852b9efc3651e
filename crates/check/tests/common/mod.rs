//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Finds `shared/histories/knossos`: `$QUORUMLAB_HISTORIES` if set (pointing at `histories/` or at
/// `knossos/` itself), otherwise the first `shared/histories/knossos` found walking up from this crate. In CI
/// `shared/` sits beside the clone, so walking up reaches it. Missing data is a failure, never a silent pass.
pub fn knossos_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("QUORUMLAB_HISTORIES") {
        let dir = PathBuf::from(dir);
        for candidate in [dir.join("knossos"), dir.clone()] {
            if candidate.join("cas-register").is_dir() {
                return candidate;
            }
        }
        panic!("QUORUMLAB_HISTORIES={} has no knossos/cas-register folder", dir.display());
    }
    let start = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in start.ancestors() {
        let candidate = dir.join("shared/histories/knossos");
        if candidate.is_dir() {
            return candidate;
        }
    }
    panic!(
        "could not find shared/histories/knossos in any folder above {}; check out `shared/` beside the \
         repository or set QUORUMLAB_HISTORIES to its histories/ folder",
        start.display()
    );
}

/// Every `.edn` file under `dir`, sorted so test output is stable.
pub fn edn_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "edn"))
        .collect();
    files.sort();
    files
}

use quorumlab_check::synth::{kv_history, SplitMix, SynthConfig};
use quorumlab_check::{EventKind, History, Value};

/// The shape of issue 8's report: 50 clients and 10 keys `k0`…`k9`. 25 clients work on nine easy keys; the
/// other 25 hammer `hard_key` alone with `hard_ops` operations, 2 % of them with unknown outcomes, which makes
/// its search expensive although it is linearizable. One early read of `failing_key` is changed to a value
/// nobody wrote, so that key is not linearizable and its search fails within a few steps.
pub fn fifty_clients_ten_keys(failing_key: usize, hard_key: usize, hard_ops: usize) -> History {
    assert_ne!(failing_key, hard_key);
    let easy_names: Vec<String> = (0..10).filter(|&k| k != hard_key).map(|k| format!("k{k}")).collect();
    let easy = SynthConfig { operations: 2_000, keys: 9, clients: 25, unknown_per_mille: 10 };
    let mut easy = kv_history(&easy, &mut SplitMix(11));
    for event in &mut easy.events {
        let synthetic: usize = event.key.as_deref().and_then(|k| k[1..].parse().ok()).expect("synth keys are k<n>");
        event.key = Some(easy_names[synthetic].clone());
    }
    let hard = SynthConfig { operations: hard_ops, keys: 1, clients: 25, unknown_per_mille: 20 };
    let mut hard = kv_history(&hard, &mut SplitMix(5));
    for event in &mut hard.events {
        event.key = Some(format!("k{hard_key}"));
        event.process += 25;
    }
    // Both generators stamp event i of their run at a time that only grows: merging by time keeps each
    // history's order and each process's invoke before its completion.
    let mut events = Vec::with_capacity(easy.events.len() + hard.events.len());
    let (mut a, mut b) = (easy.events.into_iter().peekable(), hard.events.into_iter().peekable());
    loop {
        let take_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => x.time_ns <= y.time_ns,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        events.extend(if take_a { a.next() } else { b.next() });
    }
    let mut history = History { events };
    let failing = format!("k{failing_key}");
    let read = history
        .events
        .iter()
        .position(|e| e.kind == EventKind::Ok && e.f == "get" && e.key.as_deref() == Some(failing.as_str()))
        .expect("the failing key has a successful get");
    history.events[read].value = Value::Str("never written".into());
    history
}
