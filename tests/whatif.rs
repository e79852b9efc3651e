//! `quorumlab whatif`'s reading of a run, and its HTML report as a person sees it: the timeline of the classic
//! 2/2/1 cut (dc1–dc2 cut, dc3 sees both sides) must show the leader staying in place, dc1's clients writing and
//! dc2's stranded; a prediction the cluster contradicts must fail the report; and the page, rendered by headless
//! Chromium, must not be blank.

use std::sync::{Arc, OnceLock};

use quorumlab::suite;
use quorumlab::whatif::{self, html, Outcome, Report, Row};
use quorumlab_quorum::RaftVariant;

fn topology() -> Arc<quorumlab_quorum::Topology> {
    Arc::new(quorumlab_quorum::shipped::load("etcd-2-2-1").expect("shipped"))
}

fn run(spec: &str, variant: RaftVariant) -> Report {
    let t = topology();
    let faults = whatif::scenarios(&t, &[spec.to_string()]).expect("a scenario");
    let mut cases = whatif::cases(&t, &faults, &[1]).expect("cases");
    for case in &mut cases {
        case.config.variant = variant;
    }
    let records = suite::run_all(&cases, 1, |_, _| {});
    let rows: Vec<Row> = cases.iter().zip(&records).map(|(c, r)| whatif::analyze(&c.config, r)).collect();
    Report::new(&t, &[1], rows)
}

/// The cut, run once for every test here.
fn cut() -> &'static Report {
    static CUT: OnceLock<Report> = OnceLock::new();
    CUT.get_or_init(|| run("cut:dc1:dc2", RaftVariant::QUORUMLAB_NODE))
}

#[test]
fn a_cut_dc1_dc2_keeps_the_leader_and_dc1_writing_and_strands_dc2() {
    let row = &cut().rows[0];
    assert!(row.passed && row.agree == Some(true), "{:#?}", row.verdicts);
    let dc = |name: &str| row.dcs.iter().find(|d| d.dc == name).expect("a client datacenter");
    let (dc1, dc2) = (dc("dc1"), dc("dc2"));
    assert!(dc1.share().is_some_and(|s| s >= 80) && dc1.acked > 20, "dc1 keeps writing: {dc1:?}");
    assert!(dc2.writes > 0 && dc2.acked == 0, "dc2 is stranded: {dc2:?}");
    let leader = row.leader_before.clone().expect("a leader when the cut starts");
    assert!(leader.starts_with("dc1-"), "the setup client in dc1 elects a dc1 leader: {leader}");
    assert_eq!(row.leader_at_heal.as_deref(), Some(leader.as_str()), "the leader stays put through the cut");
    assert!(row.stall_during_ms < 2000, "writes never stop for long: {} ms", row.stall_during_ms);
    assert!(row.lesson.contains("dc3") && row.lesson.contains("dc2"), "{}", row.lesson);

    // The timeline carries it: the leader's lane leads across the whole fault, dc1's clients are acknowledged
    // inside it, dc2's never after the settle time, and the heal's election is marked.
    let t = &row.timeline;
    let lane = t.nodes.iter().find(|n| n.host == leader).expect("the leader's lane");
    let at_start = lane.changes.iter().rev().find(|c| c.0 <= 0).expect("a role before the fault");
    assert_eq!(at_start.1, quorumlab::sim::roles::Role::Leader);
    assert!(lane.changes.iter().all(|c| c.0 <= 0 || c.0 >= t.fault_end), "no change while the cut lasts");
    let ops = |dc: &str| &t.clients.iter().find(|(d, _)| d == dc).expect("a client lane").1;
    let ok_inside = |dc: &str, from: i64| {
        ops(dc).iter().filter(|(at, o)| *o == Outcome::Ok && *at >= from && *at < t.fault_end).count()
    };
    assert!(ok_inside("dc1", 0) > 20);
    assert_eq!(ok_inside("dc2", 2000), 0);
    assert!(t.elections.iter().any(|e| e.0 >= t.fault_end), "the heal forces an election: {:?}", t.elections);

    let svg = html::timeline_svg(t);
    assert_eq!(svg.matches("class=\"lane node\"").count(), 5);
    assert_eq!(svg.matches("class=\"lane client\"").count(), 2);
    assert_eq!(svg.matches("class=\"fault-window\"").count(), 1);
    assert!(svg.contains("fault: cut dc1–dc2"));
    assert!(svg.contains(&format!("data-host=\"{leader}\"")));
    for colour in [html::LEADER, html::FOLLOWER, html::CANDIDATE, html::OK, html::FAULT] {
        assert!(svg.contains(colour), "{colour} is drawn");
    }
}

#[test]
fn a_prediction_the_cluster_contradicts_fails_the_report() {
    // Plain Raft's prediction: dc2's campaigns would unseat the leader. The lease-keeping node never lets them.
    let report = run("cut:dc1:dc2", RaftVariant::Plain);
    assert_eq!(report.rows[0].agree, Some(false));
    assert_eq!(report.failures().count(), 1);
    assert!(whatif::render::text(&report).contains("DISAGREE"));
    assert!(whatif::render::text(&report).contains("replay: quorumlab suite etcd-2-2-1 --schedule"));
}

#[test]
fn the_page_is_self_contained() {
    let page = html::page(std::slice::from_ref(cut()), None);
    assert!(page.starts_with("<!doctype html>") && page.trim_end().ends_with("</html>"));
    assert!(
        !page.contains("<script") && !page.contains("src=") && !page.contains("href=") && !page.contains("@import")
    );
    assert_eq!(page.matches("<svg").count(), 1);
}

