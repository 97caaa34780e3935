//! `[admin]`: the operators' listener (`/metrics`, the admin API) and the admin API's token.

use std::net::SocketAddr;

use super::checks::Errors;
use super::raw::RawAdmin;
use super::secret::{Secret, optional_secret};

/// Environment variable that overrides `admin.token`.
pub const ENV_ADMIN_TOKEN: &str = "FLASHGATE_ADMIN_TOKEN";

/// `[admin]`: the operators' port (`/metrics`), never exposed with the public API.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AdminConfig {
    /// Where to serve it (e.g. `127.0.0.1:9090`); none by default.
    pub listen: Option<SocketAddr>,
    /// The bearer token of the admin API (`/admin/v1/…`; `/metrics` needs none). From
    /// `admin.token`, `admin.token_file` or `FLASHGATE_ADMIN_TOKEN`; without one the admin
    /// API refuses everything.
    pub token: Option<Secret>,
}

/// `[admin]`: the listen address, and the token by the rule of every secret.
pub(super) fn admin(
    e: &mut Errors,
    raw_admin: RawAdmin,
    env: &dyn Fn(&str) -> Option<String>,
) -> AdminConfig {
    AdminConfig {
        token: optional_secret(
            e,
            "admin.token",
            ENV_ADMIN_TOKEN,
            raw_admin.token,
            raw_admin.token_file,
            env,
        ),
        listen: raw_admin.listen.as_deref().and_then(|text| {
            text.parse()
                .map_err(|err| {
                    e.push(
                        "admin.listen",
                        format!("not an ip:port address: {text:?} ({err})"),
                    );
                })
                .ok()
        }),
    }
}
