//! A throwaway certificate authority and one server certificate it signed, made with the
//! `openssl` command at test time, so no key is ever committed.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A CA and a server certificate (P-256) in PEM files under one directory.
pub struct Pki {
    /// The CA certificate a client trusts.
    pub ca: PathBuf,
    /// The server's certificate and private key.
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    /// Generates into `dir` a CA named `name` and a server certificate for `alt_names`
    /// (`subjectAltName` syntax: `DNS:localhost,IP:127.0.0.1`). `None` (after a skip
    /// message) when `openssl` is not installed.
    pub fn generate(dir: &Path, name: &str, alt_names: &str) -> Option<Pki> {
        crate::binary(
            "openssl (certificates for the TLS tests)",
            &["/usr/bin/openssl"],
        )?;
        let file = |suffix: &str| dir.join(format!("{name}-{suffix}"));
        let (ca, ca_key) = (file("ca.pem"), file("ca.key"));
        let (cert, key, csr, ext) = (
            file("server.pem"),
            file("server.key"),
            file("server.csr"),
            file("server.ext"),
        );
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        crate::run(
            Command::new("openssl")
                .args(["req", "-x509", "-days", "2"])
                .args(ec)
                .arg("-keyout")
                .arg(&ca_key)
                .arg("-out")
                .arg(&ca)
                .args(["-subj", &format!("/CN={name} test CA")])
                .args(["-addext", "basicConstraints=critical,CA:TRUE"])
                .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]),
        );
        crate::run(
            Command::new("openssl")
                .arg("req")
                .args(ec)
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&csr)
                .args(["-subj", "/CN=bazaar test server"]),
        );
        std::fs::write(
            &ext,
            format!(
                "subjectAltName={alt_names}\nbasicConstraints=CA:FALSE\n\
                 keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
            ),
        )
        .expect("extensions file");
        crate::run(
            Command::new("openssl")
                .args(["x509", "-req", "-days", "2", "-set_serial", "2"])
                .arg("-in")
                .arg(&csr)
                .arg("-CA")
                .arg(&ca)
                .arg("-CAkey")
                .arg(&ca_key)
                .arg("-extfile")
                .arg(&ext)
                .arg("-out")
                .arg(&cert),
        );
        Some(Pki { ca, cert, key })
    }

    /// [`Pki::generate`] for `name`, and a stranger CA beside it that signed nothing the
    /// server shows: the CA a client must refuse. `None` after a skip.
    pub fn with_stranger(dir: &Path, name: &str, alt_names: &str) -> Option<(Pki, Pki)> {
        let pki = Pki::generate(dir, name, alt_names)?;
        let stranger = Pki::generate(dir, "stranger", alt_names)?;
        Some((pki, stranger))
    }
}

/// Certificates for a server on this machine (`localhost`, `127.0.0.1`) and a stranger CA, in
/// a temporary directory that lives as long as this value does.
pub struct LocalPki {
    /// The CA and certificate the server uses.
    pub server: Pki,
    /// A CA that signed nothing the server shows: the one a client must refuse.
    pub stranger: Pki,
    _dir: tempfile::TempDir,
}

impl LocalPki {
    /// Generates them with CA name `name`; `None` after a skip (see [`Pki::generate`]).
    pub fn new(name: &str) -> Option<LocalPki> {
        let dir = tempfile::tempdir().expect("a temporary directory for certificates");
        let (server, stranger) =
            Pki::with_stranger(dir.path(), name, "DNS:localhost,IP:127.0.0.1")?;
        Some(LocalPki {
            server,
            stranger,
            _dir: dir,
        })
    }
}
