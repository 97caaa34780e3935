//! Who is asking: bearer-token identity and order tokens.
//!
//! # Layout
//! - [`jwt`]: HS256 bearer tokens (`sub` = user id, `exp` enforced).
//! - [`order_token`]: stateless signed order ids for idempotent submits.

pub mod jwt;
pub mod order_token;

pub use jwt::{AuthError, Identity, JwtVerifier};
pub use order_token::{OrderTokenError, OrderTokens};
