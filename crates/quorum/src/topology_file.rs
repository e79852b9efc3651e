//! Reading a topology file: TOML in, a validated [`Topology`] or an error naming file, line and field out.
//!
//! The file format (see `topologies/etcd-2-2-1.toml`):
//!
//! ```toml
//! name = "etcd-2-2-1"
//! description = "one line: what this topology teaches"
//!
//! [[datacenter]]          # one per datacenter, in the order node ids and database member ids are given
//! name = "dc1"            # lowercase letters, digits and '-': hosts are named dc1-n1, dc1-n2, ...
//! voters = 2
//! learners = 0            # optional, default 0
//! clients = true          # optional, default false: clients sit here (a DC may hold clients and no node)
//! databases = 2           # optional, default 0, at most 9: database hosts dc1-db1, dc1-db2, ... sit here; their
//!                         #   member ids count 1, 2, ... across datacenters in file order, apart from node ids
//!                         #   (a DC may hold only databases: voters = 0, no learners, no clients)
//! fence_path = "in-band"  # optional, default "out-of-band": how the fence devices (power switch, firewall,
//!                         #   credential authority) acting on this DC's database hosts are reached:
//!                         #   "out-of-band" over a management network that no network fault cuts; "in-band" over
//!                         #   the same links as everything else, so a cut between the fencer's DC and this one
//!                         #   leaves the devices out of the fencer's reach
//!
//! [local_link]            # optional, default 1 ms, 0 ms jitter: every link inside a datacenter
//! latency_ms = 1
//! jitter_ms = 0
//!
//! [[link]]                # exactly one per pair of datacenters
//! between = ["dc1", "dc2"]
//! latency_ms = 10
//! jitter_ms = 2
//!
//! [raft]                  # optional, etcd's defaults
//! heartbeat_ms = 100
//! election_timeout_ms_min = 1000
//! election_timeout_ms_max = 2000
//! rpc_timeout_ms = 200              # optional: deadline of one peer RPC
//! request_timeout_ms = 2000         # optional: deadline of one client request on a node
//! ```
//!
//! Numbers are read as raw TOML values and checked here rather than by serde, so the error can say which
//! datacenter or link it belongs to instead of "invalid type: integer `-1`, expected u32".

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use crate::topology::{pair_key, Datacenter, FencePath, LinkProfile, RaftTiming, Topology};

/// Most voters or learners one datacenter may declare: enough for any real cluster, small enough that the
/// enumerations in `explain` stay instant.
pub const MAX_NODES_PER_DC: i64 = 99;

/// Most database hosts one datacenter may declare: a primary and its replicas, and `<dc>-db<k>` keeps `k` one digit.
pub const MAX_DATABASES_PER_DC: i64 = 9;

/// The values `fence_path` accepts, as the file spells them.
const FENCE_PATHS: [(&str, FencePath); 2] = [("out-of-band", FencePath::OutOfBand), ("in-band", FencePath::InBand)];

/// A topology file that cannot be used, with the place to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct TopologyError {
    /// The path or name the topology was loaded from.
    pub file: String,
    /// 1-based line of the offending field, when known.
    pub line: Option<usize>,
    pub message: String,
}

impl TopologyError {
    pub fn new(file: &str, line: Option<usize>, message: impl Into<String>) -> TopologyError {
        TopologyError { file: file.to_string(), line, message: message.into() }
    }

