//! The admin listener (`[admin] listen`), apart from public traffic: `GET /metrics` for
//! Prometheus, and the admin API under `/admin/v1/`, behind `admin.token`.

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
use crate::handlers::campaigns;
use crate::http::{Answer, ApiError, json};
use crate::metrics::exposition;

/// Every route of the admin listener, as method and path (see `router::ROUTES`).
pub const ADMIN_ROUTES: [(Method, &str); 3] = [
    (Method::GET, "/metrics"),
    (Method::GET, "/admin/v1/campaigns"),
    (Method::POST, "/admin/v1/reload"),
];

/// Serves the admin listener until the task is aborted (at shutdown).
pub async fn serve(listener: TcpListener, app: Arc<App>) {
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let app = app.clone();
        let service = service_fn(move |req: Request<hyper::body::Incoming>| {
            let app = app.clone();
            async move {
                let answer = route(&app, &req)
                    .await
                    .unwrap_or_else(ApiError::into_answer);
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

async fn route<B>(app: &App, req: &Request<B>) -> Result<Answer, ApiError> {
    let path = req.uri().path();
    if path == "/metrics" {
        only(req, &Method::GET)?;
        let mut answer = Response::new(Full::new(Bytes::from(exposition::render(app).await)));
        answer.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        );
        return Ok(answer);
    }
    let Some(rest) = path.strip_prefix("/admin/v1/") else {
        return Err(ApiError::NotFound {
            code: "not_found",
            message: "no such route",
        });
    };
    authorize(app, req)?;
    match rest {
        "campaigns" => {
            only(req, &Method::GET)?;
            campaigns::list(app).await
        }
        "reload" => {
            only(req, &Method::POST)?;
            let reloaded = crate::reload::reload(app).await?;
            Ok(json(StatusCode::OK, &reloaded))
        }
        _ => Err(ApiError::NotFound {
            code: "not_found",
            message: "no such route",
        }),
    }
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
