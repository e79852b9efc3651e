//! Every input format reads into the same history, with its own semantics translated on the way in.

use quorumlab_check::format::json_lines;
use quorumlab_check::format::{default_model, detect, read_history, InputFormat};
use quorumlab_check::{check_history, Budget, EventKind, Outcome, Value};

fn verdict(text: &str) -> Outcome {
    let (history, format) = read_history(text, InputFormat::Auto).expect("readable");
    check_history(&history, &default_model(format, &history), &Budget::unlimited()).expect("well-formed").outcome
}

const ETCD_LOG: &str = "\
2017-01-01 12:00:00,000{GW} - jepsen.core Running test
INFO  jepsen.util - 0\t:invoke\t:read\tnil
INFO  jepsen.util - 0\t:ok\t:read\tnil
INFO  jepsen.util - 1\t:invoke\t:write\t4
INFO  jepsen.util - 1\t:ok\t:write\t4
INFO  jepsen.util - 2\t:invoke\t:cas\t[1 2]
INFO  jepsen.util - 2\t:fail\t:cas\t[1 2]
INFO  jepsen.util - 3\t:invoke\t:read\tnil
INFO  jepsen.util - 3\t:fail\t:read\t:timed-out
INFO  jepsen.util - :nemesis\t:info\t:start\tnil
INFO  jepsen.util - 4\t:invoke\t:cas\t[4 0]
";

#[test]
fn the_etcd_log_translates_its_semantics() {
    assert_eq!(detect(ETCD_LOG), InputFormat::JepsenLog);
    let (history, _) = read_history(ETCD_LOG, InputFormat::Auto).expect("readable");
    // `:fail :cas` happened and failed its compare; `:fail :read :timed-out` is unknown.
    let cas_fail = &history.events[5];
    assert_eq!((cas_fail.kind, &cas_fail.value), (EventKind::Ok, &Value::Bool(false)));
    assert_eq!(history.events[7].kind, EventKind::Info);
    assert_eq!(history.events.len(), 9, "noise and nemesis lines are skipped");
    assert_eq!(history.events[0].line, Some(2));
    assert_eq!(verdict(ETCD_LOG), Outcome::Linearizable);
}

#[test]
fn in_the_etcd_log_a_nil_read_means_absent() {
    let log = "INFO  jepsen.util - 1\t:invoke\t:write\t4\nINFO  jepsen.util - 1\t:ok\t:write\t4\n\
               INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:ok\t:read\tnil\n";
    assert_eq!(verdict(log), Outcome::NotLinearizable);
}

#[test]
fn porcupine_kv_lines_are_checked_per_key_with_empty_strings() {
    let text = r#"{:process 0, :type :invoke, :f :append, :key "0", :value "x 0 0 y"}
{:process 1, :type :invoke, :f :get, :key "1", :value nil}
{:process 1, :type :ok, :f :get, :key "1", :value ""}
{:process 0, :type :ok, :f :append, :key "0", :value nil}
{:process 1, :type :invoke, :f :get, :key "0", :value nil}
{:process 1, :type :ok, :f :get, :key "0", :value "x 0 0 y"}
"#;
    assert_eq!(detect(text), InputFormat::PorcupineKv);
    assert_eq!(verdict(text), Outcome::Linearizable);
    assert_eq!(
        verdict(
            &text.replace(":ok, :f :get, :key \"0\", :value \"x 0 0 y\"", ":ok, :f :get, :key \"0\", :value \"x 0\"")
        ),
        Outcome::NotLinearizable
    );
}

#[test]
fn json_lines_round_trip() {
    let text = r#"{"process":0,"type":"invoke","f":"put","key":"k","value":3,"time_ns":10}
{"process":0,"type":"ok","f":"put","key":"k","value":null,"time_ns":20}

{"process":1,"type":"invoke","f":"get","key":"k","value":null}
{"process":1,"type":"ok","f":"get","key":"k","value":3}
"#;
    assert_eq!(detect(text), InputFormat::Json);
    let (history, _) = read_history(text, InputFormat::Auto).expect("readable");
    let mut written = Vec::new();
    json_lines::write(&history, &mut written).expect("in memory");
    let (again, _) = read_history(std::str::from_utf8(&written).expect("utf-8"), InputFormat::Json).expect("readable");
    let strip = |h: &quorumlab_check::History| {
        h.events.iter().map(|e| (e.process, e.kind, e.value.clone())).collect::<Vec<_>>()
    };
    assert_eq!(strip(&history), strip(&again));
    assert_eq!(verdict(text), Outcome::Linearizable);
}

#[test]
fn edn_accepts_streams_lists_comments_and_extra_keys() {
    let text = "; a comment\n({:process 0, :type :invoke, :f :write, :value 1, :time 5, :index 0}\n \
                {:process 0, :type :ok, :f :write, :value 1, :error nil} ; trailing\n \
                {:process :nemesis, :type :info, :f :start, :value \"Cut off #{:n1}\"})";
    assert_eq!(verdict(text), Outcome::Linearizable);
    let stream = "{:process 0 :type :invoke :f :read :value nil}\n{:process 0 :type :ok :f :read :value 7}\n";
    assert_eq!(verdict(stream), Outcome::NotLinearizable);
}

#[test]
fn malformed_input_is_an_error_with_a_line_number() {
    let cases = [
        ("[{:process 0, :type :invoke, :f :read}\n {:process 0, :type :ok\n", InputFormat::JepsenEdn, 2),
        ("[{:process 0, :type :invoke, :f :read}\n {:process 0, :type :done, :f :read}]", InputFormat::JepsenEdn, 2),
        ("{\"process\":0,\"type\":\"invoke\",\"f\":\"get\"}\n{\"process\":0,\"type\":\"ok\",", InputFormat::Json, 2),
        ("{\"process\":0,\"type\":\"invoke\",\"f\":\"get\",\"value\":1.5}", InputFormat::Json, 1),
        (
            "INFO  jepsen.util - 1\t:invoke\t:write\t4\nINFO  jepsen.util - 1\t:ok\t:write\t[4",
            InputFormat::JepsenLog,
            2,
        ),
        ("\n\n[{:process 0, :type :invoke, :f :read, :value 1.5}]", InputFormat::JepsenEdn, 3),
    ];
    for (text, format, line) in cases {
        let err = read_history(text, format).expect_err(text);
        assert_eq!(err.line, line, "{text:?}: {err}");
    }
}
