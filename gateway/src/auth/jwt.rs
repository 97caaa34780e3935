//! HS256 bearer tokens.
//!
//! Verification runs on every request, ahead of everything but the IP limits, so it is a
//! purpose-built HS256-only check: one keyed HMAC cloned per call, constant-time comparison, and
//! a two-field claims parse. Accepting only HS256 closes the classic `alg: none` / algorithm
//! confusion holes by construction. Tests cross-check it against the `jsonwebtoken` crate.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::ids::is_key_safe;

type HmacSha256 = Hmac<Sha256>;

/// Why a request has no usable identity: each maps to 401 with its own code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("malformed bearer token")]
    Malformed,
    #[error("bad token signature")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token subject is not a valid user id")]
    BadSubject,
}

/// The caller, as the token vouches for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: String,
}

#[derive(Deserialize)]
struct Header<'a> {
    alg: &'a str,
}

#[derive(Deserialize)]
struct Claims<'a> {
    #[serde(borrow)]
    sub: std::borrow::Cow<'a, str>,
    exp: i64,
}

/// `{"alg":"HS256","typ":"JWT"}`, the header nearly every issuer sends: recognised without
/// decoding it.
const CANONICAL_HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// Largest claims segment decoded, in bytes (on the stack): room for the claim sets identity
/// providers send, not only our user id and expiry.
const MAX_CLAIMS: usize = 4096;

/// Verifies bearer tokens signed with the configured secret.
#[derive(Clone)]
pub struct JwtVerifier {
    mac: HmacSha256,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtVerifier(***)")
    }
}

impl JwtVerifier {
    pub fn new(secret: &[u8]) -> Self {
        Self { mac: keyed(secret) }
    }

    /// Checks the `Authorization` header value and returns who it names.
    ///
    /// # Errors
    /// Missing or non-bearer header, malformed token, wrong algorithm or signature, expiry at or
    /// before `now_s`, or a subject that is not a key-safe user id.
    pub fn verify_header(&self, header: Option<&[u8]>, now_s: i64) -> Result<Identity, AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        let token = header
            .strip_prefix(b"Bearer ")
            .or_else(|| header.strip_prefix(b"bearer "))
            .ok_or(AuthError::Missing)?;
        let token = std::str::from_utf8(token).map_err(|_| AuthError::Malformed)?;
        self.verify(token.trim(), now_s)
    }

    /// Checks one token.
    ///
    /// # Errors
    /// As [`Self::verify_header`].
    pub fn verify(&self, token: &str, now_s: i64) -> Result<Identity, AuthError> {
        let (signed, signature) = token.rsplit_once('.').ok_or(AuthError::Malformed)?;
        let (header, payload) = signed.split_once('.').ok_or(AuthError::Malformed)?;

        if header != CANONICAL_HEADER {
            let header = URL_SAFE_NO_PAD
                .decode(header)
                .map_err(|_| AuthError::Malformed)?;
            let header: Header<'_> =
                serde_json::from_slice(&header).map_err(|_| AuthError::Malformed)?;
            if header.alg != "HS256" {
                return Err(AuthError::BadSignature);
            }
        }

        let mut sig = [0u8; 32];
        let len = URL_SAFE_NO_PAD
            .decode_slice(signature, &mut sig)
            .map_err(|_| AuthError::Malformed)?;
        let mut mac = self.mac.clone();
        mac.update(signed.as_bytes());
        mac.verify_slice(&sig[..len])
            .map_err(|_| AuthError::BadSignature)?;

        let mut claims = [0u8; MAX_CLAIMS];
        let len = URL_SAFE_NO_PAD
            .decode_slice(payload, &mut claims)
            .map_err(|_| AuthError::Malformed)?;
        let claims: Claims<'_> =
            serde_json::from_slice(&claims[..len]).map_err(|_| AuthError::Malformed)?;
        if claims.exp <= now_s {
            return Err(AuthError::Expired);
        }
        if !is_key_safe(&claims.sub) {
            return Err(AuthError::BadSubject);
        }
        Ok(Identity {
            user_id: claims.sub.into_owned(),
        })
    }
}

fn keyed(secret: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; the error case does not exist for it.
    match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    }
}

/// Signs a token for `user_id` expiring at `exp_s` (Unix seconds): for the bench tool, tests and
/// operators minting test identities. Production identities come from the shop's auth service.
pub fn sign(secret: &[u8], user_id: &str, exp_s: i64) -> String {
    let claims = serde_json::json!({ "sub": user_id, "exp": exp_s });
    let signed = format!(
        "{CANONICAL_HEADER}.{}",
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut mac = keyed(secret);
    mac.update(signed.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signed}.{sig}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use jsonwebtoken::{Algorithm, EncodingKey, Header as JwtHeader, encode};

    const SECRET: &[u8] = b"a-test-secret-of-some-length";
    const NOW: i64 = 1_800_000_000;

    fn foreign(alg: Algorithm, secret: &[u8], sub: &str, exp: i64) -> String {
        let claims = serde_json::json!({ "sub": sub, "exp": exp, "iat": NOW });
        encode(
            &JwtHeader::new(alg),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    #[test]
    fn accepts_tokens_from_an_independent_implementation() {
        let verifier = JwtVerifier::new(SECRET);
        let token = foreign(Algorithm::HS256, SECRET, "user-1", NOW + 60);
        assert_eq!(verifier.verify(&token, NOW).unwrap().user_id, "user-1");
        let header = format!("Bearer {token}");
        let id = verifier
            .verify_header(Some(header.as_bytes()), NOW)
            .unwrap();
        assert_eq!(id.user_id, "user-1");
    }

    #[test]
    fn our_signature_is_what_jsonwebtoken_verifies() {
        let token = sign(SECRET, "u9", NOW + 60);
        let mut validation = jsonwebtoken::Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        let decoded = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &jsonwebtoken::DecodingKey::from_secret(SECRET),
            &validation,
        )
        .unwrap();
        assert_eq!(decoded.claims["sub"], "u9");
        assert_eq!(
            JwtVerifier::new(SECRET)
                .verify(&token, NOW)
                .unwrap()
                .user_id,
            "u9"
        );
    }

    #[test]
    fn rejects_every_kind_of_bad_token() {
        let v = JwtVerifier::new(SECRET);
        assert_eq!(v.verify_header(None, NOW), Err(AuthError::Missing));
        assert_eq!(
            v.verify_header(Some(b"Basic abc"), NOW),
            Err(AuthError::Missing)
        );
        assert_eq!(v.verify("not-a-token", NOW), Err(AuthError::Malformed));
        let other = foreign(Algorithm::HS256, b"another-secret-entirely", "u", NOW + 60);
        assert_eq!(v.verify(&other, NOW), Err(AuthError::BadSignature));
        let hs384 = foreign(Algorithm::HS384, SECRET, "u", NOW + 60);
        assert_eq!(v.verify(&hs384, NOW), Err(AuthError::BadSignature));
        let expired = foreign(Algorithm::HS256, SECRET, "u", NOW - 1);
        assert_eq!(v.verify(&expired, NOW), Err(AuthError::Expired));
        let bad_sub = foreign(Algorithm::HS256, SECRET, "a|b", NOW + 60);
        assert_eq!(v.verify(&bad_sub, NOW), Err(AuthError::BadSubject));
        let mut tampered = sign(SECRET, "u", NOW + 60);
        tampered.insert(40, 'A');
        assert!(v.verify(&tampered, NOW).is_err());
    }
}
