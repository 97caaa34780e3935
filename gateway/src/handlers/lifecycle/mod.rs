//! `POST /api/v1/orders/{id}/cancel` and `POST /api/v1/payments/callback`: the transitions after
//! a reservation. Both run `lua/lifecycle.lua`, where pay, cancel and expiry racing for one
//! order are decided atomically; the new state reaches the store through the journal.
//!
//! # Layout
//! - here: [`cancel`], and the answers both transitions share.
//! - [`payment`]: [`payment_callback`], its signature and its body.

mod payment;

pub use payment::payment_callback;

use flashgate_stock::{Order, OrderStatus, StockError, Transition, lifecycle};
use http::{Request, StatusCode};

use super::identify;
use super::orders::{NOT_FOUND, Stored, locate, stored_order};
use super::views::OrderView;
use crate::app::App;
use crate::http::{Answer, ApiError, ErrorCode, json};
use crate::order_id::{gene_of, shard_gene};

/// A lifecycle script that failed in Redis may have run: the answer says so (not
/// `redis_unavailable`, which promises nothing changed), and a retry is safe because a
/// cancel or a payment again is answered with the order as it now is.
const UNCONFIRMED: ApiError = ApiError::Unavailable {
    code: ErrorCode::ChangeUnconfirmed,
    message: "stock service did not confirm the change; it may have been applied: retry (retries are safe)",
};

/// The answer for a lifecycle script that failed. Malformed data in Redis was refused before
/// any write: it is logged for an operator and answered 500 `order_corrupt`, never as an
/// outage the caller could wait out.
fn script_failed(e: &StockError, campaign: &str, order_id: u64) -> ApiError {
    if e.is_corrupt() {
        tracing::error!(campaign, order_id, error = %e, "order data in Redis is malformed; nothing changed; needs an operator");
        ApiError::CorruptOrder
    } else {
        tracing::debug!(campaign, order_id, error = %e, "lifecycle script failed");
        UNCONFIRMED
    }
}

/// The owner cancels an unpaid order: its stock and the owner's quota return.
///
/// # Errors
/// 401/429 from identity; 404 unknown or someone else's order; 409 `not_cancellable`.
pub async fn cancel<B>(app: &App, req: Request<B>, id: &str) -> Result<Answer, ApiError> {
    let identity = identify(app, &req)?;
    let order_id: u64 = id.parse().map_err(|_| NOT_FOUND)?;
    if gene_of(order_id) != shard_gene(&identity.user_id) {
        return Err(NOT_FOUND);
    }
    let Some((campaign, _)) = locate(app, order_id).await? else {
        return cancel_retired(app, order_id, &identity.user_id).await;
    };
    campaign.check_repaired()?;
    let mut conn = app.redis.clone();
    let transition = lifecycle::cancel(
        &mut conn,
        &app.scripts,
        campaign.layout.of_order(order_id),
        app.clock.now_ms(),
        order_id,
        &identity.user_id,
    )
    .await
    .map_err(|e| script_failed(&e, &campaign.config.id, order_id))?;
    match transition {
        Transition::Cancelled(order) => Ok(changed(app, order)),
        Transition::Unchanged(order) => Ok(json(StatusCode::OK, &OrderView::from(&order))),
        Transition::NotCancellable(_) => Err(ApiError::NotCancellable),
        // Gone since the lookup: retired meanwhile, or never there.
        Transition::NotFound => cancel_retired(app, order_id, &identity.user_id).await,
        Transition::Retiring => Err(NOT_SERVED),
        other => unexpected(&other),
    }
}

/// A cancel of an order Redis does not hold: a retired campaign's orders are final, cancelled
/// already (the same answer again) or not cancellable.
async fn cancel_retired(app: &App, order_id: u64, user_id: &str) -> Result<Answer, ApiError> {
    match stored_order(app, order_id).await? {
        Stored::Retired(order) if order.user_id == user_id => {
            if order.status == OrderStatus::Cancelled {
                Ok(json(StatusCode::OK, &OrderView::from(&order)))
            } else {
                Err(ApiError::NotCancellable)
            }
        }
        _ => Err(NOT_FOUND),
    }
}

const NOT_SERVED: ApiError = ApiError::Unavailable {
    code: ErrorCode::OrderNotServed,
    message: "this gateway cannot settle that order now; retry",
};

/// The answer for a transition that changed the order; the new state also goes to the
/// persistence queue (the journal already holds it, so a full queue loses nothing).
fn changed(app: &App, order: Order) -> Answer {
    let answer = json(StatusCode::OK, &OrderView::from(&order));
    app.handoff.submit(order);
    answer
}

fn unexpected(transition: &Transition) -> Result<Answer, ApiError> {
    tracing::error!(?transition, "lifecycle script answered out of place");
    Err(ApiError::Internal)
}
