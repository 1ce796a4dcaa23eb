//! A throwaway `redis-server` on a free port: with TLS (a generated certificate) or a password
//! and ACL users, nothing persisted.

use std::process::Command;

use crate::{Daemon, Pki};

const CANDIDATES: &[&str] = &["/usr/bin/redis-server", "/usr/local/bin/redis-server"];

/// Starts `redis-server` with `extra` arguments (e.g. `--requirepass`), listening in plain
/// TCP on the returned daemon's port. `None` after a skip when Redis is not installed.
pub fn start(extra: &[&str]) -> Option<Daemon> {
    let binary = crate::binary("redis-server", CANDIDATES)?;
    let dir = tempfile::tempdir().expect("redis dir");
    let port = crate::free_port();
    let mut command = Command::new(binary);
    command
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(base_args(&dir))
        .args(extra);
    Some(Daemon::start(command, port, dir))
}

/// Starts `redis-server` with only a TLS port, serving `pki`'s certificate (the Debian build
/// links OpenSSL). Clients are not asked for certificates of their own.
pub fn start_tls(pki: &Pki, extra: &[&str]) -> Option<Daemon> {
    let binary = crate::binary("redis-server", CANDIDATES)?;
    let dir = tempfile::tempdir().expect("redis dir");
    let port = crate::free_port();
    let mut command = Command::new(binary);
    command
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
        ])
        .arg("--tls-cert-file")
        .arg(&pki.cert)
        .arg("--tls-key-file")
        .arg(&pki.key)
        .arg("--tls-ca-cert-file")
        .arg(&pki.ca)
        .args(["--tls-auth-clients", "no"])
        .args(base_args(&dir))
        .args(extra);
    Some(Daemon::start(command, port, dir))
}

fn base_args(dir: &tempfile::TempDir) -> Vec<String> {
    vec![
        "--save".into(),
        "".into(),
        "--appendonly".into(),
        "no".into(),
        "--dir".into(),
        dir.path().display().to_string(),
    ]
}
