//! Every failure a client can see, and the one place each becomes an HTTP answer.
//!
//! Codes are stable API: clients branch on `error.code`, never on the message.

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};

use super::response::{Answer, with_body};
use crate::auth::{AuthError, OrderTokenError};

/// A request that ends in an error answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Malformed or invalid input (400); `code` names what was wrong.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    Unauthorized(AuthError),
    #[error("{0}")]
    BadOrderToken(OrderTokenError),
    /// Unknown campaign, order or route (404).
    #[error("{message}")]
    NotFound {
        code: &'static str,
        message: &'static str,
    },
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("campaign has not started")]
    NotStarted,
    #[error("campaign has ended")]
    Ended,
    #[error("sold out")]
    SoldOut,
    #[error("only {left} units left")]
    InsufficientStock { left: u64 },
    #[error("per-user limit of {limit} reached")]
    LimitReached { limit: u32 },
    #[error("order id belongs to another purchase")]
    OrderConflict,
    #[error("order is paid, expired or past its payment deadline: it cannot be cancelled")]
    NotCancellable,
    #[error("payment amount does not match the order")]
    AmountMismatch,
    /// A payment id names one payment of one order: reported again for another order or
    /// amount, it is refused (409) and changes nothing.
    #[error("this payment id was already reported for another order or amount; nothing changed")]
    PaymentIdReused,
    /// The order's data in Redis is malformed (500): nothing was changed, an operator must
    /// repair it (the gateway logged it).
    #[error("this order's data is damaged; nothing was changed and the operator has been alerted")]
    CorruptOrder,
    #[error("bad or missing callback signature")]
    InvalidSignature,
    /// A token bucket is empty (429); the client may retry after `retry_after_s`.
    #[error("rate limited ({scope})")]
    RateLimited {
        scope: &'static str,
        retry_after_s: u64,
    },
    /// A dependency is down or the gateway is saturated (503): nothing was recorded.
    #[error("{message}")]
    Unavailable {
        code: &'static str,
        message: &'static str,
    },
    /// Redis did not answer the reservation: it may or may not have been made (503). The
    /// answer carries the purchase's order id and a token for it, so the client's retry with
    /// that token is the same purchase, answered with its real outcome.
    #[error(
        "stock service did not answer; retry with the token in this answer to learn whether the \
         purchase went through"
    )]
    OutcomeUnknown { order_id: u64, token: String },
    #[error("internal error")]
    Internal,
    /// The client took longer than `server.request_timeout` to send its body (408).
    #[error("the request body took too long to arrive")]
    RequestTimeout,
    /// The request conflicts with the state of things (409); `code` says how.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The admin API's bearer token is missing or wrong (401); nothing was changed.
    #[error("missing or wrong admin token")]
    AdminUnauthorized,
    /// The admin API is not configured (no `admin.token`): it answers nothing (403).
    #[error("the admin API needs admin.token (or FLASHGATE_ADMIN_TOKEN) to be set")]
    AdminDisabled,
    /// A config (a reload) was refused (422); every bad field is named and nothing changed.
    #[error("{}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    InvalidConfig(Vec<crate::config::FieldError>),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } | Self::BadOrderToken(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unauthorized(_) | Self::InvalidSignature | Self::AdminUnauthorized => {
                StatusCode::UNAUTHORIZED
            }
            Self::AdminDisabled => StatusCode::FORBIDDEN,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::InvalidConfig(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotStarted => StatusCode::FORBIDDEN,
            Self::Ended => StatusCode::GONE,
            Self::SoldOut
            | Self::InsufficientStock { .. }
            | Self::LimitReached { .. }
            | Self::OrderConflict
            | Self::NotCancellable
            | Self::AmountMismatch
            | Self::PaymentIdReused => StatusCode::CONFLICT,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable { .. } | Self::OutcomeUnknown { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal | Self::CorruptOrder => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. } | Self::NotFound { code, .. } => code,
            Self::Unavailable { code, .. } => code,
            Self::PayloadTooLarge { .. } => "body_too_large",
            Self::Unauthorized(AuthError::Missing) => "missing_token",
            Self::Unauthorized(AuthError::Expired) => "token_expired",
            Self::Unauthorized(_) => "invalid_token",
            Self::BadOrderToken(OrderTokenError::Expired) => "order_token_expired",
            Self::BadOrderToken(_) => "invalid_order_token",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::NotStarted => "not_started",
            Self::Ended => "ended",
            Self::SoldOut => "sold_out",
            Self::InsufficientStock { .. } => "insufficient_stock",
            Self::LimitReached { .. } => "limit_reached",
            Self::OrderConflict => "order_conflict",
            Self::NotCancellable => "not_cancellable",
            Self::AmountMismatch => "amount_mismatch",
            Self::PaymentIdReused => "payment_id_reused",
            Self::CorruptOrder => "order_corrupt",
            Self::InvalidSignature => "invalid_signature",
            Self::RateLimited { .. } => "rate_limited",
            Self::OutcomeUnknown { .. } => "outcome_unknown",
            Self::Internal => "internal",
            Self::Conflict { code, .. } => code,
            Self::RequestTimeout => "request_timeout",
            Self::AdminUnauthorized => "invalid_admin_token",
            Self::AdminDisabled => "admin_disabled",
            Self::InvalidConfig(_) => "invalid_config",
        }
    }

    fn retry_after_s(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after_s, .. } => Some(*retry_after_s),
            Self::Unavailable { .. } | Self::OutcomeUnknown { .. } => Some(1),
            _ => None,
        }
    }

    /// The answer the client gets: `{"error":{"code":…,"message":…}}` plus `Retry-After` where a
    /// retry can succeed.
    pub fn into_answer(self) -> Answer {
        // Written directly: error answers are the sold-out path's whole output, so they skip
        // building a JSON value. Codes are plain identifiers; the message is escaped by serde.
        let mut body = Vec::with_capacity(96);
        body.extend_from_slice(br#"{"error":{"code":""#);
        body.extend_from_slice(self.code().as_bytes());
        body.extend_from_slice(br#"","message":"#);
        if serde_json::to_writer(&mut body, &self.to_string()).is_err() {
            body.extend_from_slice(br#""""#);
        }
        if let Self::OutcomeUnknown { order_id, token } = &self {
            // The token is base64url and the id decimal: nothing to escape.
            body.extend_from_slice(br#","order_id":""#);
            body.extend_from_slice(order_id.to_string().as_bytes());
            body.extend_from_slice(br#"","token":""#);
            body.extend_from_slice(token.as_bytes());
            body.push(b'"');
        }
        body.extend_from_slice(b"}}");
        let mut answer = with_body(self.status(), Bytes::from(body));
        if let Some(seconds) = self.retry_after_s() {
            answer
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self == Self::MethodNotAllowed {
            answer
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
        }
        answer
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        Self::Unauthorized(e)
    }
}

impl From<OrderTokenError> for ApiError {
    fn from(e: OrderTokenError) -> Self {
        Self::BadOrderToken(e)
    }
}

/// No order id could be minted: either the clock (it moved back, or is out of range) or the
/// node id's lease (another gateway holds it now). Both pass; the client retries later.
impl From<crate::order_id::OrderIdError> for ApiError {
    fn from(e: crate::order_id::OrderIdError) -> Self {
        use crate::order_id::OrderIdError;
        tracing::error!(error = %e, "cannot mint order ids");
        match e {
            OrderIdError::LeaseLost { .. } | OrderIdError::PastLeaseMark { .. } => {
                Self::Unavailable {
                    code: "node_id_lost",
                    message: "order ids cannot be minted: this gateway's node id is not leased to it",
                }
            }
            _ => Self::Unavailable {
                code: "clock_unavailable",
                message: "order ids cannot be minted: the clock moved back",
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_and_outages_tell_when_to_retry() {
        let limited = ApiError::RateLimited {
            scope: "ip",
            retry_after_s: 3,
        }
        .into_answer();
        assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(limited.headers()[header::RETRY_AFTER], "3");
        let down = ApiError::Unavailable {
            code: "redis_unavailable",
            message: "x",
        }
        .into_answer();
        assert_eq!(down.headers()[header::RETRY_AFTER], "1");
        assert!(
            ApiError::SoldOut
                .into_answer()
                .headers()
                .get(header::RETRY_AFTER)
                .is_none()
        );
    }
}
