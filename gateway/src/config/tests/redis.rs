//! Unit tests of `[redis]`: a URL, a cluster or the embedded Redis, the Redis password, the
//! replica acks.
use std::io::Write as _;
use std::time::Duration;

use super::*;

#[test]
fn redis_url_and_embedded_conflict() {
    let text = minimal() + "embedded = true\n";
    let got = invalid(&text);
    assert_eq!(fields(&got), ["redis.embedded"], "{got:?}");
    assert!(got[0].message.contains("redis.url"));
}

#[test]
fn redis_neither_names_url() {
    let text = format!("[auth]\njwt_secret = \"{JWT}\"\norder_token_secret = \"{ORDER}\"\n");
    assert_eq!(fields(&invalid(&text)), ["redis.url"]);
    let text = text + "[redis]\nembedded = false\n";
    assert_eq!(fields(&invalid(&text)), ["redis.url"]);
}

/// The target of a config whose `[redis]` table is `redis`, with `env` as the environment.
fn redis_target(
    redis: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<RedisTarget, ConfigError> {
    let text = format!(
        "[auth]\njwt_secret = \"{JWT}\"\norder_token_secret = \"{ORDER}\"\n[redis]\n{redis}\n"
    );
    Config::from_toml_str_with_env(&text, env).map(|c| match c.redis {
        RedisConfig::Url { target, .. } => target,
        other => panic!("not a url: {other:?}"),
    })
}

fn password(target: &RedisTarget) -> Option<String> {
    target
        .connection_info()
        .redis_settings()
        .password()
        .map(str::to_owned)
}

#[test]
fn redis_password_from_url_env_or_file_is_never_shown() {
    let url = "url = \"redis://fg:pw-in-url@cache.internal:6390/2\"";
    let target = redis_target(url, &no_env).unwrap();
    assert_eq!(password(&target).as_deref(), Some("pw-in-url"));
    let info = target.connection_info();
    assert_eq!(info.redis_settings().username(), Some("fg"));
    assert_eq!(info.redis_settings().db(), 2);
    assert_eq!(target.to_string(), "cache.internal:6390");
    let config = parse(&minimal().replace(
        "redis://127.0.0.1:6379",
        "redis://fg:pw-in-url@cache.internal:6390/2",
    ))
    .unwrap();
    let shown = format!("{target} {target:?} {config:?}");
    assert!(!shown.contains("pw-in-url"), "{shown}");

    // The environment wins over the URL's password, as over every secret in the file.
    let env = |name: &str| (name == ENV_REDIS_PASSWORD).then(|| "pw-from-env".to_owned());
    assert_eq!(
        password(&redis_target(url, &env).unwrap()).as_deref(),
        Some("pw-from-env")
    );

    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "pw-from-file").unwrap();
    let from_file = format!(
        "url = \"redis://cache.internal\"\npassword_file = \"{}\"",
        file.path().display()
    );
    let target = redis_target(&from_file, &no_env).unwrap();
    assert_eq!(password(&target).as_deref(), Some("pw-from-file"));
    assert_eq!(target.addr(), "cache.internal:6379");
    assert_eq!(
        password(&redis_target("url = \"redis://h\"", &no_env).unwrap()),
        None
    );
}

#[test]
fn redis_password_in_two_places_or_a_bad_url_is_named_without_the_secret() {
    let both = "url = \"redis://:pw-in-url@h\"\npassword_file = \"/nonexistent\"";
    let Err(ConfigError::Invalid(got)) = redis_target(both, &no_env) else {
        panic!("accepted a password twice")
    };
    assert_eq!(fields(&got), ["redis.password_file"], "{got:?}");

    let bad_port = "url = \"redis://:pw-in-url@h:port\"";
    let Err(e) = redis_target(bad_port, &no_env) else {
        panic!("accepted a bad port")
    };
    let shown = e.to_string();
    assert!(
        shown.contains("redis.url") && !shown.contains("pw-in-url"),
        "{shown}"
    );

    let embedded = "embedded = true\npassword_file = \"/nonexistent\"";
    let Err(ConfigError::Invalid(got)) = redis_target(embedded, &no_env) else {
        panic!("accepted a password for the embedded redis")
    };
    assert_eq!(fields(&got), ["redis.password_file"], "{got:?}");
}

