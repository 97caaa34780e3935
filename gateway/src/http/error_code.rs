//! The vocabulary of `error.code`: every code a client can be answered, as one enum.
//!
//! Codes are stable API (clients branch on them), so they are values of a type rather than
//! strings typed at each refusal: a new code is a new variant, which lands in
//! [`ErrorCode::ALL`], and a test holds `ALL` equal to the codes README.md and
//! docs/openapi.yaml document.

use std::fmt;

/// Declares [`ErrorCode`], its wire strings and [`ErrorCode::ALL`] from one list, so no variant
/// can be left out of `ALL` (and so out of the documentation test).
macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident => $wire:literal,)+) => {
        /// The machine-readable `error.code` of an error answer.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)+
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];

            /// The code as it is written on the wire (and used as the metrics label).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $wire,)+
                }
            }
        }
    };
}

error_codes! {
    // 400
    /// The body is not JSON.
    MalformedJson => "malformed_json",
    /// The body has a field the endpoint does not take.
    UnknownField => "unknown_field",
    /// A field is missing, of the wrong type or out of its range.
    InvalidField => "invalid_field",
    /// The request body could not be read.
    BadBody => "bad_body",
    /// `quantity` is outside 1..=the campaign's `max_quantity`.
    InvalidQuantity => "invalid_quantity",
    /// The stock service refused the purchase's arguments.
    InvalidPurchase => "invalid_purchase",
    /// The order token is malformed, forged or for another user or campaign.
    InvalidOrderToken => "invalid_order_token",
    /// The order token is past its expiry.
    OrderTokenExpired => "order_token_expired",
    /// `limit` is outside 1..=100.
    InvalidLimit => "invalid_limit",
    /// `cursor` is not a `next_cursor` value.
    InvalidCursor => "invalid_cursor",
    /// A query parameter the endpoint does not take.
    UnknownParameter => "unknown_parameter",
    // 401
    /// No bearer token.
    MissingToken => "missing_token",
    /// The bearer token is malformed or its signature is wrong.
    InvalidToken => "invalid_token",
    /// The bearer token is past its expiry.
    TokenExpired => "token_expired",
    /// The payment callback's signature is missing or wrong.
    InvalidSignature => "invalid_signature",
    /// The admin token is missing or wrong.
    InvalidAdminToken => "invalid_admin_token",
    // 403
    /// The campaign's sale has not started.
    NotStarted => "not_started",
    /// The admin API has no token configured.
    AdminDisabled => "admin_disabled",
    // 404
    /// No such campaign.
    UnknownCampaign => "unknown_campaign",
    /// No such order (or not the caller's).
    OrderNotFound => "order_not_found",
    /// No such route.
    NotFound => "not_found",
    // 405
    /// The route does not take this method.
    MethodNotAllowed => "method_not_allowed",
    // 408
    /// The body took longer than `server.request_timeout` to arrive.
    RequestTimeout => "request_timeout",
    // 409
    /// No stock left.
    SoldOut => "sold_out",
    /// Fewer units left than asked for.
    InsufficientStock => "insufficient_stock",
    /// The user's per-campaign limit is reached.
    LimitReached => "limit_reached",
    /// The order id belongs to another purchase.
    OrderConflict => "order_conflict",
    /// The order is paid, expired or past its deadline.
    NotCancellable => "not_cancellable",
    /// The payment's amount is not the order's.
    AmountMismatch => "amount_mismatch",
    /// The payment id was reported for another order or amount.
    PaymentIdReused => "payment_id_reused",
    /// Admin: a live campaign's stock is changed through `/stock`, not the config.
    StockIsLive => "stock_is_live",
    /// Admin: the new total is below the units already taken.
    StockBelowTaken => "stock_below_taken",
    /// Admin: Redis holds more units for sale than the campaign's total.
    StockInconsistent => "stock_inconsistent",
    /// Admin: the campaign is retired and never sells again.
    CampaignRetired => "campaign_retired",
    // 410
    /// The campaign's sale has ended.
    Ended => "ended",
    // 413
    /// The body is larger than allowed.
    BodyTooLarge => "body_too_large",
    // 422
    /// Admin: the config (a reload or an edit) is invalid; nothing changed.
    InvalidConfig => "invalid_config",
    // 429
    /// A rate limit's bucket is empty.
    RateLimited => "rate_limited",
    // 500
    /// The order's data in Redis is malformed; nothing changed.
    OrderCorrupt => "order_corrupt",
    /// A bug or a panic.
    Internal => "internal",
    // 503
    /// The gateway is at its connection limit.
    TooManyConnections => "too_many_connections",
    /// Redis could not be reached or did not answer: this request changed nothing.
    RedisUnavailable => "redis_unavailable",
    /// Redis did not confirm a change (a cancel, a payment, an admin stock change): it may or
    /// may not have been applied; the same request again is safe and answers the truth.
    ChangeUnconfirmed => "change_unconfirmed",
    /// A purchase's reservation may exist; the answer carries its order id and a token.
    OutcomeUnknown => "outcome_unknown",
    /// The campaign's Redis state is refused until an operator rebuilds it (409 on the admin
    /// API's stock change).
    CampaignNeedsRepair => "campaign_needs_repair",
    /// The campaign is not loaded in Redis.
    CampaignNotLoaded => "campaign_not_loaded",
    /// Too many purchases in flight.
    Overloaded => "overloaded",
    /// Order ids cannot be minted: the clock moved back.
    ClockUnavailable => "clock_unavailable",
    /// Order ids cannot be minted: another gateway holds this one's node id.
    NodeIdLost => "node_id_lost",
    /// The order store cannot be read.
    StoreUnavailable => "store_unavailable",
    /// Neither Redis nor the order store could answer an order lookup.
    OrderLookupUnavailable => "order_lookup_unavailable",
    /// This gateway cannot settle that order now.
    OrderNotServed => "order_not_served",
    /// Payment callbacks are off (`auth.payment_secret` is not set).
    PaymentsNotConfigured => "payments_not_configured",
    /// Admin: a reload could not reach Redis or the store; the config in force stays.
    ReloadFailed => "reload_failed",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn doc(relative: &str) -> String {
        let path = format!("{}/../{relative}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn ours() -> BTreeSet<String> {
        ErrorCode::ALL
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect()
    }

    /// The first cell of each row of README's `| code | status | meaning |` table.
    fn in_readme() -> BTreeSet<String> {
        let text = doc("README.md");
        let rows = text
            .lines()
            .skip_while(|l| !l.starts_with("| code | status |"))
            .skip(2)
            .take_while(|l| l.starts_with('|'));
        let mut codes = BTreeSet::new();
        for line in rows {
            let code = line.split('`').nth(1).expect("a row opens with a `code`");
            assert!(codes.insert(code.to_owned()), "{code} is listed twice");
        }
        codes
    }

    /// The `enum` of the `code` property of the `Error` schema in docs/openapi.yaml, one
    /// `- code  # meaning` item a line.
    fn in_openapi() -> BTreeSet<String> {
        let text = doc("docs/openapi.yaml");
        let error = text.find("\n    Error:\n").expect("an Error schema");
        let code = error
            + text[error..]
                .find("\n            code:\n")
                .expect("a code property");
        let items = code + text[code..].find("enum:\n").expect("an enum of codes") + 6;
        let mut codes = BTreeSet::new();
        for line in text[items..].lines() {
            let Some(item) = line.trim_start().strip_prefix("- ") else {
                break;
            };
            let code = item.split_whitespace().next().unwrap_or_default();
            assert!(codes.insert(code.to_owned()), "{code} is listed twice");
        }
        codes
    }

    #[test]
    fn every_code_is_documented_and_every_documented_code_exists() {
        let ours = ours();
        for (name, documented) in [
            ("README.md", in_readme()),
            ("docs/openapi.yaml", in_openapi()),
        ] {
            let missing: Vec<_> = ours.difference(&documented).collect();
            let extra: Vec<_> = documented.difference(&ours).collect();
            assert!(missing.is_empty(), "{name} does not document {missing:?}");
            assert!(
                extra.is_empty(),
                "{name} documents codes that do not exist: {extra:?}"
            );
        }
    }

    #[test]
    fn wire_strings_are_distinct_plain_identifiers() {
        let wire: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            wire.len(),
            ErrorCode::ALL.len(),
            "two codes share a wire string"
        );
        // into_answer writes codes unescaped: they must need no escaping.
        for code in wire {
            assert!(
                !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{code:?}"
            );
        }
    }
}
