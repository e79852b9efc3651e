//! Rewrites `docs/quorum-math.md` from the tool's own output: `cargo run -p quorumlab-quorum --example gen-docs`.

fn main() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/quorum-math.md");
    if let Err(error) = std::fs::write(&path, quorumlab_quorum::guide::quorum_math_guide()) {
        eprintln!("gen-docs: cannot write {}: {error}", path.display());
        std::process::exit(1);
    }
    println!("wrote {}", path.display());
}
