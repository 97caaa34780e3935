//! `POST /api/v1/orders`: a purchase, through every stage in order, cheapest first.

use std::borrow::Cow;

use bytes::Bytes;

use flashgate_stock::{Order, ReserveOutcome};
use http::{Request, StatusCode, header};
use hyper::body::Body;
use serde::Deserialize;

use super::identify;
use super::order_tokens::token_for;
use super::views::OrderView;
use crate::app::App;
use crate::auth::OrderTokenError;
use crate::http::body::{parse_strict, read_bounded};
use crate::http::{Answer, ApiError, ErrorCode, json};
use crate::pipeline::catalog::Campaign;

/// The purchase body. Unknown fields are refused, so a client's typo is a 400, not an ignored
/// setting.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PurchaseRequest<'a> {
    #[serde(borrow)]
    campaign_id: Cow<'a, str>,
    #[serde(default)]
    quantity: Option<i64>,
    #[serde(default, borrow)]
    token: Option<Cow<'a, str>>,
}

/// Stages 2–10. (Stage 1, the client's buckets, ran in the router.)
///
/// # Errors
/// Every refusal, as the [`ApiError`] that says why.
pub async fn purchase<B>(app: &App, req: Request<B>) -> Result<Answer, ApiError>
where
    B: Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let identity = identify(app, &req)?;
    let body = read_body(app, req).await?;
    let request: PurchaseRequest<'_> = parse_strict(&body)?;
    let quantity = request.quantity.unwrap_or(1);

    let campaign = app.campaign(&request.campaign_id)?;
    let campaign = &*campaign;
    campaign.check_repaired()?;
    let quantity = checked_quantity(campaign, quantity)?;
    let token = verified_token(app, campaign, request.token.as_deref(), &identity.user_id)?;
    if let Some((order_id, expires_s)) = token
        && expires_s <= app.clock.now_s()
    {
        return expired_token_answer(app, campaign, order_id, &identity.user_id).await;
    }
    let token_order = token.map(|(order_id, _)| order_id);
    if let Err(refusal) = open_for_sale(campaign, app.clock.now_ms()) {
        return refusal_answer(app, campaign, token_order, &identity.user_id, refusal).await;
    }

    let order_id = match token_order {
        Some(order_id) => order_id,
        None => app.ids.next(&identity.user_id)?,
    };

    let outcome = campaign
        .reserver
        .reserve(identity.user_id.clone(), order_id, quantity)
        .await
        .map_err(|e| {
            ApiError::reserve_failed(e, || {
                // The client may not hold a token for this id (it sent none): give it one, so
                // its retry is this purchase and not a second one.
                let token = match request.token.as_deref() {
                    Some(token) => token.to_string(),
                    None => token_for(app, order_id, &campaign.config.id, &identity.user_id).0,
                };
                (order_id, token)
            })
        })?;
    outcome_answer(app, campaign, outcome)
}

/// The body, bounded by `server.max_body_bytes` and the request timeout.
async fn read_body<B>(app: &App, req: Request<B>) -> Result<Bytes, ApiError>
where
    B: Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let content_length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    read_bounded(
        req.into_body(),
        content_length,
        app.config.server.max_body_bytes,
        app.config.server.request_timeout,
    )
    .await
}

/// The quantity, if it is 1 to the campaign's `max_quantity`.
fn checked_quantity(campaign: &Campaign, quantity: i64) -> Result<u32, ApiError> {
    let max = campaign.config.max_quantity;
    u32::try_from(quantity)
        .ok()
        .filter(|q| (1..=max).contains(q))
        .ok_or_else(|| {
            ApiError::bad_request(
                ErrorCode::InvalidQuantity,
                format!("quantity must be 1 to {max}"),
            )
        })
}

/// The order id and expiry (Unix s) of the request's order token, if it sent one.
///
/// A token's signature proves whose order it names, expired or not: an expired token may
/// still read that order back; only a new purchase needs it unexpired.
fn verified_token(
    app: &App,
    campaign: &Campaign,
    token: Option<&str>,
    user_id: &str,
) -> Result<Option<(u64, i64)>, ApiError> {
    let Some(token) = token else {
        return Ok(None);
    };
    Ok(Some(app.order_tokens.verify_signature(
        token,
        &campaign.config.id,
        user_id,
    )?))
}

/// The answer to an expired order token: the order it names, if that exists.
async fn expired_token_answer(
    app: &App,
    campaign: &Campaign,
    order_id: u64,
    user_id: &str,
) -> Result<Answer, ApiError> {
    match existing_order(app, campaign, order_id, user_id).await? {
        Some(order) => Ok(json(StatusCode::OK, &OrderView::from(&order))),
        None => Err(ApiError::BadOrderToken(OrderTokenError::Expired)),
    }
}

