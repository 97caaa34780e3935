//! Accepting connections and serving them until shutdown.
//!
//! HTTP/1.1 keep-alive and h2c on one port (hyper-util's auto builder). Each connection is
//! watched by a `GracefulShutdown`: on shutdown the accept loop stops, connections finish their
//! in-flight requests (bounded by the grace period) and close.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::app::App;
use crate::config::ServerConfig;
use crate::http::ApiError;
use crate::router::route;

/// Serves `listener` until `shutdown` resolves, then drains connections for up to
/// `limits.shutdown_grace`.
///
/// Hostile traffic meets these bounds (all from `[server]`): a head must arrive within
/// `header_read_timeout` (slowloris) and stay within `max_header_bytes` and `max_headers`; a
/// request must be answered within `request_timeout`; HTTP/2 connections carry at most
/// `http2_max_streams` streams at once; and past `max_connections` open connections a new one
/// is answered 503 and closed at once, so the connections being served are not disturbed.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
    limits: &ServerConfig,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Without a timer, header_read_timeout silently does nothing.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes)
        .max_headers(limits.max_headers)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.http2_max_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let request_timeout = limits.request_timeout;
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let Ok(permit) = open.clone().try_acquire_owned() else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let app = app.clone();
        let service = service_fn(move |req| {
            let app = app.clone();
            async move {
                let answer = tokio::time::timeout(request_timeout, route(&app, req, peer.ip()))
                    .await
                    .unwrap_or_else(|_| REQUEST_TIMEOUT.into_answer());
                Ok::<_, Infallible>(answer)
            }
        });
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
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

const REQUEST_TIMEOUT: ApiError = ApiError::Unavailable {
    code: "request_timeout",
    message: "the request took too long; a purchase may still have been accepted: retry it with its order token",
};

/// Answers a connection beyond `max_connections` with a 503 and closes it, without reading it.
async fn refuse(mut stream: tokio::net::TcpStream) {
    const BODY: &str = r#"{"error":{"code":"too_many_connections","message":"the gateway is at its connection limit; retry shortly"}}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(answer.as_bytes())).await;
    let _ = stream.shutdown().await;
}