    fn render(&self) -> String {
        match self.line {
            Some(line) => format!("{}:{}: {}", self.file, line, self.message),
            None => format!("{}: {}", self.file, self.message),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopology {
    name: Spanned<String>,
    description: Spanned<String>,
    #[serde(default)]
    datacenter: Vec<RawDatacenter>,
    local_link: Option<RawLink>,
    #[serde(default)]
    link: Vec<RawLink>,
    raft: Option<RawRaft>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatacenter {
    name: Spanned<String>,
    voters: Spanned<toml::Value>,
    learners: Option<Spanned<toml::Value>>,
    #[serde(default)]
    clients: bool,
    databases: Option<Spanned<toml::Value>>,
    fence_path: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    between: Option<Spanned<Vec<Spanned<String>>>>,
    latency_ms: Spanned<toml::Value>,
    jitter_ms: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRaft {
    heartbeat_ms: Option<Spanned<toml::Value>>,
    election_timeout_ms_min: Option<Spanned<toml::Value>>,
    election_timeout_ms_max: Option<Spanned<toml::Value>>,
    rpc_timeout_ms: Option<Spanned<toml::Value>>,
    request_timeout_ms: Option<Spanned<toml::Value>>,
}

/// Turns byte offsets into 1-based line numbers for one file.
struct Locator<'a> {
    file: &'a str,
    text: &'a str,
}

impl Locator<'_> {
    fn line_of(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
    }

    fn error_at(&self, span: &Range<usize>, message: impl Into<String>) -> TopologyError {
        TopologyError::new(self.file, Some(self.line_of(span)), message)
    }

    /// A whole number in `0..=max`, or an error that says `what` must be one.
    fn whole_number(&self, value: &Spanned<toml::Value>, what: &str, max: i64) -> Result<u64, TopologyError> {
        match value.get_ref() {
            toml::Value::Integer(n) if (0..=max).contains(n) => Ok(*n as u64),
            toml::Value::Integer(n) if *n > max => {
                Err(self.error_at(&value.span(), format!("{what} = {n} is more than this tool models (at most {max})")))
            }
            _ => Err(self.error_at(&value.span(), format!("{what} must be a whole number ≥ 0"))),
        }
    }

    /// One of [`FENCE_PATHS`], or an error that lists them.
    fn fence_path(&self, value: &Spanned<toml::Value>, what: &str) -> Result<FencePath, TopologyError> {
        if let toml::Value::String(text) = value.get_ref() {
            if let Some((_, path)) = FENCE_PATHS.iter().find(|(name, _)| name == text) {
                return Ok(*path);
            }
        }
        let allowed: Vec<String> = FENCE_PATHS.iter().map(|(name, _)| format!("\"{name}\"")).collect();
        Err(self.error_at(&value.span(), format!("{what} must be {}, not {}", allowed.join(" or "), value.get_ref())))
    }
}

impl Topology {
    /// Parses and validates a topology file. `file` is only used to label errors and [`Topology::source`].
    pub fn parse(file: &str, text: &str) -> Result<Topology, TopologyError> {
        let at = Locator { file, text };
        let raw: RawTopology = toml::from_str(text).map_err(|error| {
            let line = error.span().map(|span| at.line_of(&span));
            let message: Vec<&str> = error.message().lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            TopologyError::new(file, line, message.join(": "))
        })?;
        validate(&at, raw)
    }
}

fn validate(at: &Locator, raw: RawTopology) -> Result<Topology, TopologyError> {
    if raw.name.get_ref().trim().is_empty() {
        return Err(at.error_at(&raw.name.span(), "name must not be empty"));
    }
    let description = raw.description.get_ref().trim();
    if description.is_empty() || description.contains('\n') {
        return Err(at.error_at(&raw.description.span(), "description must be one non-empty line"));
    }
    if raw.datacenter.is_empty() {
        return Err(TopologyError::new(at.file, None, "no [[datacenter]]: a topology needs at least one"));
    }

    let mut datacenters: Vec<Datacenter> = Vec::new();
    let mut first_line_of: BTreeMap<String, usize> = BTreeMap::new();
    for raw_dc in &raw.datacenter {
        let name = raw_dc.name.get_ref().clone();
        let name_ok = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.starts_with('-');
        if !name_ok {
            return Err(at.error_at(
                &raw_dc.name.span(),
                format!("datacenter name \"{name}\" must be lowercase letters, digits and '-' (it names hosts)"),
            ));
        }
        if let Some(first) = first_line_of.get(&name) {
            return Err(at.error_at(
                &raw_dc.name.span(),
                format!("duplicate datacenter name \"{name}\" (first declared on line {first})"),
            ));
        }
        first_line_of.insert(name.clone(), at.line_of(&raw_dc.name.span()));
        let context = format!("datacenter \"{name}\": voters");
        let voters = at.whole_number(&raw_dc.voters, &context, MAX_NODES_PER_DC)? as u32;
        let learners = match &raw_dc.learners {
            Some(value) => {
                at.whole_number(value, &format!("datacenter \"{name}\": learners"), MAX_NODES_PER_DC)? as u32
            }
            None => 0,
        };
        let databases = match &raw_dc.databases {
            Some(value) => {
                at.whole_number(value, &format!("datacenter \"{name}\": databases"), MAX_DATABASES_PER_DC)? as u32
            }
            None => 0,
        };
        let fence_path = match &raw_dc.fence_path {
            Some(value) => at.fence_path(value, &format!("datacenter \"{name}\": fence_path"))?,
            None => FencePath::OutOfBand,
        };
        if voters + learners + databases == 0 && !raw_dc.clients {
            return Err(at.error_at(
                &raw_dc.voters.span(),
                format!(
                    "datacenter \"{name}\" has no voters, no learners, no clients and no databases: give it a node, \
                     clients or databases, or remove it"
                ),
            ));
        }
        datacenters.push(Datacenter { name, voters, learners, clients: raw_dc.clients, databases, fence_path });
    }
    if datacenters.iter().all(|dc| dc.voters == 0) {
        return Err(at.error_at(
            &raw.datacenter[0].voters.span(),
            "zero voters in total: a cluster needs at least one voter to have a majority",
        ));
    }

    let local_link = match &raw.local_link {
        Some(link) => {
            if let Some(between) = &link.between {
                return Err(
                    at.error_at(&between.span(), "local_link applies inside every datacenter: remove `between`")
                );
            }
            link_profile(at, link, "local_link")?
        }
        None => LinkProfile { latency_ms: 1, jitter_ms: 0 },
    };
    let dc_links = dc_links(at, &raw.link, &datacenters, &first_line_of)?;
    let raft = raft_timing(at, raw.raft.as_ref())?;
    Ok(Topology::assemble(
        raw.name.into_inner().trim().to_string(),
        description.to_string(),
        at.file.to_string(),
        datacenters,
        local_link,
        dc_links,
        raft,
    ))
}

fn link_profile(at: &Locator, link: &RawLink, context: &str) -> Result<LinkProfile, TopologyError> {
    let latency_ms = at.whole_number(&link.latency_ms, &format!("{context}: latency_ms"), i64::MAX)?;
    let jitter_ms = match &link.jitter_ms {
        Some(value) => at.whole_number(value, &format!("{context}: jitter_ms"), i64::MAX)?,
        None => 0,
    };
    Ok(LinkProfile { latency_ms, jitter_ms })
}

fn dc_links(
    at: &Locator,
    raw_links: &[RawLink],
    datacenters: &[Datacenter],
    line_of_dc: &BTreeMap<String, usize>,
) -> Result<BTreeMap<(String, String), LinkProfile>, TopologyError> {
    let known = |name: &str| datacenters.iter().any(|dc| dc.name == name);
    let mut links = BTreeMap::new();
    let mut line_of_pair: BTreeMap<(String, String), usize> = BTreeMap::new();
    for raw_link in raw_links {
        let Some(between) = &raw_link.between else {
            return Err(at.error_at(&raw_link.latency_ms.span(), "[[link]] needs `between = [\"dcA\", \"dcB\"]`"));
        };
        let [a, b] = between.get_ref().as_slice() else {
            return Err(at.error_at(&between.span(), "link: `between` must name exactly two datacenters"));
        };
        for end in [a, b] {
            if !known(end.get_ref()) {
                return Err(at.error_at(
                    &end.span(),
                    format!("link {}–{}: unknown datacenter \"{}\"", a.get_ref(), b.get_ref(), end.get_ref()),
                ));
            }
        }
        if a.get_ref() == b.get_ref() {
            return Err(at.error_at(
                &between.span(),
                format!("link {0}–{0}: a link joins two different datacenters (use [local_link])", a.get_ref()),
            ));
        }
        let key = pair_key(a.get_ref(), b.get_ref());
        if let Some(first) = line_of_pair.get(&key) {
            return Err(at.error_at(
                &between.span(),
                format!("duplicate link {}–{} (first declared on line {first})", key.0, key.1),
            ));
        }
        line_of_pair.insert(key.clone(), at.line_of(&between.span()));
        let profile = link_profile(at, raw_link, &format!("link {}–{}", a.get_ref(), b.get_ref()))?;
        links.insert(key, profile);
    }
    for (i, a) in datacenters.iter().enumerate() {
        for b in &datacenters[i + 1..] {
            if !links.contains_key(&pair_key(&a.name, &b.name)) {
                return Err(TopologyError::new(
                    at.file,
                    line_of_dc.get(&b.name).copied(),
                    format!(
                        "no link between \"{}\" and \"{}\": add [[link]] between = [\"{}\", \"{}\"] with latency_ms",
                        a.name, b.name, a.name, b.name
                    ),
                ));
            }
        }
    }
    Ok(links)
}

fn raft_timing(at: &Locator, raw: Option<&RawRaft>) -> Result<RaftTiming, TopologyError> {
    let defaults = RaftTiming::default();
    let Some(raw) = raw else { return Ok(defaults) };
    let field = |value: &Option<Spanned<toml::Value>>, name: &str, default: u64| match value {
        Some(value) => at.whole_number(value, &format!("raft: {name}"), i64::MAX),
        None => Ok(default),
    };
    let heartbeat_ms = field(&raw.heartbeat_ms, "heartbeat_ms", defaults.heartbeat_ms)?;
    let min = field(&raw.election_timeout_ms_min, "election_timeout_ms_min", defaults.election_timeout_ms_min)?;
    let max =
        field(&raw.election_timeout_ms_max, "election_timeout_ms_max", defaults.election_timeout_ms_max.max(min))?;
    let span_of = |value: &Option<Spanned<toml::Value>>| value.as_ref().map(|v| v.span());
    if heartbeat_ms == 0 {
        let line = span_of(&raw.heartbeat_ms).map(|span| at.line_of(&span));
        return Err(TopologyError::new(at.file, line, "raft: heartbeat_ms must be at least 1"));
    }
    if min <= heartbeat_ms {
        let line = span_of(&raw.election_timeout_ms_min).or(span_of(&raw.heartbeat_ms)).map(|s| at.line_of(&s));
        return Err(TopologyError::new(
            at.file,
            line,
            format!(
                "raft: election_timeout_ms_min ({min}) must exceed heartbeat_ms ({heartbeat_ms}), \
                 or followers time out between heartbeats"
            ),
        ));
    }
    if max < min {
        let line = span_of(&raw.election_timeout_ms_max).map(|span| at.line_of(&span));
        return Err(TopologyError::new(
            at.file,
            line,
            format!("raft: election_timeout_ms_max ({max}) must be ≥ election_timeout_ms_min ({min})"),
        ));
    }
    let rpc_timeout_ms = field(&raw.rpc_timeout_ms, "rpc_timeout_ms", defaults.rpc_timeout_ms)?;
    if rpc_timeout_ms == 0 {
        let line = span_of(&raw.rpc_timeout_ms).map(|span| at.line_of(&span));
        return Err(TopologyError::new(at.file, line, "raft: rpc_timeout_ms must be at least 1"));
    }
    let request_timeout_ms = field(&raw.request_timeout_ms, "request_timeout_ms", defaults.request_timeout_ms)?;
    if request_timeout_ms < rpc_timeout_ms {
        let line = span_of(&raw.request_timeout_ms).or(span_of(&raw.rpc_timeout_ms)).map(|s| at.line_of(&s));
        return Err(TopologyError::new(
            at.file,
            line,
            format!(
                "raft: request_timeout_ms ({request_timeout_ms}) must be ≥ rpc_timeout_ms ({rpc_timeout_ms}), \
                 or a client request gives up before one replication round trip can finish"
            ),
        ));
    }
    Ok(RaftTiming {
        heartbeat_ms,
        election_timeout_ms_min: min,
        election_timeout_ms_max: max,
        rpc_timeout_ms,
        request_timeout_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_dc(fields: &str) -> Result<Topology, TopologyError> {
        let text =
            format!("name = \"t\"\ndescription = \"one datacenter\"\n\n[[datacenter]]\nname = \"dc1\"\n{fields}\n");
        Topology::parse("t.toml", &text)
    }

    #[test]
    fn databases_and_fence_path_default_to_none_and_out_of_band() {
        let topology = one_dc("voters = 3").expect("valid");
        let dc = &topology.datacenters()[0];
        assert_eq!((dc.databases, dc.fence_path), (0, FencePath::OutOfBand));
        assert!(topology.db_hosts().is_empty());
    }

    #[test]
    fn databases_and_fence_path_are_read() {
        let topology = one_dc("voters = 3\ndatabases = 9\nfence_path = \"in-band\"").expect("valid");
        let dc = &topology.datacenters()[0];
        assert_eq!((dc.databases, dc.fence_path), (9, FencePath::InBand));
        assert_eq!(topology.db_hosts().last().map(|db| db.host.as_str()), Some("dc1-db9"));
        let topology = one_dc("voters = 3\ndatabases = 0\nfence_path = \"out-of-band\"").expect("valid");
        assert_eq!(topology.fence_path("dc1"), Some(FencePath::OutOfBand));
    }

    #[test]
    fn bad_databases_and_fence_path_name_the_line_and_the_field() {
        let error = |fields: &str| one_dc(fields).expect_err("refused").to_string();
        assert_eq!(
            error("voters = 3\ndatabases = -1"),
            "t.toml:7: datacenter \"dc1\": databases must be a whole number ≥ 0"
        );
        assert_eq!(
            error("voters = 3\ndatabases = \"two\""),
            "t.toml:7: datacenter \"dc1\": databases must be a whole number ≥ 0"
        );
        assert_eq!(
            error("voters = 3\ndatabases = 12"),
            "t.toml:7: datacenter \"dc1\": databases = 12 is more than this tool models (at most 9)"
        );
        assert_eq!(
            error("voters = 3\nfence_path = \"sideways\""),
            "t.toml:7: datacenter \"dc1\": fence_path must be \"out-of-band\" or \"in-band\", not \"sideways\""
        );
        assert_eq!(
            error("voters = 3\nfence_path = \"OutOfBand\""),
            "t.toml:7: datacenter \"dc1\": fence_path must be \"out-of-band\" or \"in-band\", not \"OutOfBand\""
        );
    }

    #[test]
    fn a_datacenter_may_hold_only_databases() {
        let text = r#"
name = "t"
description = "voters in dc1, only databases in dc2"

[[datacenter]]
name = "dc1"
voters = 3
clients = true

[[datacenter]]
name = "dc2"
voters = 0
databases = 2
fence_path = "in-band"

[[link]]
between = ["dc1", "dc2"]
latency_ms = 10
"#;
        let topology = Topology::parse("t.toml", text).expect("a databases-only datacenter is accepted");
        assert_eq!(topology.nodes_in_dc("dc2"), Vec::<u64>::new());
        let dbs: Vec<_> = topology.db_hosts().iter().map(|db| (db.member, db.host.as_str())).collect();
        assert_eq!(dbs, vec![(1, "dc2-db1"), (2, "dc2-db2")]);
        assert_eq!(topology.client_dcs(), vec!["dc1"]);
        assert_eq!(topology.dc_of_host("dc2-db2"), Some("dc2"));
        // Whatever holds nothing at all is still refused.
        let empty = text.replace("databases = 2\n", "");
        let error = Topology::parse("t.toml", &empty).expect_err("an empty datacenter is refused").to_string();
        assert!(
            error.starts_with("t.toml:12: datacenter \"dc2\" has no voters, no learners, no clients and no databases"),
            "{error}"
        );
    }
}
