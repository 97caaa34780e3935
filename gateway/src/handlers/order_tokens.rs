//! `POST /api/v1/campaigns/{id}/order-tokens`: pre-issue an order id for an idempotent submit.
//!
//! Stateless: nothing is written anywhere. Tokens can be fetched before the campaign starts, so
//! clients are ready at the first second of the sale.

use http::{Request, StatusCode};
use serde::Serialize;

use super::identify;
use crate::app::App;
use crate::clock::rfc3339;
use crate::http::{Answer, ApiError, json};

#[derive(Debug, Serialize)]
struct IssuedToken<'a> {
    order_id: String,
    campaign_id: &'a str,
    token: String,
    expires_at: String,
}

/// Issues a token for the caller on `campaign_id`.
///
/// # Errors
/// 401/429 from identity, 404 unknown campaign, 410 ended, 503 when no id can be minted.
pub async fn issue<B>(app: &App, req: Request<B>, campaign_id: &str) -> Result<Answer, ApiError> {
    let identity = identify(app, &req)?;
    let campaign = app.campaign(campaign_id)?;
    let campaign = &*campaign;
    if app.clock.now_ms() >= campaign.config.end_ms {
        return Err(ApiError::Ended);
    }
    let order_id = app.ids.next(&identity.user_id)?;
    let (token, expires_s) = token_for(app, order_id, campaign_id, &identity.user_id);
    Ok(json(
        StatusCode::CREATED,
        &IssuedToken {
            order_id: order_id.to_string(),
            campaign_id: &campaign.config.id,
            token,
            expires_at: rfc3339(expires_s.saturating_mul(1000)),
        },
    ))
}

/// A token for `order_id`, valid for `auth.order_token_ttl`, and when it expires (Unix s). Also
/// what a purchase whose outcome is unknown hands out, so its retry is the same purchase.
pub(crate) fn token_for(
    app: &App,
    order_id: u64,
    campaign_id: &str,
    user_id: &str,
) -> (String, i64) {
    let ttl = i64::try_from(app.config.auth.order_token_ttl.as_secs()).unwrap_or(i64::MAX);
    let expires_s = app.clock.now_s().saturating_add(ttl);
    let token = app
        .order_tokens
        .issue(order_id, expires_s, campaign_id, user_id);
    (token, expires_s)
}
