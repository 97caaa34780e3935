//! Every failure a client can see, and the one place each becomes an HTTP answer.
//!
//! Codes are stable API: clients branch on `error.code`, never on the message.

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};

use super::error_code::ErrorCode;
use super::response::{Answer, with_body};
use crate::auth::{AuthError, OrderTokenError};

/// A request that ends in an error answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Malformed or invalid input (400); `code` names what was wrong.
    #[error("{message}")]
    BadRequest { code: ErrorCode, message: String },
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    Unauthorized(AuthError),
    #[error("{0}")]
    BadOrderToken(OrderTokenError),
    /// Unknown campaign, order or route (404).
    #[error("{message}")]
    NotFound {
        code: ErrorCode,
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
        code: ErrorCode,
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
    Conflict { code: ErrorCode, message: String },
    /// The admin API's bearer token is missing or wrong (401); nothing was changed.
    #[error("missing or wrong admin token")]
    AdminUnauthorized,
    /// The admin API is not configured (no `admin.token`): it answers nothing (403).
    #[error("the admin API needs admin.token (or FLASHGATE_ADMIN_TOKEN) to be set")]
    AdminDisabled,
    /// The gateway is at `server.max_connections` (503): the connection is answered without
    /// being read, and closed.
    #[error("the gateway is at its connection limit; retry shortly")]
    TooManyConnections,
    /// A config (a reload) was refused (422); every bad field is named and nothing changed.
    #[error("{}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    InvalidConfig(Vec<crate::config::FieldError>),
}

