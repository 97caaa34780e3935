//! Where the Redis is and how to log in, with the password kept out of every string.
//!
//! A `redis://user:password@host` URL printed in an error gives the password away. So the URL
//! is taken apart when the config is read: the password goes into a [`Secret`], everything
//! else stays in a [`redis::ConnectionInfo`] without it, and the two meet only in
//! [`RedisTarget::connection_info`], the value handed to redis-rs (whose `Debug` redacts it).
//! What is shown of a target, in errors and logs, is its address alone.

use std::fmt;

use redis::{ConnectionInfo, IntoConnectionInfo as _, RedisConnectionInfo};

use super::secret::Secret;

/// A Redis to connect to: address, database, user and password.
#[derive(Clone)]
pub struct RedisTarget {
    /// Everything needed to connect except the password.
    info: ConnectionInfo,
    /// From the URL, `redis.password_file` or `FLASHGATE_REDIS_PASSWORD`.
    password: Option<Secret>,
}

impl RedisTarget {
    /// Parses `url` into a target without its password, returned apart (percent-decoded).
    ///
    /// # Errors
    /// Why the URL is not one redis-rs can connect to; the message never quotes the URL.
    pub(super) fn parse(url: &str) -> Result<(Self, Option<String>), String> {
        let parsed = redis::parse_redis_url(url)
            .ok_or_else(|| "not a redis://, rediss:// or unix:// URL".to_owned())?
            .into_connection_info()
            .map_err(|e| e.to_string())?;
        let settings = parsed.redis_settings();
        let password = settings.password().map(str::to_owned);
        let mut login = RedisConnectionInfo::default()
            .set_db(settings.db())
            .set_protocol(settings.protocol());
        if let Some(user) = settings.username() {
            login = login.set_username(user);
        }
        let info = parsed.clone().set_redis_settings(login);
        Ok((
            Self {
                info,
                password: None,
            },
            password,
        ))
    }

    /// The private Redis the gateway runs on `port` of 127.0.0.1 (no password).
    pub fn local(port: u16) -> Self {
        let Ok(info) = ("127.0.0.1", port).into_connection_info() else {
            unreachable!("a (host, port) pair always converts")
        };
        Self {
            info,
            password: None,
        }
    }

    /// Logs in with `password`.
    pub(super) fn with_password(mut self, password: Option<Secret>) -> Self {
        self.password = password;
        self
    }

    /// What to connect with: the one value that carries the password.
    pub fn connection_info(&self) -> ConnectionInfo {
        match &self.password {
            None => self.info.clone(),
            Some(password) => {
                let login = self
                    .info
                    .redis_settings()
                    .clone()
                    .set_password(password.expose());
                self.info.clone().set_redis_settings(login)
            }
        }
    }

    /// `host:port` (or the socket path): what errors and logs name.
    pub fn addr(&self) -> String {
        self.info.addr().to_string()
    }
}

impl fmt::Display for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.info.addr(), f)
    }
}

impl fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTarget")
            .field("addr", &self.addr())
            .field("db", &self.info.redis_settings().db())
            .field("username", &self.info.redis_settings().username())
            .field("password", &self.password)
            .finish()
    }
}

/// Two targets are the same Redis, logged in the same way (a reload compares configs).
impl PartialEq for RedisTarget {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.info.redis_settings(), other.info.redis_settings());
        self.info.addr() == other.info.addr()
            && a.db() == b.db()
            && a.username() == b.username()
            && a.protocol() == b.protocol()
            && self.password == other.password
    }
}
