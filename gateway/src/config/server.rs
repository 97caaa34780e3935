//! `[server]`: the HTTP listener, this node's id, and the bounds of requests and connections.

use std::net::SocketAddr;
use std::time::Duration;

use super::checks::{Errors, MS};
use super::raw::RawServer;

/// `[server]`: the HTTP front door.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Address to bind (default `127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// This node's id (0..=255), embedded in order ids so nodes never mint the same id.
    pub node_id: u16,
    /// Largest request body accepted (default 4096): purchase bodies are tiny, and a cap keeps
    /// a flood of big bodies from eating memory.
    pub max_body_bytes: usize,
    /// How long in-flight requests get to finish after SIGTERM (default 10s).
    pub shutdown_grace: Duration,
    /// Drop connections that do not send their headers in time (default 5s): slowloris guard.
    pub header_read_timeout: Duration,
    /// Longest a request body may take to arrive (default 10s): 408 `request_timeout`. Only
    /// the body is timed, never the work after it (a purchase in Redis is not cut off).
    pub request_timeout: Duration,
    /// Open connections at most (default 10000); beyond it new ones are answered 503
    /// `too_many_connections` and closed, and the connections being served are not disturbed.
    pub max_connections: usize,
    /// Bytes of request head (request line and headers) at most (8192..=1 MiB, default 16384).
    pub max_header_bytes: usize,
    /// Headers per request at most (default 64).
    pub max_headers: usize,
    /// Concurrent HTTP/2 streams per connection at most (default 128).
    pub http2_max_streams: u32,
    /// Threads serving requests (default: one per core). Fewer than the cores when the gateway
    /// shares its machine with busy neighbours (Redis, a load generator): a runnable worker
    /// then waits out the others' time slices, which is the requests' p99 (docs/BENCHMARKS.md
    /// §10).
    pub workers: Option<usize>,
}

/// `[server]`, each key within its bounds (the defaults are in [`ServerConfig`]).
pub(super) fn server(e: &mut Errors, s: RawServer) -> ServerConfig {
    let listen = match s.listen.as_deref() {
        None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        Some(text) => text.parse().unwrap_or_else(|err| {
            e.push(
                "server.listen",
                format!("not an ip:port address: {text:?} ({err})"),
            );
            SocketAddr::from(([127, 0, 0, 1], 8080))
        }),
    };
    ServerConfig {
        listen,
        node_id: e.int("server.node_id", s.node_id, 0, 0, 255),
        max_body_bytes: e.int("server.max_body_bytes", s.max_body_bytes, 4096, 1, 1 << 20),
        shutdown_grace: e.duration(
            "server.shutdown_grace",
            s.shutdown_grace.as_deref(),
            Duration::from_secs(10),
            Duration::ZERO,
        ),
        header_read_timeout: e.duration(
            "server.header_read_timeout",
            s.header_read_timeout.as_deref(),
            Duration::from_secs(5),
            MS,
        ),
        request_timeout: e.duration(
            "server.request_timeout",
            s.request_timeout.as_deref(),
            Duration::from_secs(10),
            MS,
        ),
        max_connections: e.int(
            "server.max_connections",
            s.max_connections,
            10_000,
            1,
            1_000_000,
        ),
        // hyper needs at least 8 KiB of read buffer.
        max_header_bytes: e.int(
            "server.max_header_bytes",
            s.max_header_bytes,
            16_384,
            8_192,
            1 << 20,
        ),
        max_headers: e.int("server.max_headers", s.max_headers, 64, 1, 1_000),
        http2_max_streams: e.int(
            "server.http2_max_streams",
            s.http2_max_streams,
            128,
            1,
            10_000,
        ),
        workers: s
            .workers
            .map(|w| e.int("server.workers", Some(w), 1, 1, 1_024)),
    }
}
