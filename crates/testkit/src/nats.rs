//! A throwaway `nats-server` with JetStream on a free port, configured by a file the test
//! writes (authorization blocks, TLS), so credentials and certificates are checked for real.

use std::process::Command;

use crate::{Daemon, Pki};

/// Debian's nats-server, or the one `BAZAAR_TEST_NATS_SERVER_BIN` names.
fn binary() -> Option<std::path::PathBuf> {
    let configured = std::env::var("BAZAAR_TEST_NATS_SERVER_BIN").ok();
    let mut candidates: Vec<&str> = configured.iter().map(String::as_str).collect();
    candidates.extend(["/usr/sbin/nats-server", "/usr/bin/nats-server"]);
    crate::binary("nats-server", &candidates)
}

/// Starts nats-server with `config` (nats-server's configuration syntax) after a JetStream
/// block and the port. `None` after a skip when nats-server is not installed.
pub fn start(config: &str) -> Option<Daemon> {
    let binary = binary()?;
    let dir = tempfile::tempdir().expect("nats dir");
    let port = crate::free_port();
    let file = dir.path().join("nats.conf");
    std::fs::write(
        &file,
        format!(
            "listen: 127.0.0.1:{port}\njetstream {{ store_dir: {:?} }}\n{config}\n",
            dir.path().join("js").display().to_string()
        ),
    )
    .expect("nats config");
    let mut command = Command::new(binary);
    command.arg("-c").arg(&file);
    Some(Daemon::start(command, port, dir))
}

/// The configuration block that makes the server speak TLS only, with `pki`'s certificate.
pub fn tls_block(pki: &Pki) -> String {
    format!(
        "tls {{ cert_file: {:?}, key_file: {:?} }}",
        pki.cert.display().to_string(),
        pki.key.display().to_string()
    )
}
