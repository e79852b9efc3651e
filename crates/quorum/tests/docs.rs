//! The guide is generated; this fails when the committed copy drifts from the code.

#[test]
fn quorum_math_guide_matches_the_generator() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/quorum-math.md");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = quorumlab_quorum::guide::quorum_math_guide();
    assert!(
        committed == generated,
        "docs/quorum-math.md is stale: run `cargo run -p quorumlab-quorum --example gen-docs` and commit it"
    );
}
