//! Test harness: starts a real bazaar process-in-a-task on port 0 against one of four backend
//! sets, and talks to it over HTTP like a client.
//!
//! - `Backend::Embedded`: SQLite files, the embedded event log and the in-memory cache in a
//!   fresh temporary directory.
//! - `Backend::Real`: a fresh PostgreSQL database, a random NATS/Redis namespace.
//! - `Backend::Rabbitmq`: the same with RabbitMQ for events, in a virtual host of its own.
//! - `Backend::Kafka`: the same with Kafka for events (a topic and groups of the namespace).
//!
//! When a backend cannot be reached the test is skipped with a message, unless
//! `BAZAAR_REQUIRE_BACKENDS=1` (CI), where it fails.
#![allow(dead_code)]

pub mod kafka;
pub mod processes;
pub mod shop;
pub mod ws;

use std::time::Duration;

use bazaar::App;
use bazaar_bus::testing::TestVhost;
use bazaar_runtime::{ConfigArgs, Secret, Settings};
use bazaar_testkit::TestDatabase;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub const NATS_URL: &str = "nats://127.0.0.1:4222";
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";
pub const KAFKA_BROKERS: &str = "127.0.0.1:9092";
/// PostgreSQL connections per service of a test app (the pipeline keeps 2 more): four tests
/// at once, some with a process per service, stay well under the server's 100.
pub const TEST_POOL_SIZE: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    /// PostgreSQL + NATS JetStream + Redis.
    Real,
    /// PostgreSQL + RabbitMQ + Redis.
    Rabbitmq,
    /// PostgreSQL + Kafka + Redis.
    Kafka,
}

/// Where a test app keeps its state, so a second app can be started on the same state.
pub struct Environment {
    pub backend: Backend,
    pub data_dir: tempfile::TempDir,
    pub database: Option<TestDatabase>,
    pub namespace: String,
    /// The RabbitMQ virtual host of a `Backend::Rabbitmq` environment.
    pub vhost: Option<TestVhost>,
}

impl Environment {
    /// A fresh environment, or `None` (after saying so) when the backend is unavailable.
    pub async fn new(backend: Backend) -> Option<Environment> {
        let namespace = format!("t{}", uuid::Uuid::now_v7().simple());
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut vhost = None;
        let database = match backend {
            Backend::Embedded => None,
            Backend::Real | Backend::Rabbitmq | Backend::Kafka => {
                let reachable = match backend {
                    Backend::Rabbitmq => match real_backends_reachable(false).await {
                        Ok(()) => TestVhost::create().await.map(|v| vhost = Some(v)),
                        Err(why) => Err(why),
                    },
                    Backend::Kafka => match real_backends_reachable(false).await {
                        Ok(()) => reach(KAFKA_BROKERS).await.map_err(|e| format!("Kafka {e}")),
                        Err(why) => Err(why),
                    },
                    _ => real_backends_reachable(true).await,
                };
                if let Err(why) = reachable {
                    return bazaar_testkit::skip(format!(
                        "{} backend suite: {why}",
                        backend.label()
                    ));
                }
                let database = TestDatabase::create_named(format!("bazaar_test_{namespace}"))
                    .await
                    .expect("postgres");
                Some(database)
            }
        };
        Some(Environment {
            backend,
            data_dir,
            database,
            namespace,
            vhost,
        })
    }

    /// The environment variable and URL of this environment's event broker (shared backends).
    pub fn bus(&self) -> (&'static str, String) {
        match (&self.vhost, self.backend) {
            (Some(vhost), _) => ("BAZAAR_AMQP_URL", vhost.url()),
            (None, Backend::Kafka) => ("BAZAAR_KAFKA_BROKERS", KAFKA_BROKERS.into()),
            (None, _) => ("BAZAAR_NATS_URL", NATS_URL.into()),
        }
    }

    /// Kafka settings for test apps: heartbeats short enough that every consumer group of a
    /// starting app forms within a fraction of a second.
    pub fn kafka_config() -> bazaar_bus::KafkaConfig {
        let mut config = bazaar_bus::KafkaConfig::new(KAFKA_BROKERS);
        config.session_timeout = Duration::from_secs(6);
        config.heartbeat_interval = Duration::from_millis(100);
        config.startup_timeout = Duration::from_secs(20);
        config
    }

