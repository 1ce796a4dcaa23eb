//! Dev-only test kit shared by every crate's tests: throwaway PostgreSQL, Redis and NATS
//! servers started on free ports (with TLS certificates generated at test time), and the
//! house rule for a missing backend: say SKIPPED, or fail under `BAZAAR_REQUIRE_BACKENDS=1`.

pub mod nats;
pub mod pki;
pub mod postgres;
pub mod redis;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub use pki::Pki;

/// True when CI asked for every backend (`BAZAAR_REQUIRE_BACKENDS=1`).
pub fn backends_required() -> bool {
    std::env::var("BAZAAR_REQUIRE_BACKENDS").as_deref() == Ok("1")
}

/// A backend is missing: fails under `BAZAAR_REQUIRE_BACKENDS=1`, else prints SKIPPED (past
/// the test harness's capture, so a skip is never silent) and gives `None` to return with.
pub fn skip<T>(what: impl std::fmt::Display) -> Option<T> {
    if backends_required() {
        panic!("{what}, and BAZAAR_REQUIRE_BACKENDS=1");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED: {what}");
    None
}

/// The first of `candidates` that is an executable file, or a skip naming them.
pub fn binary(what: &str, candidates: &[&str]) -> Option<PathBuf> {
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .or_else(|| skip(format!("{what} not installed (looked for {candidates:?})")))
}

/// A port nothing listens on right now. Another process could take it before the server
/// does; the servers started here fail loudly then rather than talk to a stranger.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Waits until something accepts connections on `port`.
pub fn wait_for_port(port: u16, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "server for port {port} exited ({status}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "nothing listens on {port} after 20 s: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// A server process that is killed when the test drops it, with its files.
pub struct Daemon {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts `command` (its output going to `dir/server.log`) and waits for `port`.
    pub fn start(mut command: Command, port: u16, dir: tempfile::TempDir) -> Daemon {
        let log_path = dir.path().join("server.log");
        let log = std::fs::File::create(&log_path).expect("server log");
        let mut child = command
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        wait_for_port(port, &mut child, &log_path);
        Daemon { child, port, dir }
    }

    /// What the server wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `command`, panicking with its output when it fails.
pub(crate) fn run(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
