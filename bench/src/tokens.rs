//! Bearer tokens for many distinct users, minted before a run so signing is never measured.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

pub fn write(
    secret: &str,
    count: usize,
    prefix: &str,
    valid_for: i64,
    out: &Path,
) -> anyhow::Result<()> {
    let exp = flashgate::clock::now_s() + valid_for;
    let file = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut file = std::io::BufWriter::new(file);
    for n in 0..count {
        let token = flashgate::auth::jwt::sign(secret.as_bytes(), &format!("{prefix}{n}"), exp);
        writeln!(file, "{token}")?;
    }
    file.flush()?;
    Ok(())
}