/// Where Debian's Chromium (or another) is installed; `QUORUMLAB_CHROMIUM` names one explicitly.
fn chromium() -> Option<std::path::PathBuf> {
    if let Ok(p) = std::env::var("QUORUMLAB_CHROMIUM") {
        let p = std::path::PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

/// Chromium's screenshot of `page` as RGB(A) pixels with their channel count.
fn screenshot(browser: &std::path::Path, page: &str) -> (Vec<u8>, usize) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("page.html");
    let shot = dir.path().join("page.png");
    std::fs::write(&file, page).expect("write the page");
    let profile = dir.path().join("profile");
    let mut child = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1100,1100",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", file.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start Chromium");
    // A headless browser that hangs must not hang the test run: two minutes, then it is killed.
    let mut waited = 0;
    while child.try_wait().expect("wait for Chromium").is_none() {
        if waited >= 1200 {
            let _ = child.kill();
            panic!("Chromium did not finish within 120 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        waited += 1;
    }
    assert!(shot.is_file(), "Chromium wrote no screenshot of {}", file.display());
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).expect("open")));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("a frame");
    buf.truncate(info.buffer_size());
    (buf, info.color_type.samples())
}

/// What a reader must see: a page that is not blank, the leader's and the followers' lanes (solid before the
/// fault window, which is drawn unshaded there), and green ticks of acknowledged operations.
fn shows_the_timeline(buf: &[u8], channels: usize) -> Result<(), String> {
    let pixels: Vec<&[u8]> = buf.chunks(channels).collect();
    let rgb = |hex: &str| {
        let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).expect("a colour");
        [(v >> 16) as u8, (v >> 8) as u8, v as u8]
    };
    let count = |hex: &str| pixels.iter().filter(|p| p[..3] == rgb(hex)).count();
    let not_white = pixels.iter().filter(|p| p[..3] != [255, 255, 255]).count();
    if not_white * 100 <= pixels.len() * 3 {
        return Err(format!("the screenshot is blank: {not_white} of {} pixels", pixels.len()));
    }
    for (what, colour, least) in
        [("leader lane", html::LEADER, 200), ("follower lanes", html::FOLLOWER, 200), ("ok ticks", html::OK, 50)]
    {
        if count(colour) <= least {
            return Err(format!("{what}: {} pixels of {colour}", count(colour)));
        }
    }
    Ok(())
}

#[test]
fn chromium_renders_the_report_with_its_lanes_and_ticks() {
    let Some(browser) = chromium() else {
        eprintln!("SKIPPED: no Chromium on PATH (apt-get install chromium; .ci/run installs it)");
        return;
    };
    let (buf, channels) = screenshot(&browser, &html::page(std::slice::from_ref(cut()), None));
    shows_the_timeline(&buf, channels).expect("the report as Chromium draws it");
    // The negative control: the same check refuses a page with the tables but no timeline, and a blank page.
    let mut no_timeline = html::page(std::slice::from_ref(cut()), None);
    while let (Some(a), Some(b)) = (no_timeline.find("<svg"), no_timeline.find("</svg>")) {
        no_timeline.replace_range(a..b + "</svg>".len(), "");
    }
    let (buf, channels) = screenshot(&browser, &no_timeline);
    assert!(shows_the_timeline(&buf, channels).is_err(), "a page without its timeline passed the check");
    let (buf, channels) = screenshot(&browser, "<!doctype html><html><body></body></html>");
    assert!(shows_the_timeline(&buf, channels).unwrap_err().contains("blank"));
}

#[test]
fn a_lesson_claims_only_what_the_topology_supports() {
    // On 3/2 dc1 is a majority on its own: no bystander decides anything, and the lesson must not say one does.
    let t = Arc::new(quorumlab_quorum::shipped::load("etcd-3-2").expect("shipped"));
    let faults = whatif::scenarios(&t, &["cut:dc1:dc2".into()]).expect("a scenario");
    let cases = whatif::cases(&t, &faults, &[1]).expect("cases");
    let records = suite::run_all(&cases, 1, |_, _| {});
    let row = whatif::analyze(&cases[0].config, &records[0]);
    assert!(row.lesson.contains("a majority on its own") && !row.lesson.contains("decides"), "{}", row.lesson);
    // And on 2/2/1 the bystander sentence is the one given.
    assert!(cut().rows[0].lesson.contains("decides which side keeps writing"), "{}", cut().rows[0].lesson);
}

#[test]
fn the_replay_command_replays_the_same_run() {
    // The replay is a `quorumlab suite` command: its schedule and --after-heal must give the identical trace.
    let t = topology();
    let row = &cut().rows[0];
    let schedule = row.replay.split('\'').nth(1).expect("a quoted schedule in the replay command");
    assert!(row.replay.ends_with("--seed 1 --after-heal 5000ms"), "{}", row.replay);
    let mut cases = suite::matrix(std::slice::from_ref(&t), Some(schedule), &[], &[1]).expect("the schedule parses");
    cases[0].config.after_heal = whatif::AFTER_HEAL;
    let faults = whatif::scenarios(&t, &["cut:dc1:dc2".into()]).expect("a scenario");
    let original = whatif::cases(&t, &faults, &[1]).expect("cases");
    let digests: Vec<u64> =
        suite::run_all(&[original[0].clone(), cases[0].clone()], 1, |_, _| {}).iter().map(|r| r.trace_digest).collect();
    assert_eq!(digests[0], digests[1]);
}

#[test]
fn the_same_seed_gives_the_same_report_byte_for_byte() {
    let again = run("cut:dc1:dc2", RaftVariant::QUORUMLAB_NODE);
    assert_eq!(whatif::render::text(&again), whatif::render::text(cut()));
    assert_eq!(html::page(std::slice::from_ref(&again), None), html::page(std::slice::from_ref(cut()), None));
}
