//! `POST /api/v1/orders/{id}/cancel` and `POST /api/v1/payments/callback`: the transitions after
//! a reservation. Both run `lua/lifecycle.lua`, where pay, cancel and expiry racing for one
//! order are decided atomically; the new state reaches the store through the journal.

use bytes::Bytes;
use flashgate_stock::{Order, OrderStatus, PaymentOutcome, StockError, Transition, lifecycle};
use hmac::{Hmac, Mac};
use http::{Request, StatusCode, header};
use hyper::body::Body;
use serde::Deserialize;
use sha2::Sha256;

use super::identify;
use super::orders::{NOT_FOUND, Stored, locate, stored_order};
use super::views::OrderView;
use crate::app::{App, blocking};
use crate::http::body::{parse_strict, read_bounded};
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

/// Bytes in an HMAC-SHA256 signature.
const SIGNATURE_LEN: usize = 32;

/// Most bytes a payment callback's body may have, whatever `server.max_body_bytes` allows
/// purchases: a callback is a few hundred bytes, and its body is read (and hashed) before the
/// signature can be checked, so anything larger is refused (413) unread.
const CALLBACK_MAX_BODY: usize = 4096;

/// Longest `payment_id` accepted: providers' ids are a few dozen characters.
const PAYMENT_ID_MAX: usize = 64;

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

/// The payment provider's callback body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PaymentCallback {
    /// Decimal string, as the API hands order ids out.
    order_id: String,
    payment_id: String,
    amount_cents: i64,
    /// `succeeded` or `failed`; a failed payment changes nothing.
    status: PaymentStatus,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum PaymentStatus {
    Succeeded,
    Failed,
}

/// A payment provider reports a payment. Authenticated by an HMAC-SHA256 of the raw body under
/// `auth.payment_secret`, hex-encoded in `X-Signature`. Idempotent by payment id: the same
/// payment reported again gets its first answer. Every successful payment is on record, and
/// the answer's `payment_outcome` tells the provider whether it bought the order (`applied`) or
/// must be refunded (`refund_required`: late, a second payment, a cancelled order).
///
/// # Errors
/// 401 `invalid_signature` (a missing or malformed one before the body is read), 413 for a body
/// over [`CALLBACK_MAX_BODY`] (one announced larger is not read), 400 bad body or `payment_id`,
/// 404 unknown order, 409 `amount_mismatch` (on record for refund) or `payment_id_reused`,
/// 500 `order_corrupt`, 503 when payments are not configured, Redis is down, or the order
/// belongs to a campaign this gateway does not serve. (The 429 of its bucket comes before.)
pub async fn payment_callback<B>(app: &App, req: Request<B>) -> Result<Answer, ApiError>
where
    B: Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let Some(secret) = &app.config.auth.payment_secret else {
        return Err(ApiError::Unavailable {
            code: ErrorCode::PaymentsNotConfigured,
            message: "auth.payment_secret is not set: payment callbacks are off",
        });
    };
    let signature = req
        .headers()
        .get("x-signature")
        .and_then(|v| decode_hex(v.as_bytes()))
        .filter(|s| s.len() == SIGNATURE_LEN)
        .ok_or(ApiError::InvalidSignature)?;
    let length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let body: Bytes = read_bounded(
        req.into_body(),
        length,
        CALLBACK_MAX_BODY,
        app.config.server.request_timeout,
    )
    .await?;
    verify_signature(secret.expose().as_bytes(), &body, Some(&signature))?;

    let callback: PaymentCallback = parse_strict(&body)?;
    // Before it is logged or becomes a Redis hash field: a newline or a control character
    // would forge log lines, and a long id would cost memory for the campaign's lifetime.
    if !valid_payment_id(&callback.payment_id) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidField,
            "payment_id must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', ':' and '-'",
        ));
    }
    let order_id: u64 = callback.order_id.parse().map_err(|_| {
        ApiError::bad_request(ErrorCode::InvalidField, "order_id must be a decimal string")
    })?;
    let from_redis = match locate(app, order_id).await? {
        Some((campaign, order)) => {
            // Redis' state may be older than the store's: the provider retries once it is
            // repaired.
            campaign.check_repaired()?;
            if let Some(answer) = failed_payment(&callback, &order) {
                return Ok(answer);
            }
            let mut conn = app.redis.clone();
            let transition = lifecycle::pay(
                &mut conn,
                &app.scripts,
                campaign.layout.of_order(order_id),
                app.clock.now_ms(),
                order_id,
                callback.amount_cents,
                &callback.payment_id,
            )
            .await
            .map_err(|e| script_failed(&e, &campaign.config.id, order_id))?;
            // Gone between the lookup and the payment: its campaign was retired meanwhile
            // (answered from the store below), or it was never there.
            (!matches!(transition, Transition::NotFound)).then_some(transition)
        }
        None => None,
    };
    let (transition, in_redis) = match from_redis {
        Some(transition) => (transition, true),
        // Not in Redis: answered from the store if its campaign is retired (ARCHITECTURE.md §9).
        None => {
            let order = match stored_order(app, order_id).await? {
                Stored::Retired(order) => order,
                Stored::Missing => return Err(NOT_FOUND),
                // Its campaign is not served here, or its Redis state is gone: the provider
                // must retry rather than be told it does not exist.
                Stored::Elsewhere => return Err(NOT_SERVED),
            };
            if let Some(answer) = failed_payment(&callback, &order) {
                return Ok(answer);
            }
            let (payment_id, amount) = (callback.payment_id.clone(), callback.amount_cents);
            let now = app.clock.now_ms();
            let transition = blocking(&app.store, move |s| {
                crate::retirement::payments::decide(s, order, &payment_id, amount, now)
            })
            .await
            .map_err(|e| {
                tracing::warn!(order_id, error = %e, "payment of a retired campaign's order: store unavailable");
                NOT_SERVED
            })?;
            (transition, false)
        }
    };
    let payment_id = &callback.payment_id;
    match transition {
        Transition::Paid(order) => {
            app.handoff.submit(order.clone());
            Ok(paid_answer(&order, payment_id, "applied"))
        }
        Transition::RefundRequired(order) => {
            tracing::warn!(order_id, %payment_id, "late payment: refund required");
            // Decided in the store, it is written there already.
            if in_redis {
                app.handoff.submit(order.clone());
            }
            Ok(paid_answer(&order, payment_id, "refund_required"))
        }
        Transition::DuplicatePayment(order) => {
            tracing::warn!(order_id, %payment_id, "second payment of a settled order: refund required");
            Ok(paid_answer(&order, payment_id, "refund_required"))
        }
        Transition::Repeated(_, PaymentOutcome::AmountMismatch) | Transition::AmountMismatch(_) => {
            tracing::warn!(order_id, %payment_id, amount = callback.amount_cents, "payment amount mismatch: refund required");
            Err(ApiError::AmountMismatch)
        }
        // "applied" only ever describes a paid order (the script re-decides a payment whose
        // effect Redis lost, so this guard is for what it cannot know).
        Transition::Repeated(order, PaymentOutcome::Paid) if order.status == OrderStatus::Paid => {
            Ok(paid_answer(&order, payment_id, "applied"))
        }
        Transition::PaymentIdReused(order) => {
            tracing::warn!(order_id, %payment_id, status = %order.status, "payment id already reported for another order or amount: refused");
            Err(ApiError::PaymentIdReused)
        }
        Transition::Repeated(order, PaymentOutcome::RefundRequired) => {
            Ok(paid_answer(&order, payment_id, "refund_required"))
        }
        Transition::NotFound => Err(NOT_FOUND),
        // Fenced for retirement: answered from the store once it is retired, moments later.
        Transition::Retiring => Err(NOT_SERVED),
        other => unexpected(&other),
    }
}