    /// Settings for an app in this environment.
    pub fn settings(&self) -> Settings {
        let args = ConfigArgs {
            data_dir: Some(self.data_dir.path().into()),
            listen: Some("127.0.0.1:0".into()),
            ..Default::default()
        };
        let mut settings = Settings::load(&args).expect("settings");
        settings.namespace = self.namespace.clone();
        settings.admin_email = Some("admin@test.local".into());
        settings.admin_password = Some(Secret::new("admin-password-1"));
        settings.login_limit_per_ip = 10_000;
        settings.login_limit_per_account = 10_000;
        settings.register_limit_per_ip = 10_000;
        // Several test apps share one PostgreSQL server (max_connections 100 by default).
        settings.database_pool_size = TEST_POOL_SIZE;
        settings.max_open_orders_per_customer = 10_000;
        if let Some(db) = &self.database {
            settings.database_url = Some(Secret::new(db.url.clone()));
            match (&self.vhost, self.backend) {
                (Some(vhost), _) => settings.amqp_url = Some(Secret::new(vhost.url())),
                (None, Backend::Kafka) => settings.kafka = Some(Self::kafka_config()),
                (None, _) => settings.nats_url = Some(NATS_URL.into()),
            }
            settings.redis_url = Some(Secret::new(REDIS_URL));
            settings.jwt_secret =
                Secret::new(format!("test-secret-{}-0123456789abcdef", self.namespace));
        }
        settings
    }

    /// Starts an app with every service.
    pub async fn start(&self) -> TestApp {
        self.start_with(self.settings()).await
    }

    pub async fn start_with(&self, settings: Settings) -> TestApp {
        let app = App::build(settings, &bazaar::registry::names())
            .await
            .expect("app builds");
        let port = app.port();
        let stop = app.stop_token();
        let task = tokio::spawn(app.run_until_stopped());
        TestApp {
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            stop,
            task: Some(task),
            child: None,
        }
    }

    /// Starts the real `bazaar serve` binary as a child process on this environment's state
    /// and waits until it is ready. Kill it with [`TestApp::kill9`].
    pub async fn start_process(&self) -> TestApp {
        self.start_process_with(&[], None).await
    }

    /// [`Self::start_process`] with more environment variables, and its standard output (the
    /// log) written to `log` instead of discarded.
    pub async fn start_process_with(
        &self,
        extra_env: &[(&str, String)],
        log: Option<&std::path::Path>,
    ) -> TestApp {
        let port = bazaar_testkit::free_port();
        let settings = self.settings();
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_bazaar"));
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BAZAAR_LISTEN", format!("127.0.0.1:{port}"))
            .env("BAZAAR_DATA_DIR", self.data_dir.path())
            .env("BAZAAR_NAMESPACE", &self.namespace)
            .env("BAZAAR_ADMIN_EMAIL", "admin@test.local")
            .env("BAZAAR_ADMIN_PASSWORD", "admin-password-1")
            .env("BAZAAR_LOG", "warn")
            .env("BAZAAR_REGISTER_LIMIT_PER_IP", "10000")
            .env("BAZAAR_DATABASE_POOL_SIZE", TEST_POOL_SIZE.to_string())
            .env("BAZAAR_MAX_OPEN_ORDERS_PER_CUSTOMER", "10000")
            .stdout(match log {
                Some(path) => std::fs::File::create(path).expect("log file").into(),
                None => std::process::Stdio::null(),
            });
        command.envs(extra_env.iter().map(|(k, v)| (*k, v.as_str())));
        if let Some(url) = &settings.database_url {
            let (bus_var, bus_url) = self.bus();
            command
                .env("BAZAAR_DATABASE_URL", url.expose())
                .env(bus_var, bus_url)
                .env("BAZAAR_REDIS_URL", REDIS_URL)
                .env("BAZAAR_JWT_SECRET", settings.jwt_secret.expose());
        }
        let child = command.spawn().expect("spawn bazaar");
        let app = TestApp {
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            stop: CancellationToken::new(),
            task: None,
            child: Some(child),
        };
        eventually(Duration::from_secs(60), || async {
            let ready = app.http.get(format!("{}/readyz", app.base)).send().await;
            ready.ok().filter(|r| r.status() == 200).map(|_| ())
        })
        .await;
        app
    }

    /// Removes what the environment created outside the temp directory.
    pub async fn cleanup(self) {
        if let Some(db) = self.database {
            let _ = db.drop().await;
            if self.backend == Backend::Kafka
                && let Ok(Ok(kafka)) = tokio::time::timeout(
                    Duration::from_secs(10),
                    bazaar_bus::KafkaTransport::connect(Self::kafka_config(), &self.namespace),
                )
                .await
            {
                let _ = kafka.delete_topic().await;
            }
            if self.vhost.is_none()
                && self.backend != Backend::Kafka
                && let Ok(nats) = bazaar_bus::NatsTransport::connect_with_timeout(
                    NATS_URL,
                    &self.namespace,
                    Duration::from_secs(3),
                )
                .await
            {
                let _ = nats.delete_stream().await;
            }
            if let Ok(redis) = bazaar_cache::RedisCache::connect(REDIS_URL, &self.namespace).await {
                let _ = redis.flush_namespace().await;
            }
        }
        if let Some(vhost) = self.vhost {
            vhost.delete().await;
        }
    }
}

impl Backend {
    fn label(self) -> &'static str {
        match self {
            Backend::Embedded => "embedded",
            Backend::Real => "PostgreSQL+NATS+Redis",
            Backend::Rabbitmq => "PostgreSQL+RabbitMQ+Redis",
            Backend::Kafka => "PostgreSQL+Kafka+Redis",
        }
    }
}

