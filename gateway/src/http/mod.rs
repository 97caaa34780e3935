//! HTTP plumbing shared by every route.
//!
//! # Layout
//! - [`api_error`]: every failure a client can see, and the one place it becomes an HTTP answer.
//! - [`error_code`]: the codes those answers carry, as one enum.
//! - [`response`]: JSON answers.
//! - [`body`]: bounded body reading and strict JSON parsing.

pub mod api_error;
pub mod body;
pub mod error_code;
pub mod response;

pub use api_error::ApiError;
pub use error_code::ErrorCode;
pub use response::{Answer, json};
