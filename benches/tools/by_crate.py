#!/usr/bin/env python3
"""Where simulation time goes, by crate, from `perf script` output.

Each sample's self time is charged to the innermost stack frame that belongs to a named crate,
so an allocation or a memcpy counts for the crate that asked for it (sled, h2, ...), not for
libc. Only the simulation's samples count (see `counts`): the bench's stepping and its short start-up
(which steps the same way), not criterion's own work. See docs/simulation-speed.md for how the figures there were taken:

    perf record -F 500 --call-graph dwarf,32768 -o perf.data \\
        target/release/deps/sim_speed-<hash> --bench 3_voters/loaded --profile-time 8
    perf script -i perf.data | python3 benches/tools/by_crate.py
"""
import collections
import re
import sys

CRATES = {
    "quorumlab", "sled", "h2", "hyper", "hyper_util", "tonic", "prost", "openraft", "turmoil",
    "tokio", "tower", "tracing", "tracing_subscriber", "bincode", "serde", "http", "bytes",
    "futures", "rand", "crossbeam", "parking_lot",
}
# How the crates group in the docs' tables.
GROUPS = {
    "gRPC (tonic, hyper, h2, http, bytes, prost, tower)":
        {"tonic", "hyper", "hyper_util", "h2", "http", "bytes", "prost", "tower"},
    "tokio runtime (tasks, timers, wakeups)": {"tokio", "parking_lot"},
    "turmoil (network, per-host ticks)": {"turmoil"},
    "sled + bincode (storage)": {"sled", "bincode", "serde"},
    "openraft": {"openraft"},
    "quorumlab (services, state machine, snapshots, sim trace)": {"quorumlab"},
}


def crate_of(symbol):
    """The crate a demangled frame belongs to, or None for std, core, alloc and libc."""
    s = symbol.lstrip("<&*").replace("dyn ", "").replace("mut ", "")
    m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)::", s)
    if not m:
        return None
    if m.group(1) in CRATES:
        return m.group(1)
    # `<alloc::vec::Vec<T> as sled::...>` belongs to sled.
    m = re.search(r" as ([A-Za-z_][A-Za-z0-9_]*)::", symbol)
    return m.group(1) if m and m.group(1) in CRATES else None


def samples(lines):
    """Yields each sample's frames, innermost first."""
    frames = None
    for line in lines:
        if not line.strip():
            if frames:
                yield frames
            frames = None
        elif frames is None:
            frames = []  # the sample's header line
        else:
            parts = line.strip().split(None, 1)
            if len(parts) == 2:
                frames.append(re.sub(r"\s+\(\S+\)$", "", parts[1]))
    if frames:
        yield frames


def counts(frames):
    """Whether a sample is the simulation's work.

    Under `SimCluster::run_until`, or cut short: perf copies 32 KiB of stack per sample, and the
    deepest futures (openraft's RaftCore and replication tasks inside hyper, tokio and turmoil)
    need more, so their stacks end in an unknown frame before reaching the bench's own. Dropping
    those (as this script did at first) hid about a fifth of a loaded run, most of the log store.
    sled's own threads (flush and I/O pool) count too: they work for the simulation.
    """
    if any("SimCluster::run_until" in f for f in frames):
        return True
    if any(f.startswith("criterion::") for f in frames):
        return False
    if any(f.startswith("sled::") for f in frames) and frames[-1].startswith("clone"):
        return True
    return bool(frames) and "[unknown]" in frames[-1]


def main():
    by_crate = collections.Counter()
    total = 0
    for frames in samples(sys.stdin):
        if not counts(frames):
            continue
        total += 1
        by_crate[next((c for c in map(crate_of, frames) if c), "other")] += 1
    if total == 0:
        sys.exit("no samples of the simulation: was perf run with --call-graph dwarf?")
    print(f"{total} samples of the simulation\n")
    print("| group | self time |\n|---|---|")
    grouped = set()
    for name, crates in GROUPS.items():
        n = sum(by_crate[c] for c in crates)
        grouped |= crates
        print(f"| {name} | {100 * n / total:.0f}% |")
    rest = sum(n for c, n in by_crate.items() if c not in grouped)
    print(f"| other | {100 * rest / total:.0f}% |")
    print("\nby crate:", ", ".join(f"{c} {100 * n / total:.1f}%" for c, n in by_crate.most_common()))


if __name__ == "__main__":
    main()
