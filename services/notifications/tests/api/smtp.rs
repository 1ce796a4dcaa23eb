//! A real SMTP server for the tests: aiosmtpd (Python) run as a child process on a chosen
//! port, storing each message it accepts in a Maildir we read back. Killed on drop.
//!
//! When aiosmtpd is not installed the tests that need it print `SKIPPED` and pass, unless
//! `BAZAAR_REQUIRE_BACKENDS=1`, where they fail (CI runs `pip install aiosmtpd`).

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One message as the server stored it.
#[derive(Debug, Clone)]
pub struct Received {
    /// Header names lower-cased; the last value of each.
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }
}

pub struct SmtpServer {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Mutex<Option<Child>>,
}

/// True when aiosmtpd can be imported; otherwise says so (or fails under
/// `BAZAAR_REQUIRE_BACKENDS=1`).
pub fn aiosmtpd_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let _: Option<()> = bazaar_testkit::skip(
            "notifications SMTP tests: python3 cannot import aiosmtpd \
             (install it with `pip install aiosmtpd`)",
        );
    }
    ok
}

impl SmtpServer {
    /// A server on a fresh port, not started yet; `None` without aiosmtpd.
    pub fn reserve() -> Option<SmtpServer> {
        if !aiosmtpd_available() {
            return None;
        }
        Some(SmtpServer {
            port: bazaar_testkit::free_port(),
            dir: tempfile::tempdir().expect("temp dir"),
            child: Mutex::new(None),
        })
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    fn maildir(&self) -> PathBuf {
        self.dir.path().join("maildir")
    }

    /// Starts the server and waits until it accepts connections.
    pub async fn start(&self) {
        let log_path = self.dir.path().join("aiosmtpd.log");
        let log = std::fs::File::create(&log_path).expect("server log");
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(self.maildir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start aiosmtpd");
        *self.child.lock().expect("child") = Some(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let started = Instant::now();
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            let exited = self
                .child
                .lock()
                .expect("child")
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || started.elapsed() > Duration::from_secs(15) {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!(
                    "aiosmtpd did not start on port {} ({exited:?}):\n{log}",
                    self.port
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the server (if running) and waits for it to exit.
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().expect("child").take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every message received so far.
    pub fn messages(&self) -> Vec<Received> {
        let Ok(entries) = std::fs::read_dir(self.maildir().join("new")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| std::fs::read(e.path()).ok())
            .map(|bytes| parse(&String::from_utf8_lossy(&bytes)))
            .collect()
    }

    /// How many messages arrived with each Message-ID.
    pub fn message_ids(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for m in self.messages() {
            *counts.entry(m.header("message-id").to_owned()).or_insert(0) += 1;
        }
        counts
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Splits an RFC 5322 message into unfolded headers and its body.
pub fn parse(text: &str) -> Received {
    let text = text.replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((text.as_str(), ""));
    let mut headers = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(name) = &last
                && let Some(value) = headers.get_mut(name)
            {
                let value: &mut String = value;
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("not a header line: {line:?}"));
        let name = name.trim().to_ascii_lowercase();
        headers.insert(name.clone(), value.trim().to_owned());
        last = Some(name);
    }
    Received {
        headers,
        body: body.to_owned(),
    }
}
