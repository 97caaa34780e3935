//! Why a config could not be loaded: [`ConfigError`], and the [`FieldError`]s it lists.

use std::fmt;
use std::path::PathBuf;

/// One bad field, named by its path in the file (`campaigns[1].stock`, `limits.per_ip.burst`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path of the offending key.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {}: {source}", path.display())]
    Io {
        /// The file we tried to read.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Not valid TOML, a wrong type, or an unknown key: where, and what is wrong. The
    /// offending line itself is not quoted: it may hold a secret or a password.
    #[error("cannot parse config: {0}")]
    Parse(String),
    /// Parsed, but some fields are invalid; every one of them is listed.
    #[error("invalid config ({} errors):{}", .0.len(), list(.0))]
    Invalid(Vec<FieldError>),
}

/// A TOML error as line, column and message, without the snippet of the file toml would show.
pub(super) fn parse_error(text: &str, e: &toml::de::Error) -> ConfigError {
    let message = e.message().trim_end();
    ConfigError::Parse(match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message.to_owned(),
    })
}

fn list(errors: &[FieldError]) -> String {
    errors.iter().map(|e| format!("\n  {e}")).collect()
}
