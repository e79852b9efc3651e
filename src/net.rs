//! The network seam: the only module that knows whether a node speaks real tokio TCP or
//! turmoil's simulated TCP. Everything above it sees a listener stream of [`Conn`]s and a
//! tonic [`Channel`].
//!
//! Every channel carries a connect timeout and a per-request deadline: no RPC may wait forever,
//! because under a partition a simulated (or real) peer simply stops answering.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;
use tonic::transport::{Channel, Endpoint};

/// Which network a node runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Real sockets (tokio).
    Tcp,
    /// turmoil's deterministic simulated network; only valid inside a turmoil host.
    Sim,
}

/// One accepted or dialed byte stream.
pub enum Conn {
    Tcp(tokio::net::TcpStream),
    Sim(turmoil::net::TcpStream),
}

impl Connected for Conn {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Conn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Sim(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Sim(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_flush(cx),
            Conn::Sim(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Sim(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// A stream of accepted connections for tonic's `serve_with_incoming`.
pub type Incoming = Pin<Box<dyn Stream<Item = io::Result<Conn>> + Send>>;

/// Binds `addr` and returns the stream of accepted connections.
pub async fn listen(transport: Transport, addr: &str) -> io::Result<Incoming> {
    match transport {
        Transport::Tcp => {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            Ok(Box::pin(futures::stream::unfold(listener, |l| async move {
                let next = l.accept().await.map(|(s, _)| {
                    let _ = s.set_nodelay(true);
                    Conn::Tcp(s)
                });
                Some((next, l))
            })))
        }
        Transport::Sim => {
            let listener = turmoil::net::TcpListener::bind(addr).await?;
            Ok(Box::pin(futures::stream::unfold(listener, |l| async move {
                Some((l.accept().await.map(|(s, _)| Conn::Sim(s)), l))
            })))
        }
    }
}

/// How long a connection may be silent before a keep-alive ping asks whether it still works.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);

/// Deadlines for one channel.
#[derive(Clone, Copy, Debug)]
pub struct Deadlines {
    pub connect: Duration,
    pub request: Duration,
}

/// A lazily connecting gRPC channel to `addr` (`host:port`). It reconnects by itself after a
/// failure; every request on it fails with `Unavailable` or `DeadlineExceeded` rather than hang.
pub fn channel(transport: Transport, addr: &str, deadlines: Deadlines) -> Result<Channel, tonic::transport::Error> {
    channel_through(transport, addr, deadlines, |conn| conn)
}

/// [`channel`], with every connection it dials passed through `wrap` first (a host firewall, say).
pub fn channel_through<C>(
    transport: Transport,
    addr: &str,
    deadlines: Deadlines,
    wrap: impl Fn(Conn) -> C + Clone + Send + Sync + 'static,
) -> Result<Channel, tonic::transport::Error>
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    // HTTP/2 keep-alive closes a connection that stopped answering, so the channel reconnects. Without it a
    // connection that lost bytes while a link was cut (turmoil's TCP does not retransmit; a real one can give up
    // too) hangs every later request until its deadline, forever: a healed partition would never heal.
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(deadlines.connect)
        .timeout(deadlines.request)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(deadlines.connect)
        .keep_alive_while_idle(true)
        .tcp_nodelay(true);
    let target = addr.to_string();
    let connector = tower::service_fn(move |_uri: tonic::transport::Uri| {
        let target = target.clone();
        let wrap = wrap.clone();
        async move {
            let conn = match transport {
                Transport::Tcp => {
                    let s = tokio::net::TcpStream::connect(&target).await?;
                    let _ = s.set_nodelay(true);
                    Conn::Tcp(s)
                }
                Transport::Sim => Conn::Sim(turmoil::net::TcpStream::connect(target.as_str()).await?),
            };
            Ok::<_, io::Error>(TokioIo::new(wrap(conn)))
        }
    });
    Ok(endpoint.connect_with_connector_lazy(connector))
}
