//! The admin listener (`[admin] listen`), apart from public traffic: `GET /metrics` for
//! Prometheus, and the admin API under `/admin/v1/`, behind `admin.token`.
//!
//! # Layout
//! - `mod.rs`: the listener, routing and the token check.
//! - [`campaigns`]: create or update a campaign, change its stock, close it early; list and
//!   retry the orders the store refused.
//! - [`config_file`]: edits go through the config file, so it stays the source of truth.
//! - [`repair`]: rebuild a campaign's Redis state from the store (lost or older than the store).

pub mod campaigns;
pub mod config_file;
pub mod repair;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use crate::app::App;
use crate::handlers::campaigns as public_campaigns;
use crate::http::body::read_bounded;
use crate::http::{Answer, ApiError, ErrorCode, json};
use crate::metrics::exposition;

/// Every route of the admin listener, as method and path (see `router::ROUTES`).
pub const ADMIN_ROUTES: [(Method, &str); 9] = [
    (Method::GET, "/metrics"),
    (Method::GET, "/admin/v1/campaigns"),
    (Method::PUT, "/admin/v1/campaigns/{campaign_id}"),
    (Method::POST, "/admin/v1/campaigns/{campaign_id}/stock"),
    (Method::POST, "/admin/v1/campaigns/{campaign_id}/close"),
    (Method::POST, "/admin/v1/campaigns/{campaign_id}/rebuild"),
    (Method::GET, "/admin/v1/campaigns/{campaign_id}/poisoned"),
    (
        Method::POST,
        "/admin/v1/campaigns/{campaign_id}/poisoned/{order_id}/retry",
    ),
    (Method::POST, "/admin/v1/reload"),
];

/// Largest admin request body: a campaign's fields.
const MAX_ADMIN_BODY: usize = 16 * 1024;

const NO_ROUTE: ApiError = ApiError::NotFound {
    code: ErrorCode::NotFound,
    message: "no such route",
};

/// Serves the admin listener until the task is aborted (at shutdown).
pub async fn serve(listener: TcpListener, app: Arc<App>) {
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors and the like: back off rather than spin.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let app = app.clone();
        let service = service_fn(move |req: Request<hyper::body::Incoming>| {
            let app = app.clone();
            async move {
                let answer = route(&app, req).await.unwrap_or_else(ApiError::into_answer);
                Ok::<_, Infallible>(answer)
            }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}

/// What `/metrics` reads of the gateway's state.
fn sources(app: &App) -> exposition::Sources<'_> {
    exposition::Sources {
        metrics: &app.metrics,
        store_health: &app.store_health,
        catalog: &app.catalog,
        handoff: &app.handoff,
        limits: &app.limits,
        redis: &app.redis,
        scripts: &app.scripts,
        retire_after: app.config.persistence.retire_after,
        clock: &app.clock,
    }
}

async fn route<B>(app: &App, req: Request<B>) -> Result<Answer, ApiError>
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let uri = req.uri().clone();
    let path = uri.path();
    if path == "/metrics" {
        only(&req, &Method::GET)?;
        let mut answer = Response::new(Full::new(Bytes::from(
            exposition::render(sources(app)).await,
        )));
        answer.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        );
        return Ok(answer);
    }
    let Some(rest) = path.strip_prefix("/admin/v1/") else {
        return Err(NO_ROUTE);
    };
    authorize(app, &req)?;
    let mut parts = rest.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("campaigns"), Some(id), Some("poisoned"), None) => {
            only(&req, &Method::GET)?;
            campaigns::poisoned(app, id).await
        }
        (Some("campaigns"), Some(id), Some("poisoned"), Some(order_id))
            if parts.next() == Some("retry") && parts.next().is_none() =>
        {
            only(&req, &Method::POST)?;
            campaigns::retry_poisoned(app, id, order_id).await
        }
        (Some("campaigns"), None, None, None) => {
            only(&req, &Method::GET)?;
            public_campaigns::list(app).await
        }
        (Some("campaigns"), Some(id), None, None) if !id.is_empty() => {
            only(&req, &Method::PUT)?;
            if !crate::ids::is_key_safe(id) {
                return Err(ApiError::bad_request(
                    ErrorCode::InvalidField,
                    "campaign ids are 1-64 letters, digits and _ . : -",
                ));
            }
            let body = body_of(app, req).await?;
            campaigns::put(app, id, &body).await
        }
        (Some("campaigns"), Some(id), Some("stock"), None) => {
            only(&req, &Method::POST)?;
            let body = body_of(app, req).await?;
            campaigns::set_stock(app, id, &body).await
        }
        (Some("campaigns"), Some(id), Some("close"), None) => {
            only(&req, &Method::POST)?;
            campaigns::close(app, id).await
        }
        (Some("campaigns"), Some(id), Some("rebuild"), None) => {
            only(&req, &Method::POST)?;
            repair::rebuild(app, id).await
        }
        (Some("reload"), None, None, None) => {
            only(&req, &Method::POST)?;
            let reloaded = crate::reload::reload(app).await?;
            Ok(json(StatusCode::OK, &reloaded))
        }
        _ => Err(NO_ROUTE),
    }
}

async fn body_of<B>(app: &App, req: Request<B>) -> Result<Bytes, ApiError>
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    read_bounded(
        req.into_body(),
        length,
        MAX_ADMIN_BODY,
        app.config.server.request_timeout,
    )
    .await
}

fn only<B>(req: &Request<B>, method: &Method) -> Result<(), ApiError> {
    if req.method() == method {
        Ok(())
    } else {
        Err(ApiError::MethodNotAllowed)
    }
}

/// The admin token, compared in constant time: how long the comparison takes says nothing
/// about how much of a guess was right.
fn authorize<B>(app: &App, req: &Request<B>) -> Result<(), ApiError> {
    let Some(expected) = &app.config.admin.token else {
        return Err(ApiError::AdminDisabled);
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .unwrap_or_default();
    if constant_time_eq(given, expected.expose().as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::AdminUnauthorized)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // The length is not secret; the bytes are: every byte is looked at, whatever differs.
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0 && a.len() == b.len()
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn tokens_match_only_exactly() {
        assert!(constant_time_eq(b"secret-token-123", b"secret-token-123"));
        assert!(!constant_time_eq(b"secret-token-124", b"secret-token-123"));
        assert!(!constant_time_eq(b"secret-token-12", b"secret-token-123"));
        assert!(!constant_time_eq(b"", b"secret-token-123"));
    }
}
