//! A private Apache Kafka broker for tests that stop and restart it: single-node KRaft on two
//! free ports and a temporary log directory, run from the jars `scripts/backends` installed
//! (`BAZAAR_TEST_KAFKA_LIBS` overrides where they are), as that script's `start_kafka` does.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

const LIBS: &str = "/var/tmp/bazaar-backends/kafka/libs-4.4.0";
/// A JVM starting on two busy cores takes a while.
const START_TIMEOUT: Duration = Duration::from_secs(90);

pub struct KafkaBroker {
    pub port: u16,
    libs: PathBuf,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl KafkaBroker {
    /// Formats a fresh log directory and starts the broker; `None` (after a skip message, or
    /// a failure under `BAZAAR_REQUIRE_BACKENDS=1`) without Java or the Kafka jars.
    pub async fn start() -> Option<KafkaBroker> {
        let libs = PathBuf::from(std::env::var("BAZAAR_TEST_KAFKA_LIBS").unwrap_or(LIBS.into()));
        if !libs.is_dir() {
            return bazaar_testkit::skip(format!("Kafka jars not found in {}", libs.display()));
        }
        bazaar_testkit::binary("java (a private Kafka broker)", &["/usr/bin/java"])?;
        let (port, controller) = (bazaar_testkit::free_port(), bazaar_testkit::free_port());
        let dir = tempfile::tempdir().expect("temp dir");
        let conf = dir.path().join("server.properties");
        std::fs::write(
            &conf,
            format!(
                "process.roles=broker,controller\nnode.id=1\n\
                 controller.quorum.voters=1@127.0.0.1:{controller}\n\
                 listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}\n\
                 advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n\
                 controller.listener.names=CONTROLLER\ninter.broker.listener.name=PLAINTEXT\n\
                 listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
                 log.dirs={}\noffsets.topic.replication.factor=1\n\
                 transaction.state.log.replication.factor=1\ntransaction.state.log.min.isr=1\n\
                 group.initial.rebalance.delay.ms=0\n",
                dir.path().join("data").display()
            ),
        )
        .expect("write server.properties");
        let mut broker = KafkaBroker {
            port,
            libs,
            dir,
            child: None,
        };
        let cluster_id = broker.java("kafka.tools.StorageTool", &["random-uuid"]);
        let cluster_id = String::from_utf8_lossy(&cluster_id.stdout)
            .trim()
            .to_owned();
        let conf = conf.display().to_string();
        let format = broker.java(
            "kafka.tools.StorageTool",
            &["format", "-t", &cluster_id, "-c", &conf],
        );
        assert!(
            format.status.success(),
            "formatting the Kafka log dir failed: {}",
            String::from_utf8_lossy(&format.stderr)
        );
        broker.restart().await;
        Some(broker)
    }

    fn classpath(&self) -> String {
        format!("{}/*", self.libs.display())
    }

    fn java(&self, main: &str, args: &[&str]) -> std::process::Output {
        Command::new("java")
            .args(["-cp", &self.classpath(), main])
            .args(args)
            .output()
            .expect("run java")
    }

    /// `host:port` for `BAZAAR_KAFKA_BROKERS`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9 kafka");
            child.wait().expect("reap kafka");
        }
    }

    /// Starts the broker (again) on its ports and log directory; returns once it listens.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "Kafka is already running");
        let log = std::fs::File::create(self.dir.path().join("server.log")).expect("log file");
        let child = Command::new("java")
            .args([
                "-Xms128m",
                "-Xmx512m",
                "-cp",
                &self.classpath(),
                "kafka.Kafka",
            ])
            .arg(self.dir.path().join("server.properties"))
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .expect("start kafka");
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", self.port)).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "Kafka did not listen on {} within {START_TIMEOUT:?}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for KafkaBroker {
    fn drop(&mut self) {
        self.kill9();
    }
}
