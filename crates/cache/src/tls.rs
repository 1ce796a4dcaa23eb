//! How the Redis backend logs in and which certificates it trusts beyond what the URL says:
//! an ACL user and password, a CA file for `rediss://`, and the start-up errors that name the
//! setting to fix when Redis refuses them.

use std::path::PathBuf;

use redis::{ErrorKind, IntoConnectionInfo, RedisError, TlsCertificates};

use crate::CacheError;

/// Credentials and trust for Redis (`BAZAAR_REDIS_USERNAME`, `BAZAAR_REDIS_PASSWORD`,
/// `BAZAAR_REDIS_CA_FILE`). Each overrides what the URL carries; unset, the URL decides.
#[derive(Clone, Default)]
pub struct RedisOptions {
    /// ACL user (Redis 6+); without it the password is the `default` user's.
    pub username: Option<String>,
    pub password: Option<String>,
    /// PEM file of the CA(s) that sign the server's certificate, trusted instead of the
    /// built-in public roots. Only with `rediss://`.
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl RedisOptions {
    /// A client for `url` with these options applied.
    pub(crate) fn client(&self, url: &str) -> Result<redis::Client, CacheError> {
        // The URL is a secret (it may hold a password): errors say what is wrong, not the URL.
        let info = url.into_connection_info().map_err(|e| {
            CacheError::Config(format!(
                "BAZAAR_REDIS_URL is not a valid Redis URL ({:?})",
                e.kind()
            ))
        })?;
        let mut settings = info.redis_settings().clone();
        if let Some(username) = &self.username {
            settings = settings.set_username(username);
        }
        if let Some(password) = &self.password {
            settings = settings.set_password(password);
        }
        let tls = matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. });
        let info = info.set_redis_settings(settings);
        let client = match &self.ca_file {
            None => redis::Client::open(info),
            Some(_) if !tls => {
                return Err(CacheError::Config(
                    "BAZAAR_REDIS_CA_FILE is set but BAZAAR_REDIS_URL is not rediss://".into(),
                ));
            }
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    CacheError::Config(format!("BAZAAR_REDIS_CA_FILE {}: {e}", path.display()))
                })?;
                // redis-rs's TLS asks rustls for the process's crypto provider; the binary
                // installs ring first, this covers library users (tests) that did not.
                let _ = rustls::crypto::ring::default_provider().install_default();
                redis::Client::build_with_tls(
                    info,
                    TlsCertificates {
                        client_tls: None,
                        root_cert: Some(pem),
                    },
                )
            }
        };
        client.map_err(|e| CacheError::Config(format!("Redis client: {e}")))
    }
}

/// Classifies a failure to connect: refused credentials and certificates that do not verify
/// are configuration errors (retrying cannot fix them) that name the settings involved.
pub(crate) fn connect_err(e: RedisError) -> CacheError {
    let text = e.to_string();
    if e.kind() == ErrorKind::AuthenticationFailed
        || e.code() == Some("NOAUTH")
        || e.code() == Some("WRONGPASS")
    {
        CacheError::Config(format!(
            "Redis refused to authenticate ({text}): check BAZAAR_REDIS_PASSWORD and \
             BAZAAR_REDIS_USERNAME (or the user:password in BAZAAR_REDIS_URL)"
        ))
    } else if text.contains("certificate") || text.contains("UnknownIssuer") {
        CacheError::Config(format!(
            "TLS to Redis failed ({text}): check BAZAAR_REDIS_CA_FILE (or #insecure in \
             BAZAAR_REDIS_URL for a test server with a self-signed certificate)"
        ))
    } else {
        crate::redis_cache::map_err(e)
    }
}

/// A client that connects without TLS problems can still find Redis wanting a password
/// only when it sends a command: the first PING tells.
pub(crate) async fn check_login(
    conn: &mut redis::aio::ConnectionManager,
) -> Result<(), CacheError> {
    redis::cmd("PING")
        .query_async::<String>(conn)
        .await
        .map(drop)
        .map_err(connect_err)
}
