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