impl ApiError {
    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
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
            Self::Unavailable { .. } | Self::OutcomeUnknown { .. } | Self::TooManyConnections => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal | Self::CorruptOrder => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest { code, .. }
            | Self::NotFound { code, .. }
            | Self::Unavailable { code, .. }
            | Self::Conflict { code, .. } => *code,
            Self::PayloadTooLarge { .. } => ErrorCode::BodyTooLarge,
            Self::Unauthorized(AuthError::Missing) => ErrorCode::MissingToken,
            Self::Unauthorized(AuthError::Expired) => ErrorCode::TokenExpired,
            Self::Unauthorized(_) => ErrorCode::InvalidToken,
            Self::BadOrderToken(OrderTokenError::Expired) => ErrorCode::OrderTokenExpired,
            Self::BadOrderToken(_) => ErrorCode::InvalidOrderToken,
            Self::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            Self::NotStarted => ErrorCode::NotStarted,
            Self::Ended => ErrorCode::Ended,
            Self::SoldOut => ErrorCode::SoldOut,
            Self::InsufficientStock { .. } => ErrorCode::InsufficientStock,
            Self::LimitReached { .. } => ErrorCode::LimitReached,
            Self::OrderConflict => ErrorCode::OrderConflict,
            Self::NotCancellable => ErrorCode::NotCancellable,
            Self::AmountMismatch => ErrorCode::AmountMismatch,
            Self::PaymentIdReused => ErrorCode::PaymentIdReused,
            Self::CorruptOrder => ErrorCode::OrderCorrupt,
            Self::InvalidSignature => ErrorCode::InvalidSignature,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::OutcomeUnknown { .. } => ErrorCode::OutcomeUnknown,
            Self::Internal => ErrorCode::Internal,
            Self::RequestTimeout => ErrorCode::RequestTimeout,
            Self::AdminUnauthorized => ErrorCode::InvalidAdminToken,
            Self::AdminDisabled => ErrorCode::AdminDisabled,
            Self::InvalidConfig(_) => ErrorCode::InvalidConfig,
            Self::TooManyConnections => ErrorCode::TooManyConnections,
        }
    }

    /// Seconds the client should wait before retrying (`Retry-After`), where a retry can succeed.
    pub fn retry_after_s(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after_s, .. } => Some(*retry_after_s),
            Self::Unavailable { .. } | Self::OutcomeUnknown { .. } | Self::TooManyConnections => {
                Some(1)
            }
            _ => None,
        }
    }

    /// The answer the client gets: `{"error":{"code":…,"message":…}}` plus `Retry-After` where a
    /// retry can succeed.
    pub fn into_answer(self) -> Answer {
        let mut answer = with_body(self.status(), Bytes::from(self.body()));
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

    /// The JSON body alone, for the one answer written without hyper (the connection limit's
    /// refusal in `server.rs`).
    pub fn body(&self) -> Vec<u8> {
        // Written directly: error answers are the sold-out path's whole output, so they skip
        // building a JSON value. Codes are plain identifiers; the message is escaped by serde.
        let mut body = Vec::with_capacity(96);
        body.extend_from_slice(br#"{"error":{"code":""#);
        body.extend_from_slice(self.code().as_str().as_bytes());
        body.extend_from_slice(br#"","message":"#);
        if serde_json::to_writer(&mut body, &self.to_string()).is_err() {
            body.extend_from_slice(br#""""#);
        }
        if let Self::OutcomeUnknown { order_id, token } = self {
            // The token is base64url and the id decimal: nothing to escape.
            body.extend_from_slice(br#","order_id":""#);
            body.extend_from_slice(order_id.to_string().as_bytes());
            body.extend_from_slice(br#"","token":""#);
            body.extend_from_slice(token.as_bytes());
            body.push(b'"');
        }
        body.extend_from_slice(b"}}");
        body
    }

    /// A reservation that got no decision. Refused before Redis or with Redis down, nothing was
    /// recorded (503, retry). With the outcome unknown the answer must carry the purchase's order
    /// id and a token for it, so the retry is this purchase and not a second one: `unsettled`
    /// gives them, and is called only then (minting a token costs an HMAC).
    pub fn reserve_failed(
        error: crate::pipeline::reserve_error::ReserveError,
        unsettled: impl FnOnce() -> (u64, String),
    ) -> Self {
        use crate::pipeline::reserve_error::ReserveError;
        match error {
            ReserveError::Overloaded => Self::Unavailable {
                code: ErrorCode::Overloaded,
                message: "too many purchases in flight; retry shortly",
            },
            ReserveError::Unavailable => Self::Unavailable {
                code: ErrorCode::RedisUnavailable,
                message: "stock service unavailable; nothing was recorded",
            },
            ReserveError::OutcomeUnknown => {
                let (order_id, token) = unsettled();
                Self::OutcomeUnknown { order_id, token }
            }
        }
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

/// The catalog's refusals: unknown is 404, not yet open 403, closed 410 (gone for good), and
/// a campaign under repair 503 (it sells again once rebuilt).
impl From<crate::pipeline::catalog::Refusal> for ApiError {
    fn from(e: crate::pipeline::catalog::Refusal) -> Self {
        use crate::pipeline::catalog::Refusal;
        match e {
            Refusal::Unknown => Self::NotFound {
                code: ErrorCode::UnknownCampaign,
                message: "no such campaign",
            },
            Refusal::NeedsRepair => Self::Unavailable {
                code: ErrorCode::CampaignNeedsRepair,
                message: "this campaign's stock state is being repaired by an operator; retry later",
            },
            Refusal::NotStarted => Self::NotStarted,
            Refusal::Ended => Self::Ended,
        }
    }
}

/// An empty rate-limit bucket is 429 with `Retry-After`.
impl From<crate::pipeline::limits::Limited> for ApiError {
    fn from(e: crate::pipeline::limits::Limited) -> Self {
        Self::RateLimited {
            scope: e.scope,
            retry_after_s: e.retry_after_s,
        }
    }
}

/// A refused reload: an invalid file is the caller's to fix (422), an unreachable Redis or
/// store is worth a retry (503).
impl From<crate::reload::ReloadError> for ApiError {
    fn from(e: crate::reload::ReloadError) -> Self {
        use crate::reload::ReloadError;
        match e {
            ReloadError::Invalid(errors) => Self::InvalidConfig(errors),
            ReloadError::Unreachable => Self::Unavailable {
                code: ErrorCode::ReloadFailed,
                message: "Redis or the store could not be reached: the config in force stays",
            },
            ReloadError::Panicked => Self::Internal,
        }
    }
}

/// The config file could not be read, parsed or written for an admin edit (422): the edit
/// changed nothing, and the file is named as the bad "field".
impl From<crate::admin::config_file::ConfigFileError> for ApiError {
    fn from(e: crate::admin::config_file::ConfigFileError) -> Self {
        Self::InvalidConfig(vec![crate::config::FieldError {
            field: "(config)".into(),
            message: e.to_string(),
        }])
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
                    code: ErrorCode::NodeIdLost,
                    message: "order ids cannot be minted: this gateway's node id is not leased to it",
                }
            }
            _ => Self::Unavailable {
                code: ErrorCode::ClockUnavailable,
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
            code: ErrorCode::RedisUnavailable,
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

    #[test]
    fn the_connection_limit_refusal_is_an_ordinary_error_answer() {
        let refusal = ApiError::TooManyConnections;
        assert_eq!(refusal.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refusal.retry_after_s(), Some(1));
        let body: serde_json::Value = serde_json::from_slice(&refusal.body()).unwrap_or_default();
        assert_eq!(body["error"]["code"], "too_many_connections");
    }

    #[test]
    fn codes_reach_the_wire_unchanged() {
        let answer = ApiError::bad_request(ErrorCode::InvalidCursor, "x").body();
        let body: serde_json::Value = serde_json::from_slice(&answer).unwrap_or_default();
        assert_eq!(body["error"]["code"], ErrorCode::InvalidCursor.as_str());
        assert_eq!(body["error"]["message"], "x");
    }

    #[test]
    fn a_reservation_without_a_decision_asks_for_the_token_only_when_it_may_have_committed() {
        use crate::pipeline::reserve_error::ReserveError;
        let never = || -> (u64, String) { panic!("no token is due when nothing was recorded") };
        for (error, code) in [
            (ReserveError::Overloaded, ErrorCode::Overloaded),
            (ReserveError::Unavailable, ErrorCode::RedisUnavailable),
        ] {
            let refusal = ApiError::reserve_failed(error, never);
            assert_eq!(refusal.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(refusal.code(), code);
        }
        let unknown =
            ApiError::reserve_failed(ReserveError::OutcomeUnknown, || (42, "t.42".to_string()));
        assert_eq!(
            unknown,
            ApiError::OutcomeUnknown {
                order_id: 42,
                token: "t.42".into()
            }
        );
    }
}
