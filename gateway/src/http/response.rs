//! JSON answers.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use serde::Serialize;

/// What every handler returns: a fully buffered answer (all answers are small JSON documents).
pub type Answer = Response<Full<Bytes>>;

/// `value` as a JSON answer with `status`.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Answer {
    match serde_json::to_vec(value) {
        Ok(body) => with_body(status, Bytes::from(body)),
        Err(_) => super::ApiError::Internal.into_answer(),
    }
}

pub(crate) fn with_body(status: StatusCode, body: Bytes) -> Answer {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
