//! Which handler answers which request.
//!
//! Stage 1 (the global and per-IP buckets) runs here, before anything is parsed, for every API
//! route; health probes and the (signed) payment callback are exempt, so neither an
//! orchestrator nor the payment provider is rate limited with the buyers.

use std::net::IpAddr;

use http::{Method, Request};
use hyper::body::Body;

use crate::app::App;
use crate::handlers::{campaigns, health, lifecycle, order_tokens, orders, purchase};
use crate::http::{Answer, ApiError};

const NO_ROUTE: ApiError = ApiError::NotFound {
    code: "not_found",
    message: "no such route",
};

/// Answers `req` from client `ip`. Never fails: every error is an answer.
pub async fn route<B>(app: &App, req: Request<B>, ip: IpAddr) -> Answer
where
    B: Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    dispatch(app, req, ip)
        .await
        .unwrap_or_else(ApiError::into_answer)
}

async fn dispatch<B>(app: &App, req: Request<B>, ip: IpAddr) -> Result<Answer, ApiError>
where
    B: Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    // The URI is shared (reference-counted), so the path can be held while the request moves on.
    let uri = req.uri().clone();
    let path = uri.path();
    match path {
        "/healthz" => return only(&req, &Method::GET).map(|()| health::healthz()),
        "/readyz" => {
            only(&req, &Method::GET)?;
            return Ok(health::readyz(app).await);
        }
        _ => {}
    }
    let Some(rest) = path.strip_prefix("/api/v1/") else {
        return Err(NO_ROUTE);
    };
    if rest == "payments/callback" {
        // The provider sends every callback from few addresses: it is authenticated by its
        // HMAC signature, not throttled with the buyers' per-IP bucket.
        only(&req, &Method::POST)?;
        return lifecycle::payment_callback(app, req).await;
    }
    app.limits.check_client(ip)?;
    let mut parts = rest.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("orders"), None, None, None) if req.method() == Method::GET => {
            orders::list(app, req).await
        }
        (Some("orders"), None, None, None) => {
            only(&req, &Method::POST)?;
            purchase::purchase(app, req).await
        }
        (Some("orders"), Some(id), None, None) if !id.is_empty() => {
            only(&req, &Method::GET)?;
            orders::get(app, req, id).await
        }
        (Some("orders"), Some(id), Some("cancel"), None) if !id.is_empty() => {
            only(&req, &Method::POST)?;
            lifecycle::cancel(app, req, id).await
        }
        (Some("campaigns"), None, None, None) => {
            only(&req, &Method::GET)?;
            campaigns::list(app).await
        }
        (Some("campaigns"), Some(id), None, None) if !id.is_empty() => {
            only(&req, &Method::GET)?;
            campaigns::get(app, id).await
        }
        (Some("campaigns"), Some(id), Some("order-tokens"), None) => {
            only(&req, &Method::POST)?;
            order_tokens::issue(app, req, id).await
        }
        _ => Err(NO_ROUTE),
    }
}

fn only<B>(req: &Request<B>, method: &Method) -> Result<(), ApiError> {
    if req.method() == method {
        Ok(())
    } else {
        Err(ApiError::MethodNotAllowed)
    }
}
