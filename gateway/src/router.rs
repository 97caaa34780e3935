//! Which handler answers which request.
//!
//! Stage 1 (the global and per-IP buckets) runs here, before anything is parsed, for every API
//! route; health probes and the (signed) payment callback are exempt, so neither an
//! orchestrator nor the payment provider is rate limited with the buyers. The callback has a
//! bucket of its own instead, also checked before its body is read.

use std::net::IpAddr;
use std::time::Instant;

use http::{Method, Request};
use hyper::body::Body;

use crate::app::App;
use crate::handlers::{campaigns, health, lifecycle, order_tokens, orders, purchase};
use crate::http::{Answer, ApiError, ErrorCode};
use crate::metrics::requests::{NO_CODE, Route};

/// Every route [`route`] answers, as method, path template (OpenAPI style) and metrics label.
/// `docs/openapi.yaml` must describe exactly these (and the admin listener's), which
/// `tests/tests/openapi.rs` checks; every [`Route`] label must appear here.
pub const ROUTES: [(Method, &str, Route); 10] = [
    (Method::GET, "/healthz", Route::Health),
    (Method::GET, "/readyz", Route::Health),
    (Method::POST, "/api/v1/orders", Route::Purchase),
    (Method::GET, "/api/v1/orders", Route::OrderList),
    (Method::GET, "/api/v1/orders/{order_id}", Route::OrderGet),
    (
        Method::POST,
        "/api/v1/orders/{order_id}/cancel",
        Route::Cancel,
    ),
    (Method::GET, "/api/v1/campaigns", Route::CampaignList),
    (
        Method::GET,
        "/api/v1/campaigns/{campaign_id}",
        Route::CampaignGet,
    ),
    (
        Method::POST,
        "/api/v1/campaigns/{campaign_id}/order-tokens",
        Route::OrderToken,
    ),
    (
        Method::POST,
        "/api/v1/payments/callback",
        Route::PaymentCallback,
    ),
];

const NO_ROUTE: ApiError = ApiError::NotFound {
    code: ErrorCode::NotFound,
    message: "no such route",
};

/// Answers `req` from client `ip`, and counts it for `/metrics` by route, status and error
/// code. Never fails: every error is an answer.
pub async fn route<B>(app: &App, req: Request<B>, ip: IpAddr) -> Answer
where
    B: Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let started = Instant::now();
    let mut label = Route::Other;
    let (answer, code) = match dispatch(app, req, ip, &mut label).await {
        Ok(answer) => (answer, NO_CODE),
        Err(e) => {
            let code = e.code().as_str();
            (e.into_answer(), code)
        }
    };
    app.metrics
        .requests
        .record(label, answer.status().as_u16(), code, started.elapsed());
    answer
}

async fn dispatch<B>(
    app: &App,
    req: Request<B>,
    ip: IpAddr,
    label: &mut Route,
) -> Result<Answer, ApiError>
where
    B: Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    // The URI is shared (reference-counted), so the path can be held while the request moves on.
    let uri = req.uri().clone();
    let path = uri.path();
    match path {
        "/healthz" => {
            *label = Route::Health;
            return only(&req, &Method::GET).map(|()| health::healthz());
        }
        "/readyz" => {
            *label = Route::Health;
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
        *label = Route::PaymentCallback;
        only(&req, &Method::POST)?;
        app.limits.check_payment_callback()?;
        return lifecycle::payment_callback(app, req).await;
    }
    app.limits.check_client(ip)?;
    let mut parts = rest.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("orders"), None, None, None) if req.method() == Method::GET => {
            *label = Route::OrderList;
            orders::list(app, req).await
        }
        (Some("orders"), None, None, None) => {
            *label = Route::Purchase;
            only(&req, &Method::POST)?;
            purchase::purchase(app, req).await
        }
        (Some("orders"), Some(id), None, None) if !id.is_empty() => {
            *label = Route::OrderGet;
            only(&req, &Method::GET)?;
            orders::get(app, req, id).await
        }
        (Some("orders"), Some(id), Some("cancel"), None) if !id.is_empty() => {
            *label = Route::Cancel;
            only(&req, &Method::POST)?;
            lifecycle::cancel(app, req, id).await
        }
        (Some("campaigns"), None, None, None) => {
            *label = Route::CampaignList;
            only(&req, &Method::GET)?;
            campaigns::list(app).await
        }
        (Some("campaigns"), Some(id), None, None) if !id.is_empty() => {
            *label = Route::CampaignGet;
            only(&req, &Method::GET)?;
            campaigns::get(app, id).await
        }
        (Some("campaigns"), Some(id), Some("order-tokens"), None) => {
            *label = Route::OrderToken;
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
