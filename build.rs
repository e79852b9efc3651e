//! Generates the gRPC code from `proto/` with a vendored protoc, so a fresh machine needs no system package.
//!
//! It also watches for `--cfg tokio_unstable` (see `.cargo/config.toml`), which deterministic
//! simulation needs and a user's `RUSTFLAGS` silently drops. Missing, it is only a warning here:
//! `cargo run` and real processes do not need it. Simulated test targets refuse to compile
//! without it, and a simulation started any other way stops with `runtime::NEEDS_TOKIO_UNSTABLE`.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo::rustc-check-cfg=cfg(tokio_unstable)");
    println!("cargo:rerun-if-env-changed=RUSTFLAGS");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    if std::env::var_os("CARGO_CFG_TOKIO_UNSTABLE").is_none() {
        println!(
            "cargo::warning=built without `--cfg tokio_unstable` (a RUSTFLAGS variable replaces .cargo/config.toml's): \
             real mode works, simulations will refuse to run; add `--cfg tokio_unstable` to RUSTFLAGS"
        );
    }
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; nothing else reads the environment concurrently.
    unsafe { std::env::set_var("PROTOC", protoc) };
    println!("cargo:rerun-if-changed=proto/quorumlab.proto");
    tonic_prost_build::configure().compile_protos(&["proto/quorumlab.proto"], &["proto"])?;
    // etcd's KV.Put, for the etcd comparison benchmark only (benches/etcd_compare.rs): no server, no other call.
    println!("cargo:rerun-if-changed=benches/etcd/kv.proto");
    tonic_prost_build::configure().build_server(false).compile_protos(&["benches/etcd/kv.proto"], &["benches/etcd"])?;
    Ok(())
}
