//! A small HTTP client for tests, and bearer tokens for test users.

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::scenario::{JWT_SECRET, PAYMENT_SECRET};

/// Hex HMAC-SHA256 of `body` under `secret`: the payment provider's signature.
pub fn sign_hex(secret: &[u8], body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A bearer token for `user_id`, valid for an hour.
pub fn token_for(user_id: &str) -> String {
    token_expiring(user_id, flashgate::clock::now_s() + 3600)
}

pub fn token_expiring(user_id: &str, exp_s: i64) -> String {
    flashgate::auth::jwt::sign(JWT_SECRET.as_bytes(), user_id, exp_s)
}

/// One answer, read whole.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    /// `error.code` of an error answer ("" otherwise).
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    pub fn order_id(&self) -> &str {
        self.body["order_id"].as_str().unwrap_or_default()
    }
}

/// A keep-alive client bound to one gateway.
#[derive(Clone)]
pub struct Client {
    base: String,
    inner: HyperClient<HttpConnector, Full<Bytes>>,
}

impl Client {
    pub fn new(addr: std::net::SocketAddr) -> Self {
        Self {
            base: format!("http://{addr}"),
            inner: HyperClient::builder(TokioExecutor::new())
                .pool_max_idle_per_host(256)
                .build_http(),
        }
    }

    /// Sends a request; `Err` only when no HTTP answer came back (connection refused, reset).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: impl Into<Bytes>,
    ) -> Result<Reply, String> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let req = req
            .body(Full::new(body.into()))
            .map_err(|e| e.to_string())?;
        let res = self
            .inner
            .request(req)
            .await
            .map_err(|e| with_sources(&e))?;
        let (parts, body) = res.into_parts();
        let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// `POST /api/v1/orders` as `user_id`.
    pub async fn purchase(&self, user_id: &str, body: Value) -> Result<Reply, String> {
        self.send(
            Method::POST,
            "/api/v1/orders",
            Some(&token_for(user_id)),
            body.to_string(),
        )
        .await
    }

    /// `POST /api/v1/payments/callback`, signed as the payment provider signs it.
    pub async fn pay(&self, order_id: &str, amount_cents: i64, status: &str) -> Reply {
        self.pay_with(&format!("pay-{order_id}"), order_id, amount_cents, status)
            .await
    }

    /// A payment callback with its own payment id.
    pub async fn pay_with(
        &self,
        payment_id: &str,
        order_id: &str,
        amount_cents: i64,
        status: &str,
    ) -> Reply {
        let body = serde_json::json!({
            "order_id": order_id,
            "payment_id": payment_id,
            "amount_cents": amount_cents,
            "status": status,
        })
        .to_string();
        self.signed_callback(
            body.clone(),
            &sign_hex(PAYMENT_SECRET.as_bytes(), body.as_bytes()),
        )
        .await
    }

    /// A callback with the signature given (tests of bad signatures).
    pub async fn signed_callback(&self, body: String, signature: &str) -> Reply {
        let req = Request::builder()
            .method(Method::POST)
            .uri(format!("{}/api/v1/payments/callback", self.base))
            .header("content-type", "application/json")
            .header("x-signature", signature)
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let res = self.inner.request(req).await.unwrap();
        let (parts, body) = res.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    /// `POST /api/v1/campaigns/{campaign}/order-tokens` as `user_id`: the issued
    /// `{order_id, token, …}`.
    pub async fn order_token(&self, user_id: &str, campaign: &str) -> Value {
        let r = self
            .send(
                Method::POST,
                &format!("/api/v1/campaigns/{campaign}/order-tokens"),
                Some(&token_for(user_id)),
                Bytes::new(),
            )
            .await
            .unwrap();
        assert_eq!(r.status, http::StatusCode::CREATED, "{}", r.body);
        r.body
    }

    /// Purchases as `user_id` until one is accepted (202), failing the test after `patience`.
    pub async fn eventually_buys(
        &self,
        user_id: &str,
        campaign: &str,
        patience: std::time::Duration,
    ) {
        crate::eventually(
            patience,
            &format!("{user_id} buys from {campaign}"),
            || async {
                self.purchase(user_id, serde_json::json!({ "campaign_id": campaign }))
                    .await
                    .is_ok_and(|r| r.status == http::StatusCode::ACCEPTED)
            },
        )
        .await;
    }

    /// `POST /api/v1/orders/{id}/cancel` as `user_id`.
    pub async fn cancel(&self, user_id: &str, order_id: &str) -> Reply {
        self.send(
            Method::POST,
            &format!("/api/v1/orders/{order_id}/cancel"),
            Some(&token_for(user_id)),
            Bytes::new(),
        )
        .await
        .unwrap()
    }

    pub async fn get(&self, path: &str, user_id: Option<&str>) -> Reply {
        let token = user_id.map(token_for);
        self.send(Method::GET, path, token.as_deref(), Bytes::new())
            .await
            .unwrap()
    }
}

/// `GET /metrics` from an admin listener, over a plain HTTP/1.1 connection: the exposition text.
pub async fn metrics_text(admin: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(admin).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: admin\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap()
}

/// Every sample of a `/metrics` scrape, by `name{labels}`.
pub async fn metrics_series(admin: &str) -> std::collections::HashMap<String, f64> {
    metrics_text(admin)
        .await
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// `error` and each of its sources: a transport failure says which (refused, reset, closed by
/// the server), not only hyper-util's "client error (SendRequest)".
fn with_sources(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
