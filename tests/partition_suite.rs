//! The partition suite: every shipped topology under every single fault it can suffer, each over several seeds,
//! with every invariant, the client history and the oracle's availability prediction checked.

use std::time::Duration;

use quorumlab::sim::run::{run, RunConfig};
use quorumlab::sim::schedule::{Fault, Schedule};
use quorumlab_quorum::shipped;

#[test]
fn smoke_one_cut() {
    quorumlab::sim::trace::init_tracing();
    let t = shipped::load("etcd-2-2-1").unwrap();
    let fault = Fault::parse("cut:dc1-dc2", &t).unwrap();
    let cfg = RunConfig::new(&t, Schedule::single(fault, Duration::ZERO, Duration::from_secs(12)), 1);
    let start = std::time::Instant::now();
    let r = run(&cfg);
    println!("wall {:?}", start.elapsed());
    println!("{}", serde_json::to_string_pretty(&r).unwrap());
    for l in r.trace.iter().filter(|l| l.contains("nemesis") || l.contains("Leader")).take(40) {
        println!("{l}");
    }
    assert!(r.passed(), "{:#?}", r.failures());
}
