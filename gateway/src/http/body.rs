//! Reading request bodies: bounded, then strict JSON.

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Body;
use serde::Deserialize;

use super::{ApiError, ErrorCode};

/// The whole body, refusing more than `limit` bytes (413) before reading it when the
/// `Content-Length` says so, and while reading when it does not, and one that takes longer
/// than `patience` to arrive (408: a client trickling its body holds a connection for
/// nothing). Only the body is timed, never the work after it: a purchase that reached Redis
/// is never cut off half way.
///
/// # Errors
/// 413 past the limit; 408 too slow; 400 when the body cannot be read.
pub async fn read_bounded<B>(
    body: B,
    content_length: Option<u64>,
    limit: usize,
    patience: std::time::Duration,
) -> Result<Bytes, ApiError>
where
    B: Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    if content_length.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let Ok(read) = tokio::time::timeout(patience, Limited::new(body, limit).collect()).await else {
        return Err(ApiError::RequestTimeout);
    };
    match read {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::PayloadTooLarge { limit })
        }
        Err(_) => Err(ApiError::bad_request(
            ErrorCode::BadBody,
            "request body could not be read",
        )),
    }
}

/// `bytes` as `T`, whose serde definition denies unknown fields; the error names the field.
///
/// # Errors
/// 400 `malformed_json` for syntax, `unknown_field` for a field `T` does not have,
/// `invalid_field` for a wrong type or a missing field.
pub fn parse_strict<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let message = e.to_string();
        let code = match e.classify() {
            serde_json::error::Category::Data if message.starts_with("unknown field") => {
                ErrorCode::UnknownField
            }
            serde_json::error::Category::Data => ErrorCode::InvalidField,
            _ => ErrorCode::MalformedJson,
        };
        ApiError::bad_request(code, message)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http_body_util::Full;

    const PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Req {
        campaign_id: String,
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_refused() {
        let big = Full::new(Bytes::from(vec![b'x'; 100]));
        let err = read_bounded(big, None, 10, PATIENCE).await.unwrap_err();
        assert_eq!(err, ApiError::PayloadTooLarge { limit: 10 });
        let declared = Full::new(Bytes::new());
        assert!(
            read_bounded(declared, Some(11), 10, PATIENCE)
                .await
                .is_err()
        );
        let small = Full::new(Bytes::from_static(b"{}"));
        assert_eq!(
            read_bounded(small, Some(2), 10, PATIENCE).await.unwrap(),
            "{}"
        );
    }

    #[test]
    fn json_errors_say_what_was_wrong() {
        let e = parse_strict::<Req>(br#"{"campaign_id":"a","x":1}"#).unwrap_err();
        assert_eq!(e.code(), ErrorCode::UnknownField);
        assert!(e.to_string().contains("`x`"), "{e}");
        assert_eq!(
            parse_strict::<Req>(b"{").unwrap_err().code(),
            ErrorCode::MalformedJson
        );
        assert_eq!(
            parse_strict::<Req>(b"{}").unwrap_err().code(),
            ErrorCode::InvalidField
        );
        assert_eq!(
            parse_strict::<Req>(br#"{"campaign_id":1}"#)
                .unwrap_err()
                .code(),
            ErrorCode::InvalidField
        );
    }
}
