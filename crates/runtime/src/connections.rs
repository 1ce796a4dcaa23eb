//! TLS and credentials for the outside systems: the CA that signs PostgreSQL's certificate and
//! the `sslmode` that checks it, Redis's ACL user, password and CA, and NATS's credentials
//! (user/password, token, nkey seed or `.creds` file) and CA. Read from `BAZAAR_*` variables or
//! the `[database]`, `[redis]` and `[nats]` tables of the config file, and checked once here so
//! a missing file or a contradiction stops start-up with a line naming the setting.

use std::path::{Path, PathBuf};

use bazaar_bus::{NatsAuth, NatsOptions};
use bazaar_cache::RedisOptions;
use serde::Deserialize;

use crate::Secret;
use crate::config::sources::{env, env_secret};

/// The `[database]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileDatabase {
    ca_file: Option<PathBuf>,
}

/// The `[redis]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileRedis {
    username: Option<String>,
    password: Option<Secret>,
    ca_file: Option<PathBuf>,
}

/// The `[nats]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileNats {
    user: Option<String>,
    password: Option<Secret>,
    token: Option<Secret>,
    nkey_seed: Option<Secret>,
    creds_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
}

/// How bazaar reaches its outside systems beyond their URLs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Connections {
    /// PEM file of the CA(s) that sign PostgreSQL's certificate; becomes the URL's
    /// `sslrootcert` unless the URL names one itself.
    pub database_ca_file: Option<PathBuf>,
    /// Redis ACL user (Redis 6+); without it a password authenticates the `default` user.
    pub redis_username: Option<String>,
    pub redis_password: Option<Secret>,
    /// PEM file of the CA(s) that sign Redis's certificate (`rediss://` only); replaces the
    /// built-in public roots.
    pub redis_ca_file: Option<PathBuf>,
    pub nats_user: Option<String>,
    pub nats_password: Option<Secret>,
    pub nats_token: Option<Secret>,
    pub nats_nkey_seed: Option<Secret>,
    pub nats_creds_file: Option<PathBuf>,
    /// PEM file of the CA(s) that sign the NATS server's certificate; implies TLS.
    pub nats_ca_file: Option<PathBuf>,
}

impl Connections {
    /// What the cache needs to log in to Redis and check its certificate.
    pub fn redis_options(&self) -> RedisOptions {
        RedisOptions {
            username: self.redis_username.clone(),
            password: self.redis_password.as_ref().map(|p| p.expose().to_owned()),
            ca_file: self.redis_ca_file.clone(),
        }
    }

    /// What the NATS transport needs to authenticate and check the server's certificate.
    pub fn nats_options(&self) -> NatsOptions {
        let expose = |s: &Option<Secret>| s.as_ref().map(|s| s.expose().to_owned());
        let auth = match (
            &self.nats_user,
            expose(&self.nats_password),
            expose(&self.nats_token),
            expose(&self.nats_nkey_seed),
            &self.nats_creds_file,
        ) {
            (Some(user), Some(password), ..) => NatsAuth::UserPassword {
                user: user.clone(),
                password,
            },
            (_, _, Some(token), ..) => NatsAuth::Token(token),
            (_, _, _, Some(seed), _) => NatsAuth::NkeySeed(seed),
            (.., Some(path)) => NatsAuth::CredsFile(path.clone()),
            _ => NatsAuth::None,
        };
        NatsOptions {
            auth,
            ca_file: self.nats_ca_file.clone(),
        }
    }
}

fn env_path(name: &str) -> Option<PathBuf> {
    env(name).map(PathBuf::from)
}

