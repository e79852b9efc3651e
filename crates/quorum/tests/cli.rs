//! The three commands run end to end through `run`, with in-memory writers, parsed the way the main binary
//! will parse them (`quorumlab quorum …`).

use clap::Parser;
use quorumlab_quorum::cli::{run, Args};
use serde_json::Value;

#[derive(Parser)]
struct Quorumlab {
    #[command(subcommand)]
    command: Top,
}

#[derive(clap::Subcommand)]
enum Top {
    Quorum(Args),
}

/// Runs `quorumlab quorum <argv>`; returns (exit code, stdout, stderr).
fn quorum(argv: &str) -> (i32, String, String) {
    let words = ["quorumlab", "quorum"].into_iter().chain(argv.split_whitespace());
    let Top::Quorum(args) = Quorumlab::try_parse_from(words).expect("valid command line").command;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(args, &mut out, &mut err);
    (code, String::from_utf8(out).expect("utf-8"), String::from_utf8(err).expect("utf-8"))
}

fn json(argv: &str) -> Value {
    let (code, out, err) = quorum(&format!("{argv} --format json"));
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).expect("valid json")
}

#[test]
fn table_text_is_the_etcd_faq_table_and_says_why_even_sizes_add_nothing() {
    let (code, out, _) = quorum("table");
    assert_eq!(code, 0);
    let table: Vec<&str> = out.lines().take(10).collect();
    assert_eq!(
        table,
        [
            "Cluster Size  Majority  Failure Tolerance",
            "1             1         0",
            "2             2         0",
            "3             2         1",
            "4             3         1",
            "5             3         2",
            "6             4         2",
            "7             4         3",
            "8             5         3",
            "9             5         4",
        ]
    );
    assert!(out.contains("An even size adds no tolerance"));
}

#[test]
fn table_json_has_stable_field_names() {
    let value = json("table --max 4");
    assert_eq!(value["command"], "table");
    assert_eq!(value["schema_version"], 2);
    assert_eq!(value["rows"][3], serde_json::json!({"voters": 4, "majority": 3, "failures_tolerated": 1}));
    assert!(value["even_size_note"].as_str().is_some_and(|s| s.contains("no tolerance")));
}

#[test]
fn explain_2_2_1_shows_who_sees_both_sides_the_arithmetic_and_the_shared_voter() {
    let (code, out, _) = quorum("explain etcd-2-2-1");
    assert_eq!(code, 0);
    assert!(out.contains("majority          = 5/2 + 1 = 3"));
    assert!(out.contains("cut dc1–dc2 (dc3 sees both sides)  dc1        dc1 + dc3 = 2 + 1 = 3 ≥ 3"), "{out}");
    assert!(out.contains("                           dc2        dc2 + dc3 = 2 + 1 = 3 ≥ 3"));
    assert!(out.contains("lose dc2 + lose dc3"));
    assert!(out.contains("cut dc1–dc2 (dc3 sees both sides): a leader in dc1 or a leader in dc2:\n  {dc1-n1 dc1-n2 dc3-n1}\n  {dc2-n1 dc2-n2 dc3-n1}\n  share dc3-n1"));
}

#[test]
fn explain_json_names_every_fault_with_where_a_majority_survives() {
    let value = json("explain etcd-2-2-1");
    assert_eq!(
        (value["command"].as_str(), value["voters"].as_u64(), value["majority"].as_u64()),
        (Some("explain"), Some(5), Some(3))
    );
    let cut = value["single_faults"]
        .as_array()
        .expect("array")
        .iter()
        .find(|f| f["label"] == "cut dc1–dc2 (dc3 sees both sides)")
        .expect("the cut");
    assert_eq!(cut["majority_survives"], true);
    assert_eq!(cut["leader_dcs"], serde_json::json!(["dc1", "dc2", "dc3"]));
    assert_eq!(cut["both_sides_seen_by"], serde_json::json!([["dc1", "dc2", ["dc3"]]]));
    assert_eq!(cut["attempts"][0]["arithmetic"], "dc1 + dc3 = 2 + 1 = 3 ≥ 3");
    assert_eq!(cut["faults"][0], serde_json::json!({"shape": "cut_dc_link", "a": "dc1", "b": "dc2"}));
    assert_eq!(value["intersection"]["examples"][1]["shared"], serde_json::json!(["dc3-n1"]));
}