/// The answer when the campaign is not open for sale (stages 6 and 7 refused).
///
/// A retry with an order token may be asking for an order that already exists: it gets
/// that order, not the refusal new purchases get; if Redis cannot tell, a 503 (the
/// refusal would be a wrong final answer). Without a token the local answer stands:
/// that is what keeps sold-out rejections free of Redis.
async fn refusal_answer(
    app: &App,
    campaign: &Campaign,
    token_order: Option<u64>,
    user_id: &str,
    refusal: ApiError,
) -> Result<Answer, ApiError> {
    if let Some(order_id) = token_order
        && let Some(order) = existing_order(app, campaign, order_id, user_id).await?
    {
        return Ok(json(StatusCode::OK, &OrderView::from(&order)));
    }
    Err(refusal)
}

/// The answer for the reservation's outcome; an accepted order goes to the hand-off.
fn outcome_answer(
    app: &App,
    campaign: &Campaign,
    outcome: ReserveOutcome,
) -> Result<Answer, ApiError> {
    match outcome {
        ReserveOutcome::Accepted(order) => {
            let answer = json(StatusCode::ACCEPTED, &OrderView::from(&order));
            app.handoff.submit(order);
            Ok(answer)
        }
        ReserveOutcome::Replayed(order) => Ok(json(StatusCode::OK, &OrderView::from(&order))),
        ReserveOutcome::SoldOut => {
            campaign.mark_sold_out();
            Err(ApiError::SoldOut)
        }
        ReserveOutcome::InsufficientStock { left } => Err(ApiError::InsufficientStock { left }),
        ReserveOutcome::LimitReached { .. } => Err(ApiError::LimitReached {
            limit: campaign.config.per_user_limit,
        }),
        ReserveOutcome::Conflict => Err(ApiError::OrderConflict),
        ReserveOutcome::BadRequest => Err(ApiError::bad_request(
            ErrorCode::InvalidPurchase,
            "purchase refused by the stock service",
        )),
        ReserveOutcome::NotLoaded => Err(ApiError::Unavailable {
            code: ErrorCode::CampaignNotLoaded,
            message: "campaign is not loaded in Redis; an operator must load it",
        }),
    }
}

/// Stages 6 and 7: the window at `now` (Unix ms, the gateway clock's), then the local sold-out
/// mark.
fn open_for_sale(campaign: &Campaign, now: i64) -> Result<(), ApiError> {
    // Retired only once ended, whatever a later config says of its window.
    if campaign.is_retired() {
        return Err(ApiError::Ended);
    }
    campaign.check_window(now)?;
    if campaign.is_marked_sold_out() {
        return Err(ApiError::SoldOut);
    }
    Ok(())
}

/// The caller's order `order_id` in `campaign`, if Redis holds it (one read), or the store
/// once the campaign is retired.
///
/// # Errors
/// 503 when Redis cannot tell: never a definitive refusal for an order that may exist.
async fn existing_order(
    app: &App,
    campaign: &Campaign,
    order_id: u64,
    user_id: &str,
) -> Result<Option<Order>, ApiError> {
    if campaign.is_retired() {
        return retired_order(app, campaign, order_id, user_id).await;
    }
    let mut conn = app.redis.clone();
    let in_redis = flashgate_stock::lookup::owned_order(
        &mut conn,
        campaign.layout.of_order(order_id),
        order_id,
        user_id,
    )
    .await
    .map_err(|e| {
        tracing::warn!(error = %e, "cannot read an order back for a retry");
        ApiError::Unavailable {
            code: ErrorCode::RedisUnavailable,
            message: "stock service unavailable; retry with the same order token",
        }
    })?;
    match in_redis {
        // Retired by another gateway before this one noticed: the store has it. Only ever
        // after the end, so no purchase during the sale waits for the store.
        None if app.clock.now_ms() >= campaign.config.end_ms => {
            retired_order(app, campaign, order_id, user_id).await
        }
        found => Ok(found),
    }
}

/// The caller's order `order_id` of `campaign` as the store holds it, if the campaign is
/// retired.
async fn retired_order(
    app: &App,
    campaign: &Campaign,
    order_id: u64,
    user_id: &str,
) -> Result<Option<Order>, ApiError> {
    Ok(match super::orders::stored_order(app, order_id).await? {
        super::orders::Stored::Retired(order)
            if order.user_id == user_id && order.campaign_id == campaign.config.id =>
        {
            Some(order)
        }
        _ => None,
    })
}
