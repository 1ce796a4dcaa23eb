//! TLS and credentials from the environment to a running `bazaar`, through the real binary:
//! a PostgreSQL CA file, Redis over TLS with a password, NATS over TLS with a token. Wrong
//! ones must stop start-up at once with a message naming the setting to fix.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use bazaar_testkit::Pki;
use bazaar_testkit::postgres::TlsCluster;

const JWT_SECRET: &str = "connectivity-test-secret-0123456789abcdef";

/// `bazaar <args>` with only the environment given here.
fn bazaar(data_dir: &Path, args: &[&str], env: &[(&str, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bazaar"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BAZAAR_DATA_DIR", data_dir)
        .env("BAZAAR_JWT_SECRET", JWT_SECRET)
        .env("BAZAAR_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs to the end, which must come within `limit` (a refusal is not retried for long).
fn finish(mut command: Command, limit: Duration) -> Output {
    let mut child = command.spawn().expect("spawn bazaar");
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!(
                "bazaar still running after {limit:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().expect("output")
}

/// Start-up that must fail, naming `setting`.
fn refused(command: Command, setting: &str) {
    let output = finish(command, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "started although it should not: {stderr}"
    );
    assert!(stderr.contains(setting), "{setting} not named in: {stderr}");
}

#[test]
fn postgres_ca_file_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let Some((cluster, pki, other)) = TlsCluster::for_localhost(dir.path()) else {
        return;
    };
    // No sslmode in the URL: the CA file alone makes it verify-full.
    let url = format!("postgres://postgres@localhost:{}/postgres", cluster.port);
    let migrate = |ca: &Path| {
        bazaar(
            dir.path(),
            &["migrate"],
            &[
                ("BAZAAR_DATABASE_URL", url.clone()),
                ("BAZAAR_DATABASE_CA_FILE", ca.display().to_string()),
            ],
        )
    };
    refused(migrate(&other.ca), "BAZAAR_DATABASE_CA_FILE");
    let output = finish(migrate(&pki.ca), Duration::from_secs(120));
    assert!(
        output.status.success(),
        "migrate with the right CA: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        cluster.log()
    );
}

/// Kills the server when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_and_nats_over_tls_with_credentials_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pki) = Pki::generate(dir.path(), "infra", "DNS:localhost,IP:127.0.0.1") else {
        return;
    };
    let Some(redis) = bazaar_testkit::redis::start_tls(&pki, &["--requirepass", "redis-pw"]) else {
        return;
    };
    let nats_config = format!(
        "authorization {{ token: nats-token }}\n{}",
        bazaar_testkit::nats::tls_block(&pki)
    );
    let Some(nats) = bazaar_testkit::nats::start(&nats_config) else {
        return;
    };
    let port = bazaar_testkit::free_port();
    let good = vec![
        ("BAZAAR_LISTEN", format!("127.0.0.1:{port}")),
        ("BAZAAR_NAMESPACE", format!("conn{}", std::process::id())),
        (
            "BAZAAR_REDIS_URL",
            format!("rediss://127.0.0.1:{}", redis.port),
        ),
        ("BAZAAR_REDIS_PASSWORD", "redis-pw".into()),
        ("BAZAAR_REDIS_CA_FILE", pki.ca.display().to_string()),
        ("BAZAAR_NATS_URL", format!("tls://127.0.0.1:{}", nats.port)),
        ("BAZAAR_NATS_TOKEN", "nats-token".into()),
        ("BAZAAR_NATS_CA_FILE", pki.ca.display().to_string()),
    ];
    let with = |name: &'static str, value: &str| {
        let mut env = good.clone();
        env.retain(|(k, _)| *k != name);
        env.push((name, value.to_owned()));
        bazaar(dir.path(), &["serve"], &env)
    };
    refused(
        with("BAZAAR_REDIS_PASSWORD", "wrong"),
        "BAZAAR_REDIS_PASSWORD",
    );
    refused(with("BAZAAR_NATS_TOKEN", "wrong"), "BAZAAR_NATS_TOKEN");

    let mut command = bazaar(dir.path(), &["serve"], &good);
    command.stdout(Stdio::null()).stderr(Stdio::null());
    let _server = Running(command.spawn().expect("spawn bazaar"));
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let ready = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await;
        if ready.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "bazaar not ready over TLS within 90 s\nredis: {}\nnats: {}",
            redis.log(),
            nats.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
