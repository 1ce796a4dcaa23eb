//! How bazaar authenticates to NATS (user and password, token, nkey seed or `.creds` file) and
//! which certificate authorities it trusts for `tls://`, and which connect failures no retry
//! can fix.

use std::path::PathBuf;

use async_nats::{ConnectError, ConnectErrorKind, ConnectOptions};

use crate::BusError;

/// One way of proving who we are to the NATS server.
#[derive(Clone, Default)]
pub enum NatsAuth {
    /// Whatever the URL carries (`nats://user:password@host`), or nothing.
    #[default]
    None,
    UserPassword {
        user: String,
        password: String,
    },
    Token(String),
    /// A user nkey seed (`SU...`): the server holds the public key and we sign its nonce.
    NkeySeed(String),
    /// A `.creds` file (user JWT and nkey seed), as `nsc` writes it for operator mode.
    CredsFile(PathBuf),
}

impl std::fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NatsAuth::None => f.write_str("None"),
            NatsAuth::UserPassword { user, .. } => {
                write!(f, "UserPassword {{ user: {user:?}, password: [redacted] }}")
            }
            NatsAuth::Token(_) => f.write_str("Token([redacted])"),
            NatsAuth::NkeySeed(_) => f.write_str("NkeySeed([redacted])"),
            NatsAuth::CredsFile(path) => write!(f, "CredsFile({path:?})"),
        }
    }
}

/// Credentials and trust for a NATS connection, beyond the URL.
#[derive(Clone, Debug, Default)]
pub struct NatsOptions {
    pub auth: NatsAuth,
    /// PEM file of the CA(s) that sign the server's certificate. Setting it requires TLS,
    /// whatever the URL's scheme.
    pub ca_file: Option<PathBuf>,
}

impl NatsOptions {
    /// Adds the credentials and trust to `options`. Reading the `.creds` file can fail, and
    /// that is fatal: the file does not appear by waiting.
    pub(crate) async fn apply(&self, options: ConnectOptions) -> Result<ConnectOptions, BusError> {
        let options = match &self.auth {
            NatsAuth::None => options,
            NatsAuth::UserPassword { user, password } => {
                options.user_and_password(user.clone(), password.clone())
            }
            NatsAuth::Token(token) => options.token(token.clone()),
            NatsAuth::NkeySeed(seed) => options.nkey(seed.clone()),
            NatsAuth::CredsFile(path) => options.credentials_file(path).await.map_err(|e| {
                BusError::Unavailable(format!(
                    "NATS credentials file (BAZAAR_NATS_CREDS_FILE) {}: {e}",
                    path.display()
                ))
            })?,
        };
        Ok(match &self.ca_file {
            Some(path) => options
                .add_root_certificates(path.clone())
                .require_tls(true),
            None => options,
        })
    }
}

/// Whether a failed connect is worth retrying. A refused credential or a certificate that
/// does not verify will fail the same way every time, so start-up stops with a line that
/// names the settings instead of retrying forever.
pub(crate) fn fatal(e: &ConnectError) -> Option<BusError> {
    let text = e.to_string();
    let source = std::error::Error::source(e)
        .map(ToString::to_string)
        .unwrap_or_default();
    let certificate = text.contains("certificate") || source.contains("certificate");
    match e.kind() {
        ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::Authentication => {
            Some(BusError::Unavailable(format!(
                "NATS refused the credentials ({text}): check BAZAAR_NATS_USER/PASSWORD, \
                 BAZAAR_NATS_TOKEN, BAZAAR_NATS_NKEY_SEED or BAZAAR_NATS_CREDS_FILE"
            )))
        }
        ConnectErrorKind::Tls => Some(BusError::Unavailable(format!(
            "TLS to NATS failed ({text}; {source}): check BAZAAR_NATS_CA_FILE and the tls:// URL"
        ))),
        _ if certificate => Some(BusError::Unavailable(format!(
            "TLS to NATS failed ({text}; {source}): check BAZAAR_NATS_CA_FILE"
        ))),
        _ => None,
    }
}

/// The URL as it may be logged: `nats://user:password@host` loses its user information.
pub fn without_credentials(url: &str) -> String {
    url.split(',')
        .map(|one| match (one.find("://"), one.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}[redacted]@{}", &one[..scheme + 3], &one[at + 1..])
            }
            _ => one.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        for auth in [
            NatsAuth::UserPassword {
                user: "svc".into(),
                password: "hunter2".into(),
            },
            NatsAuth::Token("hunter2".into()),
            NatsAuth::NkeySeed("hunter2".into()),
        ] {
            let printed = format!(
                "{:?}",
                NatsOptions {
                    auth,
                    ca_file: None
                }
            );
            assert!(!printed.contains("hunter2"), "{printed}");
        }
    }

    #[test]
    fn logged_urls_lose_their_credentials() {
        assert_eq!(
            without_credentials("nats://svc:hunter2@a:4222,tls://tok@b:4222"),
            "nats://[redacted]@a:4222,tls://[redacted]@b:4222"
        );
        assert_eq!(without_credentials("nats://a:4222"), "nats://a:4222");
    }
}
