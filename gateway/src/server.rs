//! Accepting connections and serving them until shutdown.
//!
//! HTTP/1.1 keep-alive and h2c on one port (hyper-util's auto builder). Each connection is
//! watched by a `GracefulShutdown`: on shutdown the accept loop stops, connections finish their
//! in-flight requests (bounded by the grace period) and close.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::app::App;
use crate::config::ServerConfig;
use crate::http::ApiError;
use crate::router::route;

/// Serves `listener` until `shutdown` resolves, then drains connections for up to
/// `limits.shutdown_grace`.
///
/// Hostile traffic meets these bounds (all from `[server]`): a connection must send its first
/// bytes, and a head must arrive, within `header_read_timeout` (slowloris), and stay within
/// `max_header_bytes` and `max_headers`; a body must arrive within `request_timeout` (see
/// `read_bounded`); HTTP/2 connections carry at most `http2_max_streams` streams and are
/// pinged when quiet; and past `max_connections` open connections a new one is answered 503
/// and closed at once, so the connections being served are not disturbed.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
    limits: &ServerConfig,
) {
    let builder = connection_builder(limits);
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let (stopping, _) = tokio::sync::watch::channel(false);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    while let Some((stream, peer)) = accept(&listener, &mut shutdown).await {
        let _ = stream.set_nodelay(true);
        let Ok(permit) = open.clone().try_acquire_owned() else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let connection = Connection {
            stream,
            peer,
            permit,
            watcher: graceful.watcher(),
            stopping: stopping.subscribe(),
        };
        tokio::spawn(connection.serve(app.clone(), builder.clone(), limits.header_read_timeout));
    }
    drop(listener);
    stopping.send_replace(true);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace = ?limits.shutdown_grace,
            "connections still open after the grace period; closing them"
        );
    }
}

/// The HTTP/1.1 and HTTP/2 settings every connection is served with, from `[server]`.
fn connection_builder(limits: &ServerConfig) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Without a timer, header_read_timeout silently does nothing.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes)
        .max_headers(limits.max_headers)
        .keep_alive(true);
    // An HTTP/2 connection that goes quiet is pinged, and closed when it does not answer.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.header_read_timeout))
        .keep_alive_timeout(limits.header_read_timeout)
        .max_concurrent_streams(limits.http2_max_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    builder
}

/// The next connection, or `None` once `shutdown` resolves.
async fn accept<F: Future<Output = ()>>(
    listener: &TcpListener,
    shutdown: &mut Pin<&mut F>,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => return Some(conn),
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            () = shutdown.as_mut() => return None,
        }
    }
}

/// An accepted connection, with its place among the open ones.
struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    /// Its slot of `max_connections`, given back when it closes.
    permit: OwnedSemaphorePermit,
    /// Lets the graceful shutdown finish its requests and close it.
    watcher: Watcher,
    /// Tells a connection that has not sent its first bytes yet that the gateway is stopping.
    stopping: watch::Receiver<bool>,
}

impl Connection {
    /// Serves the connection until it closes (or the graceful shutdown closes it).
    async fn serve(
        mut self,
        app: Arc<App>,
        builder: auto::Builder<TokioExecutor>,
        first_byte_timeout: Duration,
    ) {
        // A connection that sends nothing would hold its slot for ever: hyper's timers
        // start once a protocol is chosen, which needs the first bytes. One still silent
        // at shutdown is dropped at once (it has no request to finish).
        let mut first = [0u8; 1];
        tokio::select! {
            sent = tokio::time::timeout(first_byte_timeout, self.stream.peek(&mut first)) => {
                if !matches!(sent, Ok(Ok(n)) if n > 0) {
                    return;
                }
            }
            _ = self.stopping.changed() => return,
        }
        let peer = self.peer;
        let service = service_fn(move |req| {
            let app = app.clone();
            async move { Ok::<_, Infallible>(route(&app, req, peer.ip()).await) }
        });
        let conn = builder.serve_connection(TokioIo::new(self.stream), service);
        if let Err(e) = self.watcher.watch(conn.into_owned()).await {
            tracing::debug!(error = %e, "connection ended with an error");
        }
        drop(self.permit);
    }
}

/// Answers a connection beyond `max_connections` with a 503 and closes it, without reading it.
async fn refuse(mut stream: TcpStream) {
    // Its status, headers and body come from `ApiError`, like every other error answer; only
    // the framing is written here, since hyper never sees this connection.
    let refusal = ApiError::TooManyConnections;
    let status = refusal.status();
    let body = refusal.body();
    let mut answer = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\nretry-after: {}\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default(),
        refusal.retry_after_s().unwrap_or(1),
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&answer)).await;
    let _ = stream.shutdown().await;
    // Linger: read and drop what the client sent, so closing with unread data does not reset
    // the connection before the client has read the answer.
    let mut sink = [0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}
