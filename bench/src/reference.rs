//! The yardsticks every gateway figure is a ratio of, built like the gateway's server
//! (hyper-util auto builder, multi-thread runtime, mimalloc, TCP_NODELAY), so a ratio measures
//! what the gateway adds and nothing about the server stack:
//!
//! - **hello**: answers a small JSON body, nothing else: the cost of HTTP serving.
//! - **naive**: one `EVALSHA` of a 6-line stock script per request on one multiplexed Redis
//!   connection (ARCHITECTURE.md §10): no auth, no JSON, no batching, no persistence. The floor a
//!   gateway that reserves stock in Redis is held to.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

/// The naive gateway's script (ARCHITECTURE.md §10): 1 reserved, 2 already bought, 0 sold out.
const NAIVE_SCRIPT: &str = "if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 2 end; \
local s = tonumber(redis.call('GET', KEYS[1]) or '0'); if s <= 0 then return 0 end; \
redis.call('DECR', KEYS[1]); redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]); return 1";

/// The naive gateway's keys, one slot, apart from anything the gateway owns.
const NAIVE_STOCK: &str = "naive:{reference}:stock";
const NAIVE_BUYERS: &str = "naive:{reference}:buyers";

/// Serves hello-world on `listen` until killed.
///
/// # Errors
/// The address cannot be bound.
pub fn serve(listen: SocketAddr, workers: Option<usize>) -> anyhow::Result<()> {
    run(listen, workers, "reference server", || async {
        Ok(move |_req: Request<hyper::body::Incoming>| async {
            Ok::<_, Infallible>(json(StatusCode::OK, b"{\"hello\":\"world\"}"))
        })
    })
}

/// Serves the naive gateway on `listen` until killed: `POST /buy/<user>` runs the script once
/// for that user (stock reset to practically unlimited at start, buyers forgotten), and answers
/// 201 reserved, 409 already bought, 410 sold out, 503 on a Redis error, 404 off the path.
///
/// # Errors
/// Redis cannot be reached, or the address cannot be bound.
pub fn serve_naive(
    listen: SocketAddr,
    redis_url: &str,
    workers: Option<usize>,
) -> anyhow::Result<()> {
    let client = redis::Client::open(redis_url).context("the naive gateway's Redis URL")?;
    run(
        listen,
        workers,
        "naive reference gateway",
        move || async move {
            let mut connection = client
                .get_multiplexed_async_connection()
                .await
                .context("connecting to Redis")?;
            redis::pipe()
                .set(NAIVE_STOCK, 1_000_000_000_000_u64)
                .ignore()
                .del(NAIVE_BUYERS)
                .ignore()
                .exec_async(&mut connection)
                .await
                .context("resetting the naive stock")?;
            let script = Arc::new(redis::Script::new(NAIVE_SCRIPT));
            let orders = Arc::new(AtomicU64::new(0));
            Ok(move |req: Request<hyper::body::Incoming>| {
                let (mut connection, script, orders) =
                    (connection.clone(), script.clone(), orders.clone());
                async move {
                    let Some(user) = req.uri().path().strip_prefix("/buy/") else {
                        return Ok::<_, Infallible>(json(StatusCode::NOT_FOUND, b"{}"));
                    };
                    let order = orders.fetch_add(1, Ordering::Relaxed);
                    let answer: redis::RedisResult<i64> = script
                        .key(NAIVE_STOCK)
                        .key(NAIVE_BUYERS)
                        .arg(user)
                        .arg(order)
                        .invoke_async(&mut connection)
                        .await;
                    Ok(match answer {
                        Ok(1) => json(StatusCode::CREATED, b"{\"reserved\":true}"),
                        Ok(2) => json(StatusCode::CONFLICT, b"{\"reserved\":false}"),
                        Ok(_) => json(StatusCode::GONE, b"{\"reserved\":false}"),
                        Err(_) => json(StatusCode::SERVICE_UNAVAILABLE, b"{}"),
                    })
                }
            })
        },
    )
}

fn json(status: StatusCode, body: &'static [u8]) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// Runs a server on `workers` threads (default: one per core, as the gateway): `setup` makes
/// the request handler once, then every connection is served with a clone of it.
fn run<S, F, H, R>(
    listen: SocketAddr,
    workers: Option<usize>,
    name: &str,
    setup: S,
) -> anyhow::Result<()>
where
    S: FnOnce() -> F,
    F: Future<Output = anyhow::Result<H>>,
    H: Fn(Request<hyper::body::Incoming>) -> R + Clone + Send + Sync + 'static,
    R: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = workers {
        runtime.worker_threads(workers);
    }
    let runtime = runtime.enable_all().build()?;
    runtime.block_on(async move {
        let handler = setup().await?;
        let listener = tokio::net::TcpListener::bind(listen).await?;
        eprintln!("{name} on {}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let handler = handler.clone();
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service_fn(handler))
                    .await;
            });
        }
    })
}
