//! The gateway's API requests, serialised ahead of a run: users' bearer tokens minted and
//! payment callbacks signed before the clock starts.

use bytes::Bytes;
use hmac::{Hmac, Mac as _};
use serde_json::json;

use crate::wire;

/// Mints users' bearer tokens with the gateway's JWT secret.
#[derive(Debug, Clone)]
pub struct Users {
    secret: Vec<u8>,
    prefix: String,
    exp_s: i64,
}

impl Users {
    pub fn new(secret: &str, prefix: &str) -> Self {
        Self {
            secret: secret.as_bytes().to_vec(),
            prefix: prefix.to_owned(),
            exp_s: flashgate::clock::now_s() + 86_400,
        }
    }

    pub fn id(&self, n: u64) -> String {
        format!("{}{n}", self.prefix)
    }

    /// The `Authorization` header value for user `n`.
    pub fn bearer(&self, n: u64) -> String {
        let token = flashgate::auth::jwt::sign(&self.secret, &self.id(n), self.exp_s);
        format!("Bearer {token}")
    }
}

/// `POST /api/v1/orders`, with an order token when the purchase must be retry-safe.
pub fn purchase(bearer: &str, campaign: &str, order_token: Option<&str>) -> Bytes {
    let body = match order_token {
        Some(token) => json!({ "campaign_id": campaign, "token": token }),
        None => json!({ "campaign_id": campaign }),
    };
    post("/api/v1/orders", Some(bearer), &body)
}

/// `POST /api/v1/campaigns/{id}/order-tokens`.
pub fn order_token(bearer: &str, campaign: &str) -> Bytes {
    wire::request(
        "POST",
        &format!("/api/v1/campaigns/{campaign}/order-tokens"),
        Some(bearer),
        &[],
        b"",
    )
}

/// `GET /api/v1/orders/{id}`.
pub fn read(bearer: &str, order_id: &str) -> Bytes {
    wire::request(
        "GET",
        &format!("/api/v1/orders/{order_id}"),
        Some(bearer),
        &[],
        b"",
    )
}

/// `POST /api/v1/orders/{id}/cancel`.
pub fn cancel(bearer: &str, order_id: &str) -> Bytes {
    wire::request(
        "POST",
        &format!("/api/v1/orders/{order_id}/cancel"),
        Some(bearer),
        &[],
        b"",
    )
}

/// `POST /api/v1/payments/callback`, signed as the payment provider signs it.
pub fn pay(payment_secret: &[u8], order_id: &str, payment_id: &str, amount_cents: u64) -> Bytes {
    let body = json!({
        "order_id": order_id, "payment_id": payment_id,
        "amount_cents": amount_cents, "status": "succeeded",
    })
    .to_string();
    let signature = match Hmac::<sha2::Sha256>::new_from_slice(payment_secret) {
        Ok(mut mac) => {
            mac.update(body.as_bytes());
            hex(&mac.finalize().into_bytes())
        }
        Err(e) => unreachable!("HMAC takes keys of any length: {e}"),
    };
    wire::request(
        "POST",
        "/api/v1/payments/callback",
        None,
        &[("x-signature", &signature)],
        body.as_bytes(),
    )
}

/// Requests a client gets wrong, one of each kind, each with its expected status.
pub fn invalid(bearer: &str, campaign: &str) -> Vec<(Bytes, u16)> {
    vec![
        (
            wire::request(
                "POST",
                "/api/v1/orders",
                Some(bearer),
                &[],
                b"{\"campaign_id\":",
            ),
            400,
        ),
        (
            post(
                "/api/v1/orders",
                Some(bearer),
                &json!({ "campaign_id": campaign, "quantity": 0 }),
            ),
            400,
        ),
        (
            post("/api/v1/orders", None, &json!({ "campaign_id": campaign })),
            401,
        ),
        (
            post(
                "/api/v1/orders",
                Some("Bearer not.a.token"),
                &json!({ "campaign_id": campaign }),
            ),
            401,
        ),
        (
            post(
                "/api/v1/orders",
                Some(bearer),
                &json!({ "campaign_id": "no-such-campaign" }),
            ),
            404,
        ),
    ]
}

fn post(path: &str, bearer: Option<&str>, body: &serde_json::Value) -> Bytes {
    wire::request("POST", path, bearer, &[], body.to_string().as_bytes())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