/// The answer to a failed payment, which changes nothing: the order as it is.
fn failed_payment(callback: &PaymentCallback, order: &Order) -> Option<Answer> {
    (callback.status == PaymentStatus::Failed).then(|| {
        tracing::info!(order_id = order.order_id, payment_id = %callback.payment_id, "payment failed; order unchanged");
        paid_answer(order, &callback.payment_id, "none")
    })
}

/// The order as it now is, and what this payment did.
fn paid_answer(order: &Order, payment_id: &str, outcome: &'static str) -> Answer {
    #[derive(serde::Serialize)]
    struct PaymentAnswer<'a> {
        #[serde(flatten)]
        order: OrderView<'a>,
        payment_id: &'a str,
        payment_outcome: &'static str,
    }
    json(
        StatusCode::OK,
        &PaymentAnswer {
            order: OrderView::from(order),
            payment_id,
            payment_outcome: outcome,
        },
    )
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

/// Whether `id` is 1..=[`PAYMENT_ID_MAX`] characters of `[A-Za-z0-9_.:-]`: every provider id
/// format seen fits, and nothing in it can break a log line or a Redis record.
fn valid_payment_id(id: &str) -> bool {
    (1..=PAYMENT_ID_MAX).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

fn verify_signature(secret: &[u8], body: &[u8], signature: Option<&[u8]>) -> Result<(), ApiError> {
    let signature = signature.ok_or(ApiError::InvalidSignature)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| ApiError::InvalidSignature)?;
    mac.update(body);
    mac.verify_slice(signature)
        .map_err(|_| ApiError::InvalidSignature)
}

fn decode_hex(text: &[u8]) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16);
    text.chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => u8::try_from(digit(*hi)? * 16 + digit(*lo)?).ok(),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_checked_over_the_raw_body() {
        let body = br#"{"order_id":"1"}"#;
        let mut mac = Hmac::<Sha256>::new_from_slice(b"k").unwrap();
        mac.update(body);
        let good = mac.finalize().into_bytes().to_vec();
        assert!(verify_signature(b"k", body, Some(&good)).is_ok());
        assert_eq!(
            verify_signature(b"k", b"{}", Some(&good)),
            Err(ApiError::InvalidSignature)
        );
        assert_eq!(
            verify_signature(b"k", body, None),
            Err(ApiError::InvalidSignature)
        );
        assert_eq!(decode_hex(b"0aff"), Some(vec![10, 255]));
        assert_eq!(decode_hex(b"0g"), None);
        assert_eq!(decode_hex(b"abc"), None);
    }

    #[test]
    fn payment_ids_are_short_plain_tokens() {
        for good in [
            "p-1",
            "pi_3MtwBwLkdIwHu7ix28a3tqPa",
            "a:b.c",
            &"x".repeat(64),
        ] {
            assert!(valid_payment_id(good), "{good}");
        }
        for bad in [
            "",
            "p\n1",
            "p\r",
            "p 1",
            "p\u{0}",
            "p\u{1b}[2K",
            "é",
            &"x".repeat(65),
        ] {
            assert!(!valid_payment_id(bad), "{bad:?}");
        }
    }
}
