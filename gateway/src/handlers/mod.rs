//! One module per API resource; each handler is callable without a socket.
//!
//! # Layout
//! - [`purchase`]: `POST /api/v1/orders`, the whole pipeline in stage order.
//! - [`order_tokens`]: `POST /api/v1/campaigns/{id}/order-tokens`.
//! - [`orders`]: `GET /api/v1/orders/{id}`.
//! - [`campaigns`]: `GET /api/v1/campaigns[/{id}]`.
//! - [`lifecycle`]: `POST /api/v1/orders/{id}/cancel`, `POST /api/v1/payments/callback`.
//! - [`health`]: `/healthz`, `/readyz`.
//! - [`views`]: the JSON shapes of orders and campaigns.

pub mod campaigns;
pub mod health;
pub mod lifecycle;
pub mod order_tokens;
pub mod orders;
pub mod purchase;
pub mod views;

use http::{Request, header};

use crate::app::App;
use crate::auth::Identity;
use crate::http::ApiError;

/// Stages 2 and 3: who is asking, and whether their bucket has room.
///
/// # Errors
/// 401 without a valid bearer token, 429 when the user's bucket is empty.
pub fn identify<B>(app: &App, req: &Request<B>) -> Result<Identity, ApiError> {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    let identity = app.jwt.verify_header(header, app.clock.now_s())?;
    app.limits.check_user(&identity.user_id)?;
    Ok(identity)
}
