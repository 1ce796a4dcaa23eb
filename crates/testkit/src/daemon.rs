//! Server processes a test starts and owns: free ports, waiting for a port to accept, a
//! daemon killed (with its files) when the test drops it, and running a set-up command.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where test servers listen: below Linux's ephemeral range (32768–60999 by default). A port
/// the kernel hands out for `bind(0)` there can go to another test's `bind(0)` again as soon
/// as it is released, and to the local end of any outgoing connection, before the server that
/// was meant to have it binds it.
const PORTS: std::ops::Range<u16> = 20_000..32_000;

/// Ports this test process has handed out already: never twice.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A port nothing listens on right now, outside the ephemeral range (see [`PORTS`]), searched
/// from a random place so tests running at once rarely try the same ones. Another process
/// could still take it before the server does; the servers started here fail loudly then
/// rather than talk to a stranger.
pub fn free_port() -> u16 {
    let span = u64::from(PORTS.end - PORTS.start);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::from(d.subsec_nanos()))
        .unwrap_or_default();
    let start = (nanos ^ u64::from(std::process::id()).wrapping_mul(0x9E37_79B9)) % span;
    let mut handed_out = HANDED_OUT.lock().expect("ports handed out");
    let port = (0..span)
        .map(|i| PORTS.start + ((start + i) % span) as u16)
        .filter(|port| !handed_out.contains(port))
        .find(|&port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
        .expect("a free port");
    handed_out.insert(port);
    port
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
