//! Test support shared by every crate's RabbitMQ tests (feature `testing`): a throwaway virtual
//! host per test, made and removed with `rabbitmqctl`, so tests never see each other's queues.

use std::time::Duration;

/// The broker the tests use; `BAZAAR_TEST_AMQP_HOST` (host:port) overrides it.
pub const AMQP_HOST: &str = "127.0.0.1:5672";

/// A virtual host that exists until [`TestVhost::delete`].
pub struct TestVhost {
    pub name: String,
}

impl TestVhost {
    /// Creates `bazaar_test_<uuid>` with every permission for `guest`; `Err` says why not
    /// (broker unreachable, `rabbitmqctl` missing).
    pub async fn create() -> Result<TestVhost, String> {
        let host = host();
        let reach = tokio::net::TcpStream::connect(&host);
        match tokio::time::timeout(Duration::from_secs(2), reach).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("RabbitMQ at {host} unreachable ({e})")),
            Err(_) => return Err(format!("RabbitMQ at {host} did not answer")),
        }
        let name = format!("bazaar_test_{}", uuid::Uuid::now_v7().simple());
        rabbitmqctl(&["add_vhost", &name]).await?;
        let vhost = TestVhost { name };
        rabbitmqctl(&[
            "set_permissions",
            "-p",
            &vhost.name,
            "guest",
            ".*",
            ".*",
            ".*",
        ])
        .await?;
        Ok(vhost)
    }

    /// The URL of this vhost as `guest`.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@{}/{}", host(), self.name)
    }

    /// Removes the vhost with every queue and exchange in it.
    pub async fn delete(self) {
        if let Err(e) = rabbitmqctl(&["delete_vhost", &self.name]).await {
            eprintln!("could not delete test vhost {}: {e}", self.name);
        }
    }
}

fn host() -> String {
    std::env::var("BAZAAR_TEST_AMQP_HOST").unwrap_or_else(|_| AMQP_HOST.into())
}

/// Runs `rabbitmqctl` with `args`, quietly; `Err` with its output when it fails.
pub async fn rabbitmqctl(args: &[&str]) -> Result<(), String> {
    let output = tokio::process::Command::new("rabbitmqctl")
        .arg("-q")
        .args(args)
        .output()
        .await
        .map_err(|e| format!("cannot run rabbitmqctl: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "rabbitmqctl {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}
