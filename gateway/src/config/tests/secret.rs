//! Unit tests of secrets: from the file, a `_file` key or the environment, never shown.
use std::io::Write as _;

use super::*;

#[test]
fn env_overrides_secrets() {
    let env = |name: &str| match name {
        ENV_JWT_SECRET => Some("jwt-from-environment-123".to_owned()),
        ENV_ORDER_TOKEN_SECRET => Some("order-from-environment-123".to_owned()),
        _ => None,
    };
    let c = Config::from_toml_str_with_env(&minimal(), &env).unwrap();
    assert_eq!(c.auth.jwt_secret.expose(), "jwt-from-environment-123");
    assert_eq!(
        c.auth.order_token_secret.expose(),
        "order-from-environment-123"
    );
    // Env alone is enough: no secrets in the file at all.
    let c = Config::from_toml_str_with_env("[redis]\nembedded = true\n", &env).unwrap();
    assert_eq!(c.auth.jwt_secret.expose(), "jwt-from-environment-123");
}

#[test]
fn short_env_secret_names_the_variable() {
    let env = |name: &str| (name == ENV_JWT_SECRET).then(|| "tiny".to_owned());
    let Err(ConfigError::Invalid(errors)) = Config::from_toml_str_with_env(&minimal(), &env) else {
        panic!("short env secret accepted");
    };
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].message.contains("too short") && errors[0].field.contains(ENV_JWT_SECRET),
        "{errors:?}"
    );
}

#[test]
fn secret_file_is_read_and_trimmed() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "  file-secret-0123456789  ").unwrap();
    let path = file.path().display().to_string().replace('\\', "/");
    let text = format!(
        "[auth]\njwt_secret_file = \"{path}\"\norder_token_secret = \"{ORDER}\"\n[redis]\nembedded = true\n"
    );
    let c = parse(&text).unwrap();
    assert_eq!(c.auth.jwt_secret.expose(), "file-secret-0123456789");

    let both = format!(
        "[auth]\njwt_secret = \"{JWT}\"\njwt_secret_file = \"{path}\"\norder_token_secret_file = \"/no/such/file\"\n[redis]\nembedded = true\n"
    );
    let got = invalid(&both);
    assert_eq!(
        fields(&got),
        ["auth.jwt_secret_file", "auth.order_token_secret_file"],
        "{got:?}"
    );
}

#[test]
fn secret_debug_is_redacted() {
    let c = parse(&minimal()).unwrap();
    let debug = format!("{c:?}");
    assert!(!debug.contains(JWT) && !debug.contains(ORDER), "{debug}");
    assert!(debug.contains("Secret(***)"));
    assert!(Secret::new("15-bytes-secret").is_none());
    assert_eq!(
        Secret::new("16-bytes-secret!").unwrap().expose(),
        "16-bytes-secret!"
    );
}
