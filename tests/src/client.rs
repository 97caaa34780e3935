//! A small HTTP client for tests, and bearer tokens for test users.

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::scenario::JWT_SECRET;

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
        let res = self.inner.request(req).await.map_err(|e| e.to_string())?;
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

    pub async fn get(&self, path: &str, user_id: Option<&str>) -> Reply {
        let token = user_id.map(token_for);
        self.send(Method::GET, path, token.as_deref(), Bytes::new())
            .await
            .unwrap()
    }
}