#[test]
fn explain_refuses_bad_input_with_exit_2_and_the_file_line() {
    let (code, out, err) = quorum("explain no-such-topology");
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(err.contains("not a shipped topology"), "{err}");
    let bad = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bad-topologies/negative-voters.toml");
    let (code, _, err) = quorum(&format!("explain {bad}"));
    assert_eq!(code, 2);
    assert!(err.contains("negative-voters.toml:6: datacenter \"dc3\": voters must be a whole number ≥ 0"), "{err}");
}

#[test]
fn place_5_over_3_ranks_2_2_1_first_and_says_why() {
    let (code, out, _) = quorum("place --voters 5 --dcs 3");
    assert_eq!(code, 0);
    assert!(
        out.contains("1     2/2/1      3/3      3/3       3/3            0/3         1/3             any one DC lost"),
        "{out}"
    );
    assert!(out.contains("2/2/1 beats 3/2: dc1 lost: it holds 3 > 2 = 5 − 3 voters, leaving 5 − 3 = 2 < 3"));
    assert!(out.contains("2/2/1 vs 1/1/1 (3 voters)"));
    assert!(out.contains("A 6th voter buys nothing and here it costs"), "{out}");
    assert!(out.contains("- it ranks above 3/1/1: survives losing any DC (yes vs no)"), "{out}");
    let value = json("place --voters 5 --dcs 3");
    let labels: Vec<&str> =
        value["placements"].as_array().expect("array").iter().filter_map(|p| p["label"].as_str()).collect();
    assert_eq!(labels, ["2/2/1", "3/1/1", "4/1", "3/2", "5"]);
    assert_eq!(value["placements"][0]["dc_loss_plus_node_survived"], serde_json::json!(["dc3"]));
}

#[test]
fn place_three_voters_in_one_dc_do_not_survive_losing_it() {
    let (code, out, _) = quorum("place --voters 3 --dcs 1");
    assert_eq!(code, 0);
    assert!(out.contains("dc1 lost: it holds 3 > 1 = 3 − 2 voters, leaving 3 − 3 = 0 < 2: no majority"), "{out}");
}

#[test]
fn place_exit_codes_separate_usage_errors_from_empty_answers() {
    assert_eq!(quorum("place --voters 0 --dcs 3").0, 2);
    assert_eq!(quorum("place --voters 5 --dcs 99").0, 2);
    let (code, _, err) = quorum("place --voters 5 --dcs 2 --max-per-dc 2");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no placement of 5 voters over 2 datacenters with at most 2 per datacenter"));
    assert_eq!(quorum("table --max 0").0, 2);
}

#[test]
fn markdown_renders_every_command_as_tables() {
    for argv in ["table", "explain etcd-3", "place --voters 3 --dcs 3"] {
        let (code, out, _) = quorum(&format!("{argv} --format markdown"));
        assert_eq!(code, 0);
        assert!(out.contains("|---|"), "{argv}: {out}");
    }
}

#[test]
fn every_documented_json_field_name_is_in_the_json_docs() {
    let docs = include_str!("../../../docs/quorum-json.md");
    let mut missing = Vec::new();
    fn walk(value: &Value, keys: &mut Vec<String>) {
        match value {
            Value::Object(map) => map.iter().for_each(|(k, v)| {
                keys.push(k.clone());
                walk(v, keys)
            }),
            Value::Array(items) => items.iter().for_each(|v| walk(v, keys)),
            _ => {}
        }
    }
    for argv in [
        "table",
        "explain etcd-2-2-1",
        "explain etcd-2-2-1 --fault cut:dc1:dc2 --leader dc1-n1",
        "place --voters 5 --dcs 3",
    ] {
        let mut keys = Vec::new();
        walk(&json(argv), &mut keys);
        missing.extend(
            keys.into_iter().filter(|k| !docs.contains(&format!("`{k}`")) && !docs.contains(&format!(".{k}`"))),
        );
    }
    missing.sort();
    missing.dedup();
    assert!(missing.is_empty(), "fields missing from docs/quorum-json.md: {missing:?}");
}

#[test]
fn explain_one_fault_shows_who_can_lead_and_the_wrong_half_rule_shows_split_brain() {
    let (code, out, _) = quorum("explain etcd-2-2 --fault cut:dc1:dc2 --rule half");
    assert_eq!(code, 0);
    assert!(out.starts_with("etcd-2-2, cut dc1–dc2, rule half (n/2), WRONG: majority = 2\n"), "{out}");
    assert!(out.contains("share no voter: both could lead and commit at once (split brain)"), "{out}");
    let (code, out, _) = quorum("explain etcd-2-2 --fault cut:dc1:dc2");
    assert_eq!(code, 0);
    assert!(out.contains("  no node can lead: every write is refused until links heal"), "{out}");
    let (_, out, _) = quorum("explain etcd-3-2 --fault lose:dc1");
    assert!(out.contains("every write is refused until enough voters are back"), "{out}");
}