/// A CA file must be readable PEM with at least one certificate: checked now, because a typo
/// would otherwise surface as a TLS failure far from its cause.
pub(crate) fn check_ca_file(setting: &str, path: &Path, errors: &mut Vec<String>) {
    match std::fs::read_to_string(path) {
        Ok(text) if text.contains("-----BEGIN CERTIFICATE-----") => {}
        Ok(_) => errors.push(format!(
            "{setting} {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        )),
        Err(e) => errors.push(format!("{setting} {}: {e}", path.display())),
    }
}

/// Merges the environment over the file, recording every problem in `errors`.
pub(crate) fn load(
    database: &FileDatabase,
    redis: &FileRedis,
    nats: &FileNats,
    errors: &mut Vec<String>,
) -> Connections {
    let c = Connections {
        database_ca_file: env_path("BAZAAR_DATABASE_CA_FILE").or(database.ca_file.clone()),
        redis_username: env("BAZAAR_REDIS_USERNAME").or(redis.username.clone()),
        redis_password: env_secret("BAZAAR_REDIS_PASSWORD").or(redis.password.clone()),
        redis_ca_file: env_path("BAZAAR_REDIS_CA_FILE").or(redis.ca_file.clone()),
        nats_user: env("BAZAAR_NATS_USER").or(nats.user.clone()),
        nats_password: env_secret("BAZAAR_NATS_PASSWORD").or(nats.password.clone()),
        nats_token: env_secret("BAZAAR_NATS_TOKEN").or(nats.token.clone()),
        nats_nkey_seed: env_secret("BAZAAR_NATS_NKEY_SEED").or(nats.nkey_seed.clone()),
        nats_creds_file: env_path("BAZAAR_NATS_CREDS_FILE").or(nats.creds_file.clone()),
        nats_ca_file: env_path("BAZAAR_NATS_CA_FILE").or(nats.ca_file.clone()),
    };
    for (setting, path) in [
        ("BAZAAR_DATABASE_CA_FILE", &c.database_ca_file),
        ("BAZAAR_REDIS_CA_FILE", &c.redis_ca_file),
        ("BAZAAR_NATS_CA_FILE", &c.nats_ca_file),
    ] {
        if let Some(path) = path {
            check_ca_file(setting, path, errors);
        }
    }
    if c.redis_username.is_some() && c.redis_password.is_none() {
        errors.push("BAZAAR_REDIS_USERNAME needs BAZAAR_REDIS_PASSWORD".into());
    }
    if c.nats_user.is_some() != c.nats_password.is_some() {
        errors.push("BAZAAR_NATS_USER and BAZAAR_NATS_PASSWORD must be set together".into());
    }
    // A NATS connection authenticates one way; silently picking one of several would leave
    // the operator guessing which credential the server saw.
    let ways: Vec<&str> = [
        (c.nats_user.is_some(), "BAZAAR_NATS_USER/PASSWORD"),
        (c.nats_token.is_some(), "BAZAAR_NATS_TOKEN"),
        (c.nats_nkey_seed.is_some(), "BAZAAR_NATS_NKEY_SEED"),
        (c.nats_creds_file.is_some(), "BAZAAR_NATS_CREDS_FILE"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect();
    if ways.len() > 1 {
        errors.push(format!(
            "NATS takes one way to authenticate, but {} are set",
            ways.join(" and ")
        ));
    }
    if let Some(seed) = &c.nats_nkey_seed
        && !seed.expose().starts_with("SU")
    {
        errors.push("BAZAAR_NATS_NKEY_SEED must be a user seed (it starts with SU)".into());
    }
    if let Some(path) = &c.nats_creds_file
        && let Err(e) = std::fs::metadata(path)
    {
        errors.push(format!("BAZAAR_NATS_CREDS_FILE {}: {e}", path.display()));
    }
    c
}

/// The `sslmode` values PostgreSQL's libpq knows.
const SSL_MODES: [&str; 6] = [
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

/// Checks a PostgreSQL URL's TLS parameters and adds the CA file to it: returns the URL to
/// connect with. `setting` names the variable the URL came from, for the error.
///
/// With a CA file (from the URL's `sslrootcert` or `BAZAAR_DATABASE_CA_FILE`) the certificate
/// is meant to be checked, so a missing `sslmode` becomes `verify-full` and `require` becomes
/// `verify-ca`, as libpq does with a root certificate; `disable`/`allow`/`prefer`, which would
/// ignore it, are refused rather than silently not verifying.
pub(crate) fn database_url(
    setting: &str,
    raw: &str,
    ca_file: Option<&Path>,
    errors: &mut Vec<String>,
) -> String {
    let Ok(mut url) = url::Url::parse(raw) else {
        errors.push(format!("{setting} is not a valid URL"));
        return raw.to_owned();
    };
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let mode = param("sslmode");
    let own_ca = param("sslrootcert");
    if let Some(mode) = &mode
        && !SSL_MODES.contains(&mode.as_str())
    {
        errors.push(format!(
            "{setting}: sslmode={mode} is not one of {}",
            SSL_MODES.join(", ")
        ));
        return raw.to_owned();
    }
    if let Some(path) = &own_ca {
        check_ca_file(&format!("{setting}'s sslrootcert"), Path::new(path), errors);
    }
    let ca = own_ca.map(PathBuf::from).or(ca_file.map(Path::to_owned));
    let Some(ca) = ca else {
        return raw.to_owned();
    };
    let verified_mode = match mode.as_deref() {
        None => "verify-full",
        Some("require") | Some("verify-ca") => "verify-ca",
        Some("verify-full") => "verify-full",
        Some(other) => {
            errors.push(format!(
                "{setting}: sslmode={other} does not check certificates, but a CA file is set \
                 (BAZAAR_DATABASE_CA_FILE or sslrootcert): use sslmode=verify-full"
            ));
            return raw.to_owned();
        }
    };
    let others: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "sslmode" && k != "sslrootcert")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(others)
        .append_pair("sslmode", verified_mode)
        .append_pair("sslrootcert", &ca.to_string_lossy());
    url.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca(dir: &Path) -> PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(
            &path,
            "-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        path
    }

    #[test]
    fn a_ca_file_turns_verification_on() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca(dir.path());
        let mut errors = Vec::new();
        let url = database_url("U", "postgres://u:p@db:5432/x", Some(&ca), &mut errors);
        assert!(url.contains("sslmode=verify-full"), "{url}");
        assert!(url.contains("sslrootcert=%2F"), "{url}");
        let url = database_url(
            "U",
            "postgres://db/x?sslmode=require&application_name=a",
            Some(&ca),
            &mut errors,
        );
        assert!(url.contains("application_name=a"), "{url}");
        assert!(url.contains("sslmode=verify-ca"), "{url}");
        assert!(errors.is_empty(), "{errors:?}");
        let plain = "postgres://db/x?sslmode=require";
        assert_eq!(database_url("U", plain, None, &mut errors), plain);
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn contradictions_and_typos_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca(dir.path());
        let mut errors = Vec::new();
        database_url(
            "U",
            "postgres://db/x?sslmode=prefer",
            Some(&ca),
            &mut errors,
        );
        database_url(
            "U",
            "postgres://db/x?sslmode=verify_full",
            None,
            &mut errors,
        );
        database_url(
            "U",
            "postgres://db/x?sslrootcert=/nonexistent",
            None,
            &mut errors,
        );
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].contains("sslmode=prefer"));
        assert!(errors[1].contains("verify_full"));
        assert!(errors[2].contains("sslrootcert"));
    }

    #[test]
    fn the_file_tables_reach_the_connections_and_secrets_stay_hidden() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca(dir.path());
        let file = dir.path().join("bazaar.toml");
        std::fs::write(
            &file,
            format!(
                "database_url = \"postgres://db.example.com/shop\"\n\
                 jwt_secret = \"0123456789abcdef0123456789abcdef\"\n\
                 [database]\nca_file = {ca:?}\n\
                 [redis]\nusername = \"svc\"\npassword = \"redis-hunter2\"\n\
                 [nats]\ntoken = \"nats-hunter2\"\nca_file = {ca:?}\n"
            ),
        )
        .unwrap();
        let args = crate::ConfigArgs {
            config: Some(file),
            data_dir: Some(dir.path().into()),
            ..Default::default()
        };
        let settings = crate::Settings::load(&args).unwrap();
        let bazaar_db::DbTarget::Postgres { url, .. } =
            settings.db_target(crate::ServiceName::new("orders"))
        else {
            panic!("not PostgreSQL");
        };
        assert!(url.contains("sslmode=verify-full&sslrootcert="), "{url}");
        let nats = settings.connections.nats_options();
        assert!(matches!(&nats.auth, NatsAuth::Token(t) if t == "nats-hunter2"));
        assert_eq!(nats.ca_file.as_deref(), Some(ca.as_path()));
        let redis = settings.connections.redis_options();
        assert_eq!(redis.username.as_deref(), Some("svc"));
        assert_eq!(redis.password.as_deref(), Some("redis-hunter2"));
        let printed = format!("{settings:?} {nats:?} {redis:?}");
        assert!(!printed.contains("hunter2"), "a secret printed: {printed}");
    }

    #[test]
    fn nats_takes_one_credential() {
        let dir = tempfile::tempdir().unwrap();
        let nats = FileNats {
            token: Some(Secret::new("t")),
            nkey_seed: Some(Secret::new("SUAB")),
            creds_file: Some(dir.path().join("missing.creds")),
            ca_file: Some(dir.path().join("missing.pem")),
            ..Default::default()
        };
        let mut errors = Vec::new();
        load(
            &FileDatabase::default(),
            &FileRedis::default(),
            &nats,
            &mut errors,
        );
        let all = errors.join("\n");
        for needle in [
            "BAZAAR_NATS_CA_FILE",
            "BAZAAR_NATS_TOKEN and BAZAAR_NATS_NKEY_SEED and BAZAAR_NATS_CREDS_FILE",
            "missing.creds",
        ] {
            assert!(all.contains(needle), "{needle} missing from {all}");
        }
        assert!(!all.contains("SUAB"), "a secret leaked into {all}");
    }
}
