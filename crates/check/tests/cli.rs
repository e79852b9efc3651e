//! The command as the main binary runs it: `run` with in-memory writers, checking output and exit codes.

use std::io::Write as _;

use clap::Parser;
use quorumlab_check::cli::{run, Args};

#[derive(Parser)]
struct Command {
    #[command(flatten)]
    args: Args,
}

struct Run {
    code: i32,
    out: String,
    err: String,
}

fn check(argv: &[&str]) -> Run {
    let command = Command::try_parse_from(std::iter::once("check").chain(argv.iter().copied()))
        .unwrap_or_else(|e| panic!("arguments {argv:?}: {e}"));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(command.args, &mut out, &mut err);
    Run { code, out: String::from_utf8(out).expect("utf-8"), err: String::from_utf8(err).expect("utf-8") }
}

fn file(contents: &str, suffix: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(suffix).tempfile().expect("temp file");
    f.write_all(contents.as_bytes()).expect("write temp file");
    f
}

const GOOD: &str =
    "[{:process 0, :type :invoke, :f :write, :value 1}\n {:process 0, :type :ok, :f :write, :value 1}\n \
                    {:process 1, :type :invoke, :f :read, :value nil}\n {:process 1, :type :ok, :f :read, :value 1}]\n";

/// Knossos's `rethink-fail-minimal`: the value is 0, a write of 4 and a read of 3 run concurrently.
const BAD: &str = "[{:process 0, :type :invoke, :f :write, :value 0}\n {:process 0, :type :ok, :f :write, :value 0}\n \
                   {:process 1, :type :invoke, :f :read, :value nil}\n {:process 2, :type :invoke, :f :write, :value 4}\n \
                   {:process 1, :type :ok, :f :read, :value 3}\n {:process 2, :type :ok, :f :write, :value 4}]\n";

#[test]
fn a_linearizable_history_exits_0() {
    let f = file(GOOD, ".edn");
    let run = check(&[f.path().to_str().expect("utf-8 path")]);
    assert_eq!(run.code, 0, "{}{}", run.out, run.err);
    assert!(run.out.contains(": linearizable"), "{}", run.out);
}

#[test]
fn a_violation_exits_1_and_explains_itself_in_words() {
    let f = file(BAD, ".edn");
    let run = check(&[f.path().to_str().expect("utf-8 path")]);
    assert_eq!(run.code, 1, "{}", run.out);
    for expected in [
        "NOT linearizable",
        "longest linearizable prefix",
        "Then this operation cannot be placed",
        "process 1: read → 3 (lines 3–5)",
        "it needs the value to be 3",
    ] {
        assert!(run.out.contains(expected), "missing {expected:?} in:\n{}", run.out);
    }
    assert!(run.out.contains("one of: 0, 4") || run.out.contains("one of: 4, 0"), "{}", run.out);
}

#[test]
fn json_output_is_machine_readable() {
    let f = file(BAD, ".edn");
    let run = check(&[f.path().to_str().expect("utf-8 path"), "--output", "json"]);
    assert_eq!(run.code, 1);
    let json: serde_json::Value = serde_json::from_str(&run.out).expect("valid JSON");
    assert_eq!(json["outcome"], "not-linearizable");
    assert_eq!(json["exit_code"], 1);
    assert_eq!(json["input_format"], "jepsen-edn");
    assert_eq!(json["model"], "cas-register");
    let violation = &json["partitions"][0]["violation"];
    assert_eq!(violation["culprit"]["description"], "read → 3");
    assert_eq!(violation["culprit"]["invoke_line"], 3);
}

#[test]
fn html_marks_the_operation_that_cannot_be_placed() {
    let f = file(BAD, ".edn");
    let dir = tempfile::tempdir().expect("temp dir");
    let page = dir.path().join("report.html");
    let run = check(&[f.path().to_str().expect("utf-8 path"), "--html", page.to_str().expect("utf-8 path")]);
    assert_eq!(run.code, 1);
    let html = std::fs::read_to_string(&page).expect("page written");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<svg"));
    assert_eq!(html.matches("class=\"bad\"").count(), 1, "exactly one op is marked");
    assert!(html.contains("read → 3"));
    assert!(
        !html.contains("<script") && !html.contains("http://") || html.contains("xmlns=\"http://www.w3.org/2000/svg\"")
    );
}

#[test]
fn malformed_input_exits_2_with_the_line_number() {
    let f = file("[{:process 0, :type :invoke, :f :write, :value 1}\n {:process 0, :type :ok, :f :write\n", ".edn");
    let run = check(&[f.path().to_str().expect("utf-8 path")]);
    assert_eq!(run.code, 2);
    assert!(run.err.contains("line 2"), "{}", run.err);
    assert!(run.out.is_empty());

    let run = check(&[f.path().to_str().expect("utf-8 path"), "--output", "json"]);
    let json: serde_json::Value = serde_json::from_str(&run.out).expect("valid JSON");
    assert_eq!(json["outcome"], "error");
}

#[test]
fn a_missing_file_exits_2() {
    let run = check(&["/nonexistent/history.edn"]);
    assert_eq!(run.code, 2);
    assert!(run.err.contains("cannot read"), "{}", run.err);
}

