//! Every Knossos reference history gets the verdict its folder names (`good/` linearizable, `bad/` not).
//! The `bad/` folder is what proves the checker can say no.

mod common;

use std::path::Path;

use quorumlab_check::format::{default_model, read_history, InputFormat};
use quorumlab_check::{check_history, Budget, Outcome};

fn check_folder(model_dir: &str, verdict_dir: &str, expected: Outcome) -> usize {
    let dir = common::knossos_dir().join(model_dir).join(verdict_dir);
    let files = common::edn_files(&dir);
    assert!(!files.is_empty(), "no histories in {}", dir.display());
    let mut wrong = Vec::new();
    for file in &files {
        let outcome = verdict_of(file);
        if outcome != expected {
            wrong.push(format!("{}: {outcome:?}", file.display()));
        }
    }
    assert!(wrong.is_empty(), "expected {expected:?} for every file in {}, got:\n{}", dir.display(), wrong.join("\n"));
    files.len()
}

fn verdict_of(file: &Path) -> Outcome {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let (history, format) =
        read_history(&text, InputFormat::Auto).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert_eq!(format, InputFormat::JepsenEdn, "{}", file.display());
    let model = default_model(format, &history);
    check_history(&history, &model, &Budget::unlimited()).unwrap_or_else(|e| panic!("{}: {e}", file.display())).outcome
}

#[test]
fn every_good_cas_register_history_is_linearizable() {
    let n = check_folder("cas-register", "good", Outcome::Linearizable);
    assert_eq!(n, 113, "the README promises 113 good cas-register histories");
}

#[test]
fn every_bad_cas_register_history_is_not_linearizable() {
    let n = check_folder("cas-register", "bad", Outcome::NotLinearizable);
    assert_eq!(n, 7, "the README promises 7 bad cas-register histories");
}

#[test]
fn the_multi_register_history_is_linearizable() {
    check_folder("multi-register", "good", Outcome::Linearizable);
}
