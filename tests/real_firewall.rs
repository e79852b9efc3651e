//! The real-mode firewall ([`NftFirewall`]) against a stand-in database in a lab: a fence must cut the old
//! primary off over the sessions it already has, not only refuse new ones, and the planted broken variant (which
//! keeps established connections) must be seen to fail that check. These tests need root, iproute2 and
//! nftables; elsewhere they say SKIPPED and why (`QUORUMLAB_REQUIRE_REAL=1` turns the skip into a failure).
//!
//! Sockets belong to the network namespace of the thread that created them: each connection is opened on a
//! thread that entered the client's namespace (with its own current-thread runtime) and is then used from the
//! test's runtime; the database serves on a thread in its own namespace for the whole test.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use quorumlab::real::firewall::{self, FenceTarget, NftFirewall, Report};
use quorumlab::real::lab::{self, Lab};
use quorumlab_fencing::ports::{Firewall, RequestId};
use quorumlab_fencing::{DeviceOutcome, MemberId};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::timeout;

/// The stand-in database's port.
const PORT: u16 = 5432;
/// The member whose database the fence targets.
const DB: MemberId = MemberId(1);
/// How long a write may go unanswered before it counts as not acknowledged.
const NO_ACK_WITHIN: Duration = Duration::from_secs(1);
/// How long a new connection may take before it counts as refused.
const CONNECT_WITHIN: Duration = Duration::from_secs(1);
/// A generous bound on any step that must succeed (the firewall's own deadline is 5 s).
const STEP: Duration = Duration::from_secs(10);

