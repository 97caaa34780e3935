//! [`Secret`], a key that never reaches a log line, and the rule every secret is read by:
//! the environment wins, else the file's value or its `_file` key.

use std::fmt;

use super::checks::Errors;

/// A key that must never reach a log line: `Debug` prints `Secret(***)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub(super) String);

impl Secret {
    /// Shortest accepted secret: shorter HMAC keys are guessable.
    pub const MIN_LEN: usize = 16;

    /// Wraps `value`, or `None` if it is shorter than [`Secret::MIN_LEN`] bytes.
    pub fn new(value: impl Into<String>) -> Option<Secret> {
        let value = value.into();
        (value.len() >= Self::MIN_LEN).then_some(Secret(value))
    }

    /// The secret itself, for the one place that needs the bytes (a MAC key).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Env var wins; otherwise exactly one of the inline value and the `_file` key.
/// As [`secret`], for one that may be left out entirely (set nowhere: `None`, no error).
pub(super) fn optional_secret(
    e: &mut Errors,
    field: &str,
    var: &str,
    inline: Option<String>,
    file: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<Secret> {
    if env(var).is_none() && inline.is_none() && file.is_none() {
        return None;
    }
    Some(secret(e, field, var, inline, file, env))
}

pub(super) fn secret(
    e: &mut Errors,
    field: &str,
    var: &str,
    inline: Option<String>,
    file: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Secret {
    let Some((value, source)) = secret_text(e, field, var, inline, file, env) else {
        return Secret(String::new());
    };
    let len = value.len();
    Secret::new(value).unwrap_or_else(|| {
        e.push(
            source,
            format!("too short: {len} bytes, need at least {}", Secret::MIN_LEN),
        );
        Secret(String::new())
    })
}

/// The rule every secret follows: the env var wins; otherwise exactly one of the inline value
/// and the `_file` key (its text trimmed). The value and where it came from, or `None` with the
/// reason recorded. No message ever quotes a value.
pub(super) fn secret_text(
    e: &mut Errors,
    field: &str,
    var: &str,
    inline: Option<String>,
    file: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<(String, String)> {
    let file_field = format!("{field}_file");
    match (env(var), inline, file) {
        (Some(v), _, _) => Some((v, format!("{field} (from env {var})"))),
        (None, Some(_), Some(_)) => {
            e.push(file_field, format!("conflicts with {field}: set only one"));
            None
        }
        (None, Some(v), None) => Some((v, field.to_owned())),
        (None, None, Some(path)) => match std::fs::read_to_string(&path) {
            Ok(text) => Some((text.trim().to_owned(), file_field)),
            Err(err) => {
                e.push(file_field, format!("cannot read {path:?}: {err}"));
                None
            }
        },
        (None, None, None) => {
            e.push(
                field,
                format!("missing: set {field}, {field}_file or env {var}"),
            );
            None
        }
    }
}