/// Whether `addr` accepts a TCP connection within 2 s.
async fn reach(addr: &'static str) -> Result<(), String> {
    tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| format!("{addr} did not answer"))?
        .map(|_| ())
        .map_err(|e| format!("{addr} unreachable ({e})"))
}

/// PostgreSQL and Redis, and NATS when `nats` (RabbitMQ is checked by making its vhost).
async fn real_backends_reachable(nats: bool) -> Result<(), String> {
    reach("127.0.0.1:5432")
        .await
        .map_err(|e| format!("PostgreSQL {e}"))?;
    if nats {
        reach("127.0.0.1:4222")
            .await
            .map_err(|e| format!("NATS {e}"))?;
    }
    reach("127.0.0.1:6379")
        .await
        .map_err(|e| format!("Redis {e}"))?;
    Ok(())
}

/// A running app and an HTTP client for it.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    child: Option<std::process::Child>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl TestApp {
    /// Runs a GraphQL operation and returns the whole response body.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .http
            .post(format!("{}/graphql", self.base))
            .json(&json!({"query": query, "variables": variables}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        response.json().await.expect("json body")
    }

    /// Runs an operation that must succeed and returns its `data`.
    pub async fn ok(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let body = self.gql(token, query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    /// Runs an operation that must fail with `code` and returns the first error.
    pub async fn err(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
        code: &str,
    ) -> Value {
        let body = self.gql(token, query, variables).await;
        let error = body["errors"][0].clone();
        assert_eq!(
            error["extensions"]["code"], code,
            "expected {code}: {body:#}"
        );
        error
    }

    /// Runs an operation that must fail with `code` and a message containing `needle`.
    pub async fn err_with(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
        code: &str,
        needle: &str,
    ) -> Value {
        let error = self.err(token, query, variables, code).await;
        let message = error["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "expected {needle:?} in {error}");
        error
    }

    /// The sum of a Prometheus counter's series whose line contains `label` (e.g.
    /// `outcome="hit"`), read from /metrics.
    pub async fn counter(&self, name: &str, label: &str) -> f64 {
        let metrics = self.get("/metrics").await.text().await.unwrap_or_default();
        metrics
            .lines()
            .filter(|l| l.starts_with(name) && l.contains(label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request")
    }

    /// Registers a customer and returns (access token, refresh token, user id).
    pub async fn register(&self, email: &str, name: &str) -> (String, String, String) {
        let data = self
            .ok(
                None,
                REGISTER,
                json!({"input": {"email": email, "password": "correct-horse-1", "name": name}}),
            )
            .await;
        let auth = &data["register"];
        (
            str(&auth["accessToken"]),
            str(&auth["refreshToken"]),
            str(&auth["user"]["id"]),
        )
    }

    /// Signs in as the bootstrap admin and returns the access token.
    pub async fn admin_token(&self) -> String {
        let data = self
            .ok(
                None,
                LOGIN,
                json!({"email": "admin@test.local", "password": "admin-password-1"}),
            )
            .await;
        str(&data["login"]["accessToken"])
    }

    /// Kills the child process with SIGKILL: no shutdown code runs.
    pub fn kill9(mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9");
            child.wait().expect("reap");
        }
    }

    /// Sends the child process SIGTERM (a graceful shutdown) and waits until it exits;
    /// returns whether it exited successfully.
    pub async fn terminate(mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            panic!("not a child process");
        };
        // SAFETY: kill(2) on the pid of a child we have not reaped yet.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        tokio::task::spawn_blocking(move || child.wait().expect("wait"))
            .await
            .expect("waiter")
            .success()
    }

    /// Shuts the app down gracefully and waits for it.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("app task").expect("app stopped cleanly");
        }
    }
}

pub const REGISTER: &str = "mutation($input: RegisterInput!) { register(input: $input) { accessToken refreshToken expiresIn user { id email name role } } }";
pub const LOGIN: &str = "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { accessToken refreshToken user { id role } } }";

pub fn str(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_owned()
}

/// Polls `check` until it returns `Some`, failing after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    bazaar_testkit::until(timeout, check).await
}

/// Declares one test body run on every backend set: `<name>::embedded`,
/// `<name>::postgres_nats_redis`, `<name>::postgres_rabbitmq_redis` and
/// `<name>::postgres_kafka_redis`.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            use $crate::support::{Backend, Environment};

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn embedded() {
                if let Some(env) = Environment::new(Backend::Embedded).await {
                    super::$name(&env).await;
                    env.cleanup().await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres_nats_redis() {
                if let Some(env) = Environment::new(Backend::Real).await {
                    super::$name(&env).await;
                    env.cleanup().await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres_rabbitmq_redis() {
                if let Some(env) = Environment::new(Backend::Rabbitmq).await {
                    super::$name(&env).await;
                    env.cleanup().await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres_kafka_redis() {
                if let Some(env) = Environment::new(Backend::Kafka).await {
                    super::$name(&env).await;
                    env.cleanup().await;
                }
            }
        }
    };
}