#[test]
fn a_redis_cluster_is_named_by_its_seed_nodes_and_checked() {
    let head =
        format!("[auth]\njwt_secret = \"{JWT}\"\norder_token_secret = \"{ORDER}\"\n[redis]\n");
    let ok = parse(
        &(head.clone()
            + "cluster = [\"redis://:pw@10.0.0.1:7000\", \"redis://:pw@10.0.0.2:7000\"]\n"),
    )
    .unwrap();
    let RedisConfig::Cluster { seeds, .. } = &ok.redis else {
        panic!("not a cluster: {:?}", ok.redis);
    };
    assert_eq!(seeds.len(), 2);
    assert!(seeds.iter().all(|s| password(s).as_deref() == Some("pw")));
    assert!(
        !format!("{:?}", ok.redis).contains("pw\""),
        "{:?}",
        ok.redis
    );

    let both =
        head.clone() + "url = \"redis://127.0.0.1:6379\"\ncluster = [\"redis://127.0.0.1:7000\"]\n";
    assert_eq!(fields(&invalid(&both)), ["redis.cluster"]);
    let empty = head.clone() + "cluster = []\n";
    assert_eq!(fields(&invalid(&empty)), ["redis.cluster"]);
    let scheme = head.clone() + "cluster = [\"redis://127.0.0.1:7000\", \"http://secret@x\"]\n";
    let got = invalid(&scheme);
    assert_eq!(fields(&got), ["redis.cluster[1]"]);
    assert!(!got[0].message.contains("secret"), "{got:?}");
    let mixed = head + "cluster = [\"redis://:a@10.0.0.1:7000\", \"redis://:b@10.0.0.2:7000\"]\n";
    assert_eq!(fields(&invalid(&mixed)), ["redis.cluster"]);
}

#[test]
fn replica_acks_are_off_by_default_and_checked_when_set() {
    assert_eq!(parse(&minimal()).unwrap().redis.replica_acks(), None);
    let head =
        format!("[auth]\njwt_secret = \"{JWT}\"\norder_token_secret = \"{ORDER}\"\n[redis]\n");
    let with = |lines: &str| format!("{}{lines}\n", minimal());

    let on = parse(&with("replica_acks = 1")).unwrap();
    assert_eq!(
        on.redis.replica_acks(),
        Some(ReplicaAcks {
            replicas: 1,
            timeout: Duration::from_millis(50)
        })
    );
    let tuned = parse(&with("replica_acks = 2\nreplica_ack_timeout = \"20ms\"")).unwrap();
    assert_eq!(
        tuned.redis.replica_acks(),
        Some(ReplicaAcks {
            replicas: 2,
            timeout: Duration::from_millis(20)
        })
    );
    let cluster =
        parse(&(head.clone() + "cluster = [\"redis://127.0.0.1:7000\"]\nreplica_acks = 1\n"))
            .unwrap();
    assert_eq!(cluster.redis.replica_acks().map(|a| a.replicas), Some(1));
    // 0 is off, whatever the timeout says.
    let off = parse(&with("replica_acks = 0\nreplica_ack_timeout = \"10ms\"")).unwrap();
    assert_eq!(off.redis.replica_acks(), None);

    // Every bad field named at once.
    let bad = invalid(&with("replica_acks = -1\nreplica_ack_timeout = \"0ms\""));
    assert_eq!(
        fields(&bad),
        ["redis.replica_acks", "redis.replica_ack_timeout"],
        "{bad:?}"
    );
    assert_eq!(
        fields(&invalid(&with("replica_acks = 17"))),
        ["redis.replica_acks"]
    );
    assert_eq!(
        fields(&invalid(&with(
            "replica_acks = 1\nreplica_ack_timeout = \"6s\""
        ))),
        ["redis.replica_ack_timeout"]
    );
    assert_eq!(
        fields(&invalid(&with("replica_ack_timeout = \"soon\""))),
        ["redis.replica_ack_timeout"]
    );
    // The embedded Redis has no replica: no purchase could ever be acknowledged.
    let embedded = head + "embedded = true\nreplica_acks = 1\n";
    assert_eq!(fields(&invalid(&embedded)), ["redis.replica_acks"]);
}
