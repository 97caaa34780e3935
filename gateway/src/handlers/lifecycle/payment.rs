//! `POST /api/v1/payments/callback`: a payment provider reports a payment, signed; it is
//! decided by the lifecycle script, or by the store for a retired campaign's order.

use bytes::Bytes;
use flashgate_stock::{Order, OrderStatus, PaymentOutcome, Transition, lifecycle};
use hmac::{Hmac, Mac};
use http::{Request, StatusCode, header};
use hyper::body::Body;
use serde::Deserialize;
use sha2::Sha256;

use super::{NOT_SERVED, script_failed, unexpected};
use crate::app::{App, blocking};
use crate::handlers::orders::{NOT_FOUND, Stored, locate, stored_order};
use crate::handlers::views::OrderView;
use crate::http::body::{parse_strict, read_bounded};
use crate::http::{Answer, ApiError, ErrorCode, json};

/// Bytes in an HMAC-SHA256 signature.
const SIGNATURE_LEN: usize = 32;

/// Most bytes a payment callback's body may have, whatever `server.max_body_bytes` allows
/// purchases: a callback is a few hundred bytes, and its body is read (and hashed) before the
/// signature can be checked, so anything larger is refused (413) unread.
const CALLBACK_MAX_BODY: usize = 4096;

/// Longest `payment_id` accepted: providers' ids are a few dozen characters.
const PAYMENT_ID_MAX: usize = 64;

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
    let body = signed_body(app, req).await?;
    let (callback, order_id) = parse_callback(&body)?;
    let decision = match pay_in_redis(app, &callback, order_id).await? {
        Some(decision) => decision,
        // Not in Redis: answered from the store if its campaign is retired (ARCHITECTURE.md §9).
        None => pay_in_store(app, &callback, order_id).await?,
    };
    match decision {
        Decision::InRedis(transition) => answer_payment(app, &callback, order_id, transition, true),
        Decision::InStore(transition) => {
            answer_payment(app, &callback, order_id, transition, false)
        }
        Decision::Unchanged(answer) => Ok(answer),
    }
}

/// Where a payment was decided, or the answer that needed no decision.
enum Decision {
    /// By the lifecycle script in Redis: the new state still has to reach the store.
    InRedis(Transition),
    /// By the store, for an order of a retired campaign: written there already.
    InStore(Transition),
    /// A failed payment: the order as it is.
    Unchanged(Answer),
}

/// The callback's body, once its signature is proven. A missing or malformed signature is
/// refused before the body is read, and a body over [`CALLBACK_MAX_BODY`] is not read at all.
async fn signed_body<B>(app: &App, req: Request<B>) -> Result<Bytes, ApiError>
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
    Ok(body)
}

/// The callback and the order id it names, each field checked.
fn parse_callback(body: &[u8]) -> Result<(PaymentCallback, u64), ApiError> {
    let callback: PaymentCallback = parse_strict(body)?;
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
    Ok((callback, order_id))
}

/// The payment decided by the lifecycle script, or `None` when Redis does not hold the order.
async fn pay_in_redis(
    app: &App,
    callback: &PaymentCallback,
    order_id: u64,
) -> Result<Option<Decision>, ApiError> {
    let Some((campaign, order)) = locate(app, order_id).await? else {
        return Ok(None);
    };
    // Redis' state may be older than the store's: the provider retries once it is
    // repaired.
    campaign.check_repaired()?;
    if let Some(answer) = failed_payment(callback, &order) {
        return Ok(Some(Decision::Unchanged(answer)));
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
    // (answered from the store by `pay_in_store`), or it was never there.
    Ok((!matches!(transition, Transition::NotFound)).then_some(Decision::InRedis(transition)))
}

/// The payment of an order Redis does not hold, decided by the store if its campaign is
/// retired.
async fn pay_in_store(
    app: &App,
    callback: &PaymentCallback,
    order_id: u64,
) -> Result<Decision, ApiError> {
    let order = match stored_order(app, order_id).await? {
        Stored::Retired(order) => order,
        Stored::Missing => return Err(NOT_FOUND),
        // Its campaign is not served here, or its Redis state is gone: the provider
        // must retry rather than be told it does not exist.
        Stored::Elsewhere => return Err(NOT_SERVED),
    };
    if let Some(answer) = failed_payment(callback, &order) {
        return Ok(Decision::Unchanged(answer));
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
    Ok(Decision::InStore(transition))
}

/// The answer for a decided payment. A change decided in Redis (`in_redis`) also goes to the
/// persistence queue; one decided in the store is written there already.
fn answer_payment(
    app: &App,
    callback: &PaymentCallback,
    order_id: u64,
    transition: Transition,
    in_redis: bool,
) -> Result<Answer, ApiError> {
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