#[test]
fn an_operation_the_model_does_not_know_exits_2() {
    let f = file("{\"process\":0,\"type\":\"invoke\",\"f\":\"frobnicate\",\"key\":\"k\"}\n", ".jsonl");
    let run = check(&[f.path().to_str().expect("utf-8 path")]);
    assert_eq!(run.code, 2);
    assert!(run.err.contains("line 1") && run.err.contains("frobnicate"), "{}", run.err);
}

#[test]
fn a_budget_that_runs_out_exits_2_unknown() {
    let f = file(GOOD, ".edn");
    let run = check(&[f.path().to_str().expect("utf-8 path"), "--max-memo-mib", "0"]);
    assert_eq!(run.code, 2);
    assert!(run.out.contains("unknown"), "{}", run.out);
}

#[test]
fn the_initial_value_can_be_set() {
    let f = file(
        "[{:process 1, :type :invoke, :f :read, :value nil}\n {:process 1, :type :ok, :f :read, :value 5}]\n",
        ".edn",
    );
    let path = f.path().to_str().expect("utf-8 path");
    assert_eq!(check(&[path]).code, 1);
    assert_eq!(check(&[path, "--initial", "5"]).code, 0);
    let run = check(&[path, "--initial", "five"]);
    assert_eq!(run.code, 2);
    assert!(run.err.contains("bare word"), "{}", run.err);
}

#[test]
fn the_model_and_format_can_be_forced() {
    let f = file("INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:ok\t:read\tnil\n", ".log");
    let path = f.path().to_str().expect("utf-8 path");
    // With the etcd log's own semantics (kv, absent = nil) the read of nil is fine...
    assert_eq!(check(&[path, "--format", "jepsen-log"]).code, 0);
    // ...and cas-register treats it as unknown, which is fine too.
    assert_eq!(check(&[path, "--model", "cas-register"]).code, 0);
    // But the log is not EDN.
    assert_eq!(check(&[path, "--format", "jepsen-edn"]).code, 2);
}

#[test]
fn timeouts_parse_with_units() {
    use quorumlab_check::cli::parse_duration;
    use std::time::Duration;
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
    assert!(parse_duration("soon").is_err());
    assert!(parse_duration("99999999999999999999h").is_err());
}

/// Porcupine's kv histories start every key at `""`. Naming the model the format already implies must not
/// change that: `--model kv` once reset the initial value to absent, and this linearizable history (a get of
/// an untouched key returns `""`) was reported NOT linearizable.
#[test]
fn naming_the_model_keeps_the_initial_value_of_the_input_format() {
    let f = file(
        "{:process 1, :type :invoke, :f :get, :key \"1\", :value nil}\n\
         {:process 1, :type :ok, :f :get, :key \"1\", :value \"\"}\n",
        ".edn",
    );
    let path = f.path().to_str().expect("utf-8 path");
    assert_eq!(check(&[path]).code, 0);
    let run = check(&[path, "--model", "kv"]);
    assert_eq!(run.code, 0, "{}", run.out);
    let run = check(&[path, "--format", "porcupine-kv", "--model", "kv"]);
    assert_eq!(run.code, 0, "{}", run.out);
    // `--initial` still wins over the format.
    assert_eq!(check(&[path, "--model", "kv", "--initial", "nil"]).code, 1);
}

/// Key `a` fails; by default `b` is not searched and the report says so; `--all-keys` explains both. The
/// outcome and exit code are the same.
#[test]
fn all_keys_explains_keys_after_the_first_failing_one() {
    let f = file(
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"get\",\"key\":\"a\"}\n\
         {\"process\":0,\"type\":\"ok\",\"f\":\"get\",\"key\":\"a\",\"value\":7}\n\
         {\"process\":1,\"type\":\"invoke\",\"f\":\"get\",\"key\":\"b\"}\n\
         {\"process\":1,\"type\":\"ok\",\"f\":\"get\",\"key\":\"b\",\"value\":8}\n",
        ".jsonl",
    );
    let path = f.path().to_str().expect("utf-8 path");
    let run = check(&[path, "--threads", "1"]);
    assert_eq!(run.code, 1, "{}", run.out);
    assert!(run.out.contains("1 later key was not checked (--all-keys checks every key)"), "{}", run.out);
    assert!(run.out.contains("key \"a\" is NOT linearizable") && !run.out.contains("key \"b\""), "{}", run.out);

    let run = check(&[path, "--all-keys"]);
    assert_eq!(run.code, 1, "{}", run.out);
    assert!(!run.out.contains("not checked"), "{}", run.out);
    assert!(run.out.contains("key \"b\" is NOT linearizable"), "{}", run.out);

    let run = check(&[path, "--output", "json"]);
    let json: serde_json::Value = serde_json::from_str(&run.out).expect("valid JSON");
    assert_eq!(json["unchecked_keys"], serde_json::json!(["b"]));

    // The drawing must not call an unsearched key linearizable.
    let dir = tempfile::tempdir().expect("temp dir");
    let page = dir.path().join("report.html");
    assert_eq!(check(&[path, "--html", page.to_str().expect("utf-8 path")]).code, 1);
    let html = std::fs::read_to_string(&page).expect("page written");
    assert!(html.contains("key &quot;b&quot;: not checked") || html.contains("key \"b\": not checked"), "{html}");
}
