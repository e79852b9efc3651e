//! A host firewall in front of the database's connections, as a fence device sets it.
//!
//! A correct firewall drops every packet of the blocked host, established connections included.
//! A broken one (the classic `ct state established accept` left in the rule set) blocks only
//! connections opened after the rule went in: every session the old primary already had — its
//! clients', its replication to the replicas — keeps flowing. Each connection is stamped with the
//! gate's generation when it opens, which is all it takes to tell the two apart.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

use crate::net::Conn;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct GateState {
    /// Connections opened so far: the next one's stamp.
    generation: u64,
    /// The block in force: the generation it started at, and whether it keeps established connections.
    block: Option<(u64, bool)>,
}

/// One host's firewall. Cloning shares it.
#[derive(Clone, Debug, Default)]
pub struct Gate(Arc<Mutex<GateState>>);

impl Gate {
    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks the host; `keep_established` is the broken rule set.
    pub fn block(&self, keep_established: bool) {
        let mut s = self.lock();
        if s.block.is_none() {
            s.block = Some((s.generation, keep_established));
        }
    }

    pub fn unblock(&self) {
        self.lock().block = None;
    }

    pub fn is_blocked(&self) -> bool {
        self.lock().block.is_some()
    }

    /// Stamps a connection that opens now.
    pub fn open(&self) -> u64 {
        let mut s = self.lock();
        s.generation += 1;
        s.generation
    }

    /// Whether a connection stamped `stamp` may pass.
    pub fn passes(&self, stamp: u64) -> bool {
        match self.lock().block {
            None => true,
            Some((since, keep_established)) => keep_established && stamp <= since,
        }
    }

    /// Wraps a connection that opens now.
    pub fn wrap(&self, inner: Conn) -> GatedConn {
        GatedConn { stamp: self.open(), gate: self.clone(), inner }
    }
}

/// A connection behind a [`Gate`].
pub struct GatedConn {
    inner: Conn,
    gate: Gate,
    stamp: u64,
}

fn dropped() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "dropped by the host firewall")
}

impl Connected for GatedConn {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for GatedConn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if !me.gate.passes(me.stamp) {
            return Poll::Ready(Err(dropped()));
        }
        Pin::new(&mut me.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for GatedConn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        if !me.gate.passes(me.stamp) {
            return Poll::Ready(Err(dropped()));
        }
        Pin::new(&mut me.inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_correct_block_stops_every_connection_and_a_broken_one_only_new_ones() {
        let gate = Gate::default();
        let before = gate.open();
        gate.block(false);
        let after = gate.open();
        assert!(!gate.passes(before) && !gate.passes(after));
        gate.unblock();
        assert!(gate.passes(before));
        let gate = Gate::default();
        let before = gate.open();
        gate.block(true);
        let after = gate.open();
        assert!(gate.passes(before), "the broken rule keeps established connections");
        assert!(!gate.passes(after));
    }
}
