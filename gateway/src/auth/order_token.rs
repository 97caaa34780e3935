//! Order tokens: an order id pre-issued to one user for one campaign, signed, stateless.
//!
//! A client fetches a token before the sale and submits with it; any retry of that submit carries
//! the same order id, so the reserve script recognises it and answers with the original order.
//! Issuing one writes nothing anywhere: the HMAC binds the id to the user, the campaign and an
//! expiry, and only this gateway's secret can produce it.
//!
//! Format: `<order_id>.<expires_unix_s>.<base64url HMAC-SHA256>`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why an order token cannot be used: a 400 for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OrderTokenError {
    #[error("malformed order token")]
    Malformed,
    #[error("order token not valid for this user and campaign")]
    BadSignature,
    #[error("order token expired")]
    Expired,
}

/// Issues and checks order tokens with one secret.
#[derive(Clone)]
pub struct OrderTokens {
    mac: HmacSha256,
}

impl std::fmt::Debug for OrderTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OrderTokens(***)")
    }
}

impl OrderTokens {
    pub fn new(secret: &[u8]) -> Self {
        let mac = match HmacSha256::new_from_slice(secret) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of every length"),
        };
        Self { mac }
    }

    fn mac_over(
        &self,
        order_id: u64,
        expires_s: i64,
        campaign_id: &str,
        user_id: &str,
    ) -> HmacSha256 {
        let mut mac = self.mac.clone();
        // Separators cannot occur inside key-safe ids, so no two inputs sign the same bytes.
        mac.update(format!("ot1|{order_id}|{expires_s}|{campaign_id}|{user_id}").as_bytes());
        mac
    }

    /// A token for `order_id`, usable only by `user_id` on `campaign_id` until `expires_s`.
    pub fn issue(&self, order_id: u64, expires_s: i64, campaign_id: &str, user_id: &str) -> String {
        let sig = self
            .mac_over(order_id, expires_s, campaign_id, user_id)
            .finalize()
            .into_bytes();
        format!("{order_id}.{expires_s}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    /// The order id the token carries, if it was issued to this user for this campaign.
    ///
    /// # Errors
    /// Malformed, signed for someone or something else, or expired at `now_s`.
    pub fn verify(
        &self,
        token: &str,
        campaign_id: &str,
        user_id: &str,
        now_s: i64,
    ) -> Result<u64, OrderTokenError> {
        match self.verify_signature(token, campaign_id, user_id)? {
            (_, expires_s) if expires_s <= now_s => Err(OrderTokenError::Expired),
            (order_id, _) => Ok(order_id),
        }
    }

    /// The order id the token carries and when it expires, if it was issued to this user for
    /// this campaign, expired or not. An expired token still proves whose order it names: a
    /// retry may read that order back; only a new purchase needs a token still valid.
    ///
    /// # Errors
    /// Malformed, or signed for someone or something else.
    pub fn verify_signature(
        &self,
        token: &str,
        campaign_id: &str,
        user_id: &str,
    ) -> Result<(u64, i64), OrderTokenError> {
        let mut parts = token.splitn(3, '.');
        let (Some(id), Some(expires), Some(sig)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(OrderTokenError::Malformed);
        };
        let order_id: u64 = id.parse().map_err(|_| OrderTokenError::Malformed)?;
        let expires_s: i64 = expires.parse().map_err(|_| OrderTokenError::Malformed)?;
        let mut given = [0u8; 32];
        let len = URL_SAFE_NO_PAD
            .decode_slice(sig, &mut given)
            .map_err(|_| OrderTokenError::Malformed)?;
        self.mac_over(order_id, expires_s, campaign_id, user_id)
            .verify_slice(&given[..len])
            .map_err(|_| OrderTokenError::BadSignature)?;
        Ok((order_id, expires_s))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_token_works_only_for_its_user_campaign_and_time() {
        let tokens = OrderTokens::new(b"order-token-secret-for-tests");
        let token = tokens.issue(123_456_789, 2_000, "c1", "alice");
        assert_eq!(tokens.verify(&token, "c1", "alice", 1_000), Ok(123_456_789));
        assert_eq!(
            tokens.verify(&token, "c1", "bob", 1_000),
            Err(OrderTokenError::BadSignature)
        );
        assert_eq!(
            tokens.verify(&token, "c2", "alice", 1_000),
            Err(OrderTokenError::BadSignature)
        );
        assert_eq!(
            tokens.verify(&token, "c1", "alice", 2_000),
            Err(OrderTokenError::Expired)
        );
        let forged = token.replacen("123456789", "123456780", 1);
        assert_eq!(
            tokens.verify(&forged, "c1", "alice", 1_000),
            Err(OrderTokenError::BadSignature)
        );
        assert_eq!(
            tokens.verify("garbage", "c1", "alice", 1_000),
            Err(OrderTokenError::Malformed)
        );
        let other = OrderTokens::new(b"some-other-secret-entirely");
        assert!(other.verify(&token, "c1", "alice", 1_000).is_err());
    }
}