#[test]
fn explain_the_2_2_1_cut_with_the_leader_in_dc1_strands_dc2_under_quorumlabs_node() {
    let (code, out, _) = quorum("explain etcd-2-2-1 --fault cut:dc1:dc2 --leader dc1-n1");
    assert_eq!(code, 0);
    assert!(out.contains("\ndc1-n1           dc1 ✓ dc2 ✓  dc1 ? dc2 ?  dc1 ✓ dc2 ✗   dc1-n1\n"), "{out}");
    assert!(out.contains("dc2 cannot write: the dc1 leader dc1-n1 keeps its lease through dc3-n1"), "{out}");
    let value = json("explain etcd-2-2-1 --fault cut:dc1:dc2 --leader dc1-n1");
    let lease = value["raft"]
        .as_array()
        .expect("array")
        .iter()
        .find(|o| o["leader_at_start"] == "dc1-n1" && o["variant"] == "leader_lease")
        .expect("the lease outcome");
    assert_eq!(lease["client_dcs"], serde_json::json!({"dc1": "available", "dc2": "unavailable"}));
    assert_eq!(lease["leaders_after"], serde_json::json!(["dc1-n1"]));
}

#[test]
fn explain_fault_flags_refuse_bad_input_with_exit_2() {
    for argv in [
        "explain etcd-2-2-1 --fault cut:dc1:dc9",
        "explain etcd-2-2-1 --fault melt:dc1",
        "explain etcd-2-2-1 --fault cut:dc1:dc1",
        "explain etcd-2-2-1 --fault lose:dc1 --leader dc9-n1",
        "explain etcd-2-2-1 --rule half",
        "explain etcd-2-2-1 --leader dc1-n1",
    ] {
        let (code, out, err) = quorum(argv);
        assert_eq!((code, out.as_str()), (2, ""), "{argv}: {err}");
        assert!(!err.is_empty(), "{argv}");
    }
}

#[test]
fn client_datacenters_with_only_a_learner_or_no_node_are_valid_and_write_through_others() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/topologies/clients-without-voters.toml");
    let (code, out, err) = quorum(&format!("explain {path}"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("learners          = 1: they copy the log but never vote and never count toward a majority"));
    assert!(out.contains("dc3 has clients but no voters"), "{out}");
    assert!(out.contains("dc4 has clients but no node"), "{out}");
    assert!(out.contains("dc4         0       0         yes      (clients only)"), "{out}");
    assert!(out.contains("lose dc2                           none             dc1 ✓ dc3 ✓"), "{out}");
}

#[test]
fn place_counts_stranded_clients_and_gives_one_datacenter_no_link_cut_to_survive() {
    let (code, out, _) = quorum("place --voters 4 --dcs 2");
    assert_eq!(code, 0);
    assert!(out.contains("3     2/2        0/2      0/1       0/1            0/1         0/2"), "{out}");
    assert!(out.contains("2     4          0/1      —         —              —           0/1"), "{out}");
    assert!(out.contains("cut dc1–dc2 (nobody sees both sides): a majority survives, but dc2's clients reach no possible leader: stranded"), "{out}");
    let value = json("place --voters 4 --dcs 2");
    let single = value["placements"].as_array().expect("array").iter().find(|p| p["label"] == "4").expect("4");
    assert_eq!(single["survives_any_link_cut"], false);
    let (_, out, _) = quorum("place --voters 3 --dcs 3");
    assert!(out.contains("A 4th voter buys nothing and here it costs"), "{out}");
    assert!(out.contains("1 voter as 1 tolerates 0 node failures"), "{out}");
    let (_, out, _) = quorum("place --voters 7 --dcs 3");
    assert!(out.contains("An 8th voter buys nothing"), "{out}");
}

#[test]
fn the_table_says_an_odd_size_is_no_guarantee_against_a_three_way_split() {
    let (_, out, _) = quorum("table --max 4");
    assert!(out.contains("(likewise 1 → 2)"), "{out}");
    assert!(out.contains("leaves 2 | 2 | 0 of 5, no majority anywhere"), "{out}");
}
