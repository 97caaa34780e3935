//! [`Errors`], the list of bad fields a config is checked into, and the checks of one value
//! (an integer in a range, a duration, a required key) that record into it.

use std::time::Duration;

use super::error::FieldError;

/// No duration in the config is meant to exceed this; bigger ones are typos, and would
/// overflow time arithmetic downstream (deadlines, token expiries).
const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// One millisecond: the shortest of most timeouts.
pub(super) const MS: Duration = Duration::from_millis(1);
/// `hi` of [`Errors::int`] for a value with no upper bound: the message names only the lower.
pub(super) const NO_MAX: i64 = i64::MAX;

/// Collects field errors while converting values.
#[derive(Debug, Default)]
pub(super) struct Errors(pub Vec<FieldError>);

impl Errors {
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// An integer in `lo..=hi`, `default` when absent.
    pub fn int<T: TryFrom<i64>>(
        &mut self,
        field: &str,
        raw: Option<i64>,
        default: T,
        lo: i64,
        hi: i64,
    ) -> T {
        let Some(v) = raw else { return default };
        if v < lo || v > hi {
            let want = if hi == NO_MAX {
                format!("must be at least {lo}")
            } else {
                format!("must be between {lo} and {hi}")
            };
            self.push(field, format!("{want}, got {v}"));
            return default;
        }
        T::try_from(v).unwrap_or_else(|_| {
            self.push(field, format!("{v} does not fit"));
            default
        })
    }

    /// A humantime duration of at least `min`, `default` when absent.
    pub fn duration(
        &mut self,
        field: &str,
        raw: Option<&str>,
        default: Duration,
        min: Duration,
    ) -> Duration {
        let Some(s) = raw else { return default };
        match humantime::parse_duration(s) {
            Ok(d) if d > MAX_DURATION => {
                self.push(field, format!("must be at most a year, got {s:?}"));
                default
            }
            Ok(d) if d >= min => d,
            Ok(_) => {
                self.push(
                    field,
                    format!(
                        "must be at least {}, got {s:?}",
                        humantime::format_duration(min)
                    ),
                );
                default
            }
            Err(e) => {
                self.push(
                    field,
                    format!("not a duration like \"500ms\" or \"15m\": {s:?} ({e})"),
                );
                default
            }
        }
    }

    /// A required value: records "missing" when absent.
    pub fn required<T>(&mut self, field: &str, raw: Option<T>) -> Option<T> {
        if raw.is_none() {
            self.push(field, "missing (required)");
        }
        raw
    }
}
