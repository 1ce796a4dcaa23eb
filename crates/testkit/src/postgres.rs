//! A throwaway PostgreSQL cluster with TLS on, serving a certificate the test generated: the
//! machine's shared server has a self-signed certificate for its host name, which no CA of
//! ours can verify, so `verify-ca`/`verify-full` need a server of their own.
//!
//! `initdb` refuses to run as root. As root (as on the CI and development machines) the
//! cluster is created and run as the `postgres` system user through `runuser`, and its
//! directory and key are handed to that user; as anyone else it runs as the caller.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Pki;

/// A running cluster on 127.0.0.1; stopped (immediately) and deleted when dropped.
pub struct TlsCluster {
    pub port: u16,
    bin: PathBuf,
    data: PathBuf,
    owner: Option<(u32, u32)>,
    _dir: tempfile::TempDir,
}

/// The newest PostgreSQL's binaries under Debian's /usr/lib/postgresql/<version>/bin.
fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// The uid and gid of the `postgres` user.
fn postgres_user() -> Option<(u32, u32)> {
    let name = CString::new("postgres").ok()?;
    // SAFETY: getpwnam returns null or a pointer to static storage, read at once.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        return None;
    }
    // SAFETY: non-null, as checked.
    Some(unsafe { ((*entry).pw_uid, (*entry).pw_gid) })
}

impl TlsCluster {
    /// Creates and starts a cluster whose certificate is `pki`'s, or skips (see
    /// [`crate::skip`]) when PostgreSQL's server binaries are not installed.
    pub fn start(pki: &Pki) -> Option<TlsCluster> {
        let Some(bin) = bin_dir() else {
            return crate::skip("PostgreSQL server binaries (initdb, pg_ctl) not installed");
        };
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let owner = match (root, postgres_user()) {
            (false, _) => None,
            (true, Some(ids)) => Some(ids),
            (true, None) => {
                return crate::skip("running as root without a postgres user for initdb");
            }
        };
        let dir = tempfile::tempdir().expect("cluster dir");
        let data = dir.path().join("data");
        let cert = dir.path().join("server.pem");
        let key = dir.path().join("server.key");
        std::fs::copy(&pki.cert, &cert).expect("copy certificate");
        std::fs::copy(&pki.key, &key).expect("copy key");
        // PostgreSQL refuses a key others can read.
        set_mode(&key, 0o600);
        if let Some((uid, gid)) = owner {
            for path in [dir.path(), &cert, &key] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown to postgres");
            }
        }
        let cluster = TlsCluster {
            port: crate::free_port(),
            bin,
            data,
            owner,
            _dir: dir,
        };
        crate::run(
            cluster
                .command("initdb")
                .arg("-D")
                .arg(&cluster.data)
                .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C"])
                .arg("--no-sync"),
        );
        let options = format!(
            "-c port={} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
             -c ssl=on -c ssl_cert_file={} -c ssl_key_file={} -c fsync=off \
             -c max_connections=30 -c shared_buffers=16MB",
            cluster.port,
            cluster.dir().display(),
            cert.display(),
            key.display()
        );
        crate::run(
            cluster
                .command("pg_ctl")
                .args(["start", "-w", "-t", "60", "-D"])
                .arg(&cluster.data)
                .arg("-l")
                .arg(cluster.dir().join("server.log"))
                .args(["-o", &options]),
        );
        Some(cluster)
    }

    /// A cluster whose certificate names `localhost` only (so 127.0.0.1 passes verify-ca but
    /// not verify-full), generated into `dir` with its CA, and a stranger CA that did not sign
    /// it: what a test of certificate checks needs. `None` after a skip.
    pub fn for_localhost(dir: &Path) -> Option<(TlsCluster, Pki, Pki)> {
        let (pki, stranger) = Pki::with_stranger(dir, "pg", "DNS:localhost")?;
        let cluster = TlsCluster::start(&pki)?;
        Some((cluster, pki, stranger))
    }

    fn dir(&self) -> &Path {
        self.data.parent().expect("data dir has a parent")
    }

    /// One of the cluster's programs, run as the cluster's owner.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match self.owner {
            Some(_) => {
                let mut command = Command::new("runuser");
                command.args(["-u", "postgres", "--"]).arg(path);
                command
            }
            None => Command::new(path),
        }
    }

    /// What the server logged (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("server.log")).unwrap_or_default()
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["stop", "-m", "immediate", "-D"])
            .arg(&self.data)
            .output();
    }
}