/// Whether real mode can run here; says SKIPPED (or, under `QUORUMLAB_REQUIRE_REAL=1`, fails) where not.
fn real_mode() -> bool {
    match quorumlab::real::available() {
        Ok(()) => true,
        Err(why) if std::env::var("QUORUMLAB_REQUIRE_REAL").is_ok_and(|v| v == "1") => {
            panic!("QUORUMLAB_REQUIRE_REAL=1, but real mode cannot run here: {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED: {why}");
            false
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime")
}

/// A lab with a database host (tracking connections, as any host with a stateful firewall does) and a client.
fn lab() -> Lab {
    let lab = Lab::create(&["db".to_string(), "client".to_string()]).expect("a lab");
    firewall::track_connections(&lab.hosts["db"].ns).expect("conntrack in the database's namespace");
    lab
}

fn fence_for(lab: &Lab, broken: bool) -> NftFirewall {
    NftFirewall::new(BTreeMap::from([(DB, FenceTarget { ns: lab.hosts["db"].ns.clone(), port: PORT })]), broken)
}

/// Waits for a fence operation's outcome, with what happened.
async fn report(fence: &NftFirewall, id: RequestId) -> Report {
    timeout(STEP, fence.report(id)).await.expect("the firewall answers within its deadline")
}

/// The stand-in database: answers every line with `ack`, on a thread in its host's namespace, until dropped.
struct Database {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Database {
    fn start(ns: &str) -> Database {
        let (ready, listening) = std::sync::mpsc::channel::<Result<(), String>>();
        let (stop, stopped) = oneshot::channel::<()>();
        let ns = ns.to_string();
        let thread = std::thread::spawn(move || {
            if let Err(e) = lab::enter_namespace(&ns) {
                let _ = ready.send(Err(e));
                return;
            }
            runtime().block_on(async move {
                let listener = match TcpListener::bind(("0.0.0.0", PORT)).await {
                    Ok(listener) => listener,
                    Err(e) => {
                        let _ = ready.send(Err(format!("bind: {e}")));
                        return;
                    }
                };
                let _ = ready.send(Ok(()));
                tokio::pin!(stopped);
                loop {
                    tokio::select! {
                        _ = &mut stopped => return,
                        accepted = listener.accept() => {
                            if let Ok((stream, _)) = accepted {
                                tokio::spawn(answer(stream));
                            }
                        }
                    }
                }
            });
        });
        listening.recv_timeout(STEP).expect("the database starts").expect("the database listens");
        Database { stop: Some(stop), thread: Some(thread) }
    }
}

/// One session of the database: `ack` for every line.
async fn answer(stream: TcpStream) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(_)) = lines.next_line().await {
        if write.write_all(b"ack\n").await.is_err() {
            return;
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A client's connection to the database.
struct Session {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Session {
    /// Opens a connection from inside `ns` (on a thread there, with its own runtime), within `within`.
    async fn open(ns: &str, addr: SocketAddr, within: Duration) -> Result<Session, String> {
        let (tx, rx) = oneshot::channel();
        let ns = ns.to_string();
        std::thread::spawn(move || {
            let connected = lab::enter_namespace(&ns).and_then(|()| {
                runtime().block_on(async {
                    match timeout(within, TcpStream::connect(addr)).await {
                        Ok(Ok(stream)) => stream.into_std().map_err(|e| e.to_string()),
                        Ok(Err(e)) => Err(format!("connect: {e}")),
                        Err(_) => Err(format!("connect: no answer within {within:?}")),
                    }
                })
            });
            let _ = tx.send(connected);
        });
        let stream = timeout(within + STEP, rx).await.map_err(|_| "the connecting thread hung".to_string())?;
        let stream = stream.map_err(|_| "the connecting thread died".to_string())??;
        let (read, writer) = TcpStream::from_std(stream).map_err(|e| e.to_string())?.into_split();
        Ok(Session { reader: BufReader::new(read), writer })
    }

    /// Writes one line and waits up to `within` for the answer.
    async fn write(&mut self, line: &str, within: Duration) -> Result<String, String> {
        let exchange = async {
            self.writer.write_all(format!("{line}\n").as_bytes()).await.map_err(|e| format!("write: {e}"))?;
            let mut answer = String::new();
            match self.reader.read_line(&mut answer).await {
                Ok(0) => Err("the database closed the session".to_string()),
                Ok(_) => Ok(answer.trim_end().to_string()),
                Err(e) => Err(format!("read: {e}")),
            }
        };
        timeout(within, exchange).await.unwrap_or_else(|_| Err(format!("no answer within {within:?}")))
    }
}

/// The check a fence must pass: a write over a session the old primary opened before the fence is not
/// acknowledged.
async fn established_session_is_cut(session: &mut Session) -> Result<(), String> {
    match session.write("write after the fence", NO_ACK_WITHIN).await {
        Ok(answer) => {
            Err(format!("the fenced database still answered {answer:?} on a session opened before the fence"))
        }
        Err(_) => Ok(()),
    }
}

/// A lab with the database running in its `db` namespace, and a fence for it (the broken variant if `broken`).
struct Setup {
    lab: Lab,
    _db: Database,
    addr: SocketAddr,
    client: String,
    fence: NftFirewall,
}

fn setup(broken: bool) -> Setup {
    let lab = lab();
    let _db = Database::start(&lab.hosts["db"].ns);
    let addr = SocketAddr::from((lab.hosts["db"].ip, PORT));
    let client = lab.hosts["client"].ns.clone();
    let fence = fence_for(&lab, broken);
    Setup { lab, _db, addr, client, fence }
}

/// A session from the client's namespace, opened and acknowledged once before the fence.
async fn session_before_fence(client: &str, addr: SocketAddr) -> Session {
    let mut old = Session::open(client, addr, STEP).await.expect("a session before the fence");
    assert_eq!(old.write("before the fence", STEP).await.as_deref(), Ok("ack"));
    old
}

/// The fence cuts the database off over a session opened before it, refuses new sessions, and lifts cleanly.
#[test]
fn a_fence_cuts_established_sessions_and_new_ones() {
    if !real_mode() {
        return;
    }
    let Setup { lab, _db, addr, client, mut fence } = setup(false);
    runtime().block_on(async {
        let mut old = session_before_fence(&client, addr).await;

        let id = fence.block(DB);
        let blocked = report(&fence, id).await;
        assert_eq!(blocked.outcome, DeviceOutcome::Confirmed, "{}", blocked.detail);
        let listed = lab.listed("db").expect("the db's rules");
        assert!(listed.contains("table inet quorumlab_fence") && listed.contains("tcp dport 5432 drop"), "{listed}");

        established_session_is_cut(&mut old).await.expect("the fence cuts the established session");
        let new = Session::open(&client, addr, CONNECT_WITHIN).await;
        assert!(new.is_err(), "a new session got through the fence");

        let id = fence.unblock(DB);
        let unblocked = report(&fence, id).await;
        assert_eq!(unblocked.outcome, DeviceOutcome::Confirmed, "{}", unblocked.detail);
        let listed = lab.listed("db").expect("the db's rules");
        assert!(!listed.contains("quorumlab_fence"), "the fence's table is still there:\n{listed}");
        let mut new = Session::open(&client, addr, STEP).await.expect("a new session once the fence is lifted");
        assert_eq!(new.write("after the fence", STEP).await.as_deref(), Ok("ack"));
    });
}

/// The negative control: the broken variant confirms just the same and refuses new sessions, but the old
/// primary keeps acknowledging writes on its established session, and the check above catches it.
#[test]
fn the_broken_fence_keeps_established_sessions_and_is_caught() {
    if !real_mode() {
        return;
    }
    let Setup { lab, _db, addr, client, mut fence } = setup(true);
    assert!(fence.broken());
    runtime().block_on(async {
        let mut old = session_before_fence(&client, addr).await;

        let id = fence.block(DB);
        let blocked = report(&fence, id).await;
        assert_eq!(blocked.outcome, DeviceOutcome::Confirmed, "the broken rules are in force: {}", blocked.detail);
        let listed = lab.listed("db").expect("the db's rules");
        assert!(listed.contains("ct state established,related accept"), "{listed}");

        let caught = established_session_is_cut(&mut old).await;
        assert!(caught.is_err(), "the broken fence must leave the established session open, and the check must say so");
        eprintln!("caught, as it must be: {}", caught.unwrap_err());
        assert_eq!(old.write("another write", STEP).await.as_deref(), Ok("ack"), "the old primary still takes writes");
        let new = Session::open(&client, addr, CONNECT_WITHIN).await;
        assert!(new.is_err(), "even the broken fence refuses new sessions");

        let id = fence.unblock(DB);
        let unblocked = report(&fence, id).await;
        assert_eq!(unblocked.outcome, DeviceOutcome::Confirmed, "{}", unblocked.detail);
    });
}

/// A member the firewall does not know fails at once, and so does collecting an outcome nobody started.
#[test]
fn an_unknown_member_fails_without_panicking() {
    let mut fence = NftFirewall::new(BTreeMap::new(), false);
    runtime().block_on(async {
        let blocked = fence.block(MemberId(7));
        let unblocked = fence.unblock(MemberId(7));
        assert_ne!(blocked, unblocked);
        assert_eq!(timeout(STEP, fence.outcome(blocked)).await, Ok(DeviceOutcome::Failed));
        assert_eq!(timeout(STEP, fence.outcome(unblocked)).await, Ok(DeviceOutcome::Failed));
        // Collected once: a second collection finds nothing waiting.
        assert_eq!(timeout(STEP, fence.outcome(blocked)).await, Ok(DeviceOutcome::Failed));
        assert_eq!(timeout(STEP, fence.outcome(RequestId(999))).await, Ok(DeviceOutcome::Failed));
    });
}

/// An nft error is `Failed` (no such namespace); an operation past its deadline is `TimedOut`; and a member's
/// operations run in the order they were started.
#[test]
fn errors_fail_and_deadlines_time_out() {
    if !real_mode() {
        return;
    }
    let lab = Lab::create(&["db".to_string()]).expect("a lab");
    let missing =
        BTreeMap::from([(DB, FenceTarget { ns: "quorumlab_fence-test-no-such-namespace".into(), port: PORT })]);
    let mut nowhere = NftFirewall::new(missing, false);
    let mut hasty = fence_for(&lab, false).with_deadline(Duration::from_millis(1));
    let mut fence = fence_for(&lab, false);
    runtime().block_on(async {
        let id = nowhere.block(DB);
        let failed = report(&nowhere, id).await;
        assert_eq!(failed.outcome, DeviceOutcome::Failed, "{}", failed.detail);

        let id = hasty.block(DB);
        let late = report(&hasty, id).await;
        assert_eq!(late.outcome, DeviceOutcome::TimedOut, "{}", late.detail);

        // Started back to back, collected in reverse: the unblock still runs after the block.
        let (blocked, unblocked) = (fence.block(DB), fence.unblock(DB));
        let unblocked = report(&fence, unblocked).await;
        let blocked = report(&fence, blocked).await;
        assert_eq!((blocked.outcome, unblocked.outcome), (DeviceOutcome::Confirmed, DeviceOutcome::Confirmed));
        let listed = lab.listed("db").expect("the db's rules");
        assert!(!listed.contains("quorumlab_fence"), "the block ran after the unblock:\n{listed}");
    });
}
