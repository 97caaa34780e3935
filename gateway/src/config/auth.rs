//! `[auth]`: the keys that verify callers and sign order tokens, and how long a token lives.

use std::time::Duration;

use super::checks::Errors;
use super::raw::RawAuth;
use super::secret::{Secret, optional_secret, secret};

/// Environment variable that overrides `auth.jwt_secret`, so deployments keep it out of files.
pub const ENV_JWT_SECRET: &str = "FLASHGATE_JWT_SECRET";
/// Environment variable that overrides `auth.order_token_secret`.
pub const ENV_ORDER_TOKEN_SECRET: &str = "FLASHGATE_ORDER_TOKEN_SECRET";
/// Environment variable that overrides `auth.payment_secret`.
pub const ENV_PAYMENT_SECRET: &str = "FLASHGATE_PAYMENT_SECRET";

/// `[auth]`: secrets and token lifetimes.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthConfig {
    /// HMAC key for verifying user JWTs.
    pub jwt_secret: Secret,
    /// HMAC key for signing the order tokens handed to the payment step.
    pub order_token_secret: Secret,
    /// How long an order token stays valid (default 10m).
    pub order_token_ttl: Duration,
    /// HMAC-SHA256 key the payment provider signs its callbacks with; without it the payment
    /// callback endpoint is off (no unsigned callback is ever accepted).
    pub payment_secret: Option<Secret>,
}

pub(super) fn auth(e: &mut Errors, a: RawAuth, env: &dyn Fn(&str) -> Option<String>) -> AuthConfig {
    AuthConfig {
        jwt_secret: secret(
            e,
            "auth.jwt_secret",
            ENV_JWT_SECRET,
            a.jwt_secret,
            a.jwt_secret_file,
            env,
        ),
        order_token_secret: secret(
            e,
            "auth.order_token_secret",
            ENV_ORDER_TOKEN_SECRET,
            a.order_token_secret,
            a.order_token_secret_file,
            env,
        ),
        order_token_ttl: e.duration(
            "auth.order_token_ttl",
            a.order_token_ttl.as_deref(),
            Duration::from_secs(600),
            Duration::from_secs(1),
        ),
        payment_secret: optional_secret(
            e,
            "auth.payment_secret",
            ENV_PAYMENT_SECRET,
            a.payment_secret,
            a.payment_secret_file,
            env,
        ),
    }
}
