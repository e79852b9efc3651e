//! The topologies shipped in `topologies/`, embedded so `quorumlab quorum explain etcd-2-2-1` works from any
//! directory, and the rule for turning a command-line argument into a topology.

use std::path::Path;

use crate::topology::{Topology, TopologyError};

/// Names of the shipped topologies, smallest lesson first.
pub const NAMES: [&str; 7] = ["etcd-3", "etcd-5", "etcd-2-2", "etcd-1-1-1", "etcd-2-2-1", "etcd-3-2", "etcd-3-3-1"];

/// The embedded text of a shipped topology.
pub fn text(name: &str) -> Option<&'static str> {
    Some(match name {
        "etcd-3" => include_str!("../../../topologies/etcd-3.toml"),
        "etcd-5" => include_str!("../../../topologies/etcd-5.toml"),
        "etcd-2-2" => include_str!("../../../topologies/etcd-2-2.toml"),
        "etcd-1-1-1" => include_str!("../../../topologies/etcd-1-1-1.toml"),
        "etcd-2-2-1" => include_str!("../../../topologies/etcd-2-2-1.toml"),
        "etcd-3-2" => include_str!("../../../topologies/etcd-3-2.toml"),
        "etcd-3-3-1" => include_str!("../../../topologies/etcd-3-3-1.toml"),
        _ => return None,
    })
}

/// Parses a shipped topology by name (labelled `topologies/<name>.toml`).
pub fn load(name: &str) -> Result<Topology, TopologyError> {
    let label = format!("topologies/{name}.toml");
    match text(name) {
        Some(text) => Topology::parse(&label, text),
        None => Err(unknown(name)),
    }
}

/// Resolves a command-line argument: an existing file path, else `topologies/<arg>.toml` under the current
/// directory, else a shipped name. Reads from disk only through `read`, so tests can stay in memory.
pub fn resolve(arg: &str) -> Result<Topology, TopologyError> {
    if Path::new(arg).is_file() {
        return read_file(arg);
    }
    let local = format!("topologies/{arg}.toml");
    if !arg.contains('/') && Path::new(&local).is_file() {
        return read_file(&local);
    }
    let name = arg.strip_prefix("topologies/").unwrap_or(arg);
    let name = name.strip_suffix(".toml").unwrap_or(name);
    if text(name).is_some() {
        return load(name);
    }
    Err(unknown(arg))
}

fn read_file(path: &str) -> Result<Topology, TopologyError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| TopologyError::new(path, None, format!("cannot read: {e}")))?;
    Topology::parse(path, &text)
}

fn unknown(arg: &str) -> TopologyError {
    TopologyError::new(arg, None, format!("no such file, and not a shipped topology (shipped: {})", NAMES.join(", ")))
}
