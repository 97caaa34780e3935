//! Admin edits go through the config file, so the file stays the one source of truth: a
//! later reload or restart finds the same campaigns. An edit rewrites the file atomically
//! (a temporary file renamed over it) and is undone if the reload refuses the result. Only
//! the campaign's keys change: comments and layout elsewhere in the file are kept
//! (`toml_edit`).

use std::path::{Path, PathBuf};

/// The config file as read before an edit, to restore it if the edit is refused.
#[derive(Debug)]
pub struct Original {
    path: PathBuf,
    text: String,
}

/// Why the config file could not be edited: nothing was written. The admin API answers it
/// 422 `invalid_config` (through `ApiError`).
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// The parse error is not kept: it would quote a line of the file, secrets and all.
    #[error("{path} is not valid TOML")]
    NotToml { path: String },
    #[error("campaigns is not an array of tables ([[campaigns]])")]
    NotCampaignTables,
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// Applies `edit` to the `[[campaigns]]` table whose `id` is `id` (`None` when the file has no
/// such campaign yet) and writes the result back.
///
/// # Errors
/// A [`ConfigFileError`] when the file cannot be read, parsed or written; whatever `edit`
/// returns.
pub fn edit_campaign<E: From<ConfigFileError>>(
    path: &Path,
    id: &str,
    edit: impl FnOnce(Option<&mut toml_edit::Table>) -> Result<Option<toml_edit::Table>, E>,
) -> Result<Original, E> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
        path: path.display().to_string(),
        source,
    })?;
    // The parse error is not echoed: it would quote a line of the file, secrets and all.
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|_| ConfigFileError::NotToml {
        path: path.display().to_string(),
    })?;
    let campaigns = doc
        .entry("campaigns")
        .or_insert_with(|| toml_edit::Item::ArrayOfTables(toml_edit::ArrayOfTables::new()));
    let Some(campaigns) = campaigns.as_array_of_tables_mut() else {
        return Err(ConfigFileError::NotCampaignTables.into());
    };
    let existing = campaigns
        .iter_mut()
        .find(|t| t.get("id").and_then(toml_edit::Item::as_str) == Some(id));
    if let Some(added) = edit(existing)? {
        campaigns.push(added);
    }
    write_atomically(path, &doc.to_string())?;
    Ok(Original {
        path: path.to_path_buf(),
        text,
    })
}

/// A JSON value as a TOML value: strings, whole numbers, decimals and booleans.
pub fn toml_value(value: serde_json::Value) -> Option<toml_edit::Value> {
    Some(match value {
        serde_json::Value::String(s) => s.into(),
        serde_json::Value::Bool(b) => b.into(),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => i.into(),
            None => n.as_f64()?.into(),
        },
        _ => return None,
    })
}

impl Original {
    /// Puts the file back as it was.
    pub fn restore(self) {
        if let Err(e) = write_atomically(&self.path, &self.text) {
            tracing::error!(path = %self.path.display(), error = %e, "could not restore the config file after a refused edit");
        }
    }
}

/// Writes `text` to a temporary file beside `path` with `path`'s permissions (the file may hold
/// secrets), syncs it to disk, and renames it over `path`: readers see the old file or the new
/// one, never half of one, even across a crash.
fn write_atomically(path: &Path, text: &str) -> Result<(), ConfigFileError> {
    use std::io::Write as _;
    let temporary = path.with_extension("toml.edit");
    let written = (|| {
        let permissions = std::fs::metadata(path)?.permissions();
        let mut file = std::fs::File::create(&temporary)?;
        file.set_permissions(permissions)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    written.map_err(|source| ConfigFileError::Write {
        path: path.display().to_string(),
        source,
    })
}
