//! Microservices mode for tests: every service as its own `bazaar serve --services <name>`
//! process on loopback against PostgreSQL + NATS JetStream + Redis, replicas behind a tiny
//! round-robin TCP balancer, an optional private NATS server, and SIGKILL/restart of any of
//! them for fault injection. Every child is killed when its owner is dropped.
#![allow(dead_code)]

use std::fs::OpenOptions;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::shop::{ORDER, PLACE_ORDER, address};
use super::{Environment, REDIS_URL, TEST_POOL_SIZE, TestApp, str};

const BIN: &str = env!("CARGO_BIN_EXE_bazaar");
pub const NATS_SERVER: &str = "/usr/sbin/nats-server";
/// How long a (re)started process may take to answer /readyz 200 on a busy 2-core machine.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// Runs a test body with an upper bound, so a hang fails instead of stalling the suite; the
/// body's processes are killed when it is dropped.
pub async fn bounded<F: std::future::Future<Output = ()>>(limit: Duration, body: F) {
    if tokio::time::timeout(limit, body).await.is_err() {
        panic!("test exceeded its time bound of {limit:?}");
    }
}

/// One `bazaar serve --services <service>` child process on a fixed port, restartable.
pub struct Process {
    pub name: String,
    pub service: &'static str,
    pub port: u16,
    env: Vec<(String, String)>,
    data_dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Process {
    fn new(name: &str, service: &'static str, env: Vec<(String, String)>) -> Process {
        Process {
            name: name.to_owned(),
            service,
            port: bazaar_testkit::free_port(),
            env,
            data_dir: tempfile::tempdir().expect("temp dir"),
            child: None,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        let child = Command::new(BIN)
            .args(["serve", "--services", self.service, "--listen"])
            .arg(format!("127.0.0.1:{}", self.port))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("BAZAAR_DATA_DIR", self.data_dir.path())
            // Logs go to stdout: keep them, with stderr, for the failure report.
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("spawn bazaar");
        self.child = Some(child);
    }

    /// SIGKILL: no shutdown code runs. Waits until the process is gone (its port is free).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9");
            child.wait().expect("reap");
        }
    }

    /// Waits for /readyz 200; fails early, with the process's log, if it exits.
    async fn wait_ready(&mut self, http: &reqwest::Client) {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "{} exited ({status}) before it was ready:\n{}",
                    self.name,
                    self.log_tail(30)
                );
            }
            let probe = http
                .get(format!("{}/readyz", self.url()))
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            let last = match probe {
                Ok(r) if r.status() == 200 => return,
                Ok(r) => format!("{}: {}", r.status(), r.text().await.unwrap_or_default()),
                Err(e) => e.to_string(),
            };
            assert!(
                Instant::now() < deadline,
                "{} not ready within {READY_WITHIN:?} (last /readyz: {last}):\n{}",
                self.name,
                self.log_tail(30)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_path(&self) -> std::path::PathBuf {
        self.data_dir.path().join("output.log")
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A round-robin TCP balancer on loopback: each accepted connection goes to the next backend
/// that accepts a connection, so a killed replica is skipped and a restarted one rejoins.
pub struct Balancer {
    pub port: u16,
    served: Arc<Vec<AtomicUsize>>,
    task: tokio::task::JoinHandle<()>,
}

impl Balancer {
    pub async fn start(backends: Vec<u16>) -> Balancer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind balancer");
        let port = listener.local_addr().expect("balancer address").port();
        let served: Arc<Vec<AtomicUsize>> =
            Arc::new(backends.iter().map(|_| AtomicUsize::new(0)).collect());
        let counts = served.clone();
        let task = tokio::spawn(async move {
            let mut next = 0usize;
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let (first, backends, counts) = (next, backends.clone(), counts.clone());
                next = next.wrapping_add(1);
                tokio::spawn(async move {
                    for i in 0..backends.len() {
                        let k = (first + i) % backends.len();
                        if let Ok(mut outbound) =
                            TcpStream::connect(("127.0.0.1", backends[k])).await
                        {
                            counts[k].fetch_add(1, Ordering::Relaxed);
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            return;
                        }
                    }
                    // No backend: dropping the connection is what a dead service looks like.
                });
            }
        });
        Balancer { port, served, task }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Connections handed to each backend so far.
    pub fn served(&self) -> Vec<usize> {
        self.served
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A NATS server of the test's own (JetStream, file store in a temp dir), restartable on the
/// same port and store.
pub struct NatsServer {
    pub port: u16,
    store: tempfile::TempDir,
    child: Option<Child>,
}

impl NatsServer {
    pub async fn start() -> NatsServer {
        let mut server = NatsServer {
            port: bazaar_testkit::free_port(),
            store: tempfile::tempdir().expect("temp dir"),
            child: None,
        };
        server.restart().await;
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9 nats-server");
            child.wait().expect("reap nats-server");
        }
    }

    /// Starts the server (again) on its port and store; returns once it accepts connections.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "nats-server is already running");
        let child = Command::new(NATS_SERVER)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {NATS_SERVER}: {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "{NATS_SERVER} did not listen on {} within 10 s",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Every service in its own process: users, catalog-1, catalog-2, orders-1, orders-2 and the
/// gateway. Replicas sit behind balancers; `gateway` is a client of the gateway process.
pub struct Cluster {
    pub gateway: TestApp,
    pub procs: Processes,
}

/// The processes of a [`Cluster`], separate from `gateway` so a test can drive load through
/// the gateway while it kills and restarts processes.
pub struct Processes {
    list: Vec<Process>,
    pub catalog_lb: Balancer,
    pub orders_lb: Balancer,
    jwt_secret: String,
    http: reqwest::Client,
}

impl Cluster {
    /// [`Cluster::start_on`] this environment's event broker.
    pub async fn start(env: &Environment) -> Cluster {
        let (bus_var, bus_url) = env.bus();
        Cluster::start_on(env, bus_var, &bus_url).await
    }

    /// Migrates once, then starts every process with its event broker at `bus_url` (given by
    /// `bus_var`, e.g. `BAZAAR_NATS_URL`) and waits until each is ready.
    pub async fn start_on(env: &Environment, bus_var: &str, bus_url: &str) -> Cluster {
        Self::start_with(env, bus_var, bus_url, &[]).await
    }

    /// [`Cluster::start_on`] with more environment variables for every process.
    pub async fn start_with(
        env: &Environment,
        bus_var: &str,
        bus_url: &str,
        extra_env: &[(&str, String)],
    ) -> Cluster {
        let settings = env.settings();
        let database_url = settings
            .database_url
            .as_ref()
            .expect("a PostgreSQL environment");
        let jwt_secret = settings.jwt_secret.expose().to_owned();
        let pool_size = TEST_POOL_SIZE.to_string();
        let base: Vec<(String, String)> = [
            ("BAZAAR_DATABASE_URL", database_url.expose()),
            (bus_var, bus_url),
            ("BAZAAR_REDIS_URL", REDIS_URL),
            ("BAZAAR_NAMESPACE", env.namespace.as_str()),
            ("BAZAAR_JWT_SECRET", jwt_secret.as_str()),
            ("BAZAAR_ADMIN_EMAIL", "admin@test.local"),
            ("BAZAAR_ADMIN_PASSWORD", "admin-password-1"),
            ("BAZAAR_LOGIN_LIMIT_PER_ACCOUNT", "10000"),
            ("BAZAAR_LOGIN_LIMIT_PER_IP", "10000"),
            ("BAZAAR_REGISTER_LIMIT_PER_IP", "10000"),
            ("BAZAAR_MAX_OPEN_ORDERS_PER_CUSTOMER", "10000"),
            ("BAZAAR_DATABASE_POOL_SIZE", pool_size.as_str()),
            ("BAZAAR_LOG", "warn"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .chain(extra_env.iter().map(|(k, v)| (k.to_string(), v.clone())))
        .collect();
        migrate(&base).await;

        let with = |extra: &[(&str, String)]| {
            let mut env = base.clone();
            env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
            env
        };
        let users = Process::new("users", "users", base.clone());
        let catalog =
            [1, 2].map(|i| Process::new(&format!("catalog-{i}"), "catalog", base.clone()));
        let catalog_lb = Balancer::start(catalog.iter().map(|p| p.port).collect()).await;
        // Orders prices from the catalogue and reads shipping addresses from users.
        let orders_env = with(&[
            ("BAZAAR_CATALOG_URL", catalog_lb.url()),
            ("BAZAAR_USERS_URL", users.url()),
        ]);
        let orders =
            [1, 2].map(|i| Process::new(&format!("orders-{i}"), "orders", orders_env.clone()));
        let orders_lb = Balancer::start(orders.iter().map(|p| p.port).collect()).await;
        let notifications = Process::new("notifications", "notifications", base.clone());
        let recommendations = Process::new("recommendations", "recommendations", base.clone());
        let gateway = Process::new(
            "gateway",
            "gateway",
            with(&[
                ("BAZAAR_USERS_URL", users.url()),
                ("BAZAAR_CATALOG_URL", catalog_lb.url()),
                ("BAZAAR_ORDERS_URL", orders_lb.url()),
                ("BAZAAR_NOTIFICATIONS_URL", notifications.url()),
                ("BAZAAR_RECOMMENDATIONS_URL", recommendations.url()),
            ]),
        );
        let gateway_url = gateway.url();
        let mut list = vec![users];
        list.extend(catalog);
        list.extend(orders);
        list.push(notifications);
        list.push(recommendations);
        list.push(gateway);
        let mut procs = Processes {
            list,
            catalog_lb,
            orders_lb,
            jwt_secret,
            http: reqwest::Client::new(),
        };
        // They find each other lazily, so they can start together.
        for p in &mut procs.list {
            p.spawn();
        }
        let http = procs.http.clone();
        futures::future::join_all(procs.list.iter_mut().map(|p| p.wait_ready(&http))).await;
        Cluster {
            gateway: TestApp {
                base: gateway_url,
                http: reqwest::Client::new(),
                stop: CancellationToken::new(),
                task: None,
                child: None,
            },
            procs,
        }
    }
}

async fn migrate(env: &[(String, String)]) {
    let run = tokio::process::Command::new(BIN)
        .arg("migrate")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("BAZAAR_DATA_DIR", std::env::temp_dir())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("bazaar migrate finished within 60 s")
        .expect("run bazaar migrate");
    assert!(
        out.status.success(),
        "bazaar migrate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Processes {
    fn get(&mut self, name: &str) -> &mut Process {
        self.list
            .iter_mut()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no process {name}"))
    }

    pub fn port(&self, name: &str) -> u16 {
        self.list
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no process {name}"))
            .port
    }

    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}", self.port(name))
    }

    pub fn kill9(&mut self, name: &str) {
        self.get(name).kill9();
    }

    /// Sends `signal` (e.g. `STOP`, `CONT`) to a running process.
    pub fn signal(&mut self, name: &str, signal: &str) {
        let pid = self.get(name).child.as_ref().expect("running").id();
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("kill(1)");
        assert!(sent.success(), "kill -{signal} {name}");
    }

    /// Starts a killed process again on its port and waits until it is ready.
    pub async fn restart(&mut self, name: &str) {
        let http = self.http.clone();
        let p = self.get(name);
        p.spawn();
        p.wait_ready(&http).await;
    }

    /// Starts several killed processes together and waits until all are ready.
    pub async fn restart_all(&mut self, names: &[&str]) {
        let http = self.http.clone();
        let mut procs: Vec<&mut Process> = self
            .list
            .iter_mut()
            .filter(|p| names.contains(&p.name.as_str()))
            .collect();
        assert_eq!(procs.len(), names.len(), "unknown process in {names:?}");
        for p in &mut procs {
            p.spawn();
        }
        futures::future::join_all(procs.into_iter().map(|p| p.wait_ready(&http))).await;
    }

    /// The credential services present to each other (derived from the JWT secret).
    pub fn service_token(&self) -> String {
        bazaar_auth::service_token(self.jwt_secret.as_bytes())
    }

    /// The value of a counter or gauge summed over the series of `metric` whose labels contain
    /// every one of `labels` (e.g. `type="OrderPlaced"`), as `name`'s /metrics shows it.
    pub async fn metric(&self, name: &str, metric: &str, labels: &[&str]) -> f64 {
        let text = self
            .http
            .get(format!("{}/metrics", self.url(name)))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        sum_metric(&text, metric, labels)
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for p in &self.list {
                eprintln!("--- last log lines of {} ---\n{}", p.name, p.log_tail(15));
            }
        }
    }
}

fn sum_metric(text: &str, metric: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let name = series.split('{').next()?;
            (name == metric && labels.iter().all(|want| series.contains(want)))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// Places an order with an idempotency key; `Err` is the first GraphQL error.
pub async fn try_place(
    app: &TestApp,
    token: &str,
    lines: &[(&str, i64)],
    key: &str,
) -> Result<Value, Value> {
    let items: Vec<Value> = lines
        .iter()
        .map(|(p, q)| json!({"productId": p, "quantity": q}))
        .collect();
    let input = json!({"items": items, "shippingAddress": address(), "idempotencyKey": key});
    let body = app
        .gql(Some(token), PLACE_ORDER, json!({"input": input}))
        .await;
    match body.get("errors") {
        Some(errors) => Err(errors[0].clone()),
        None => Ok(body["data"]["placeOrder"].clone()),
    }
}

/// Places an order like a careful client: a SERVICE_UNAVAILABLE answer is retried with the same
/// idempotency key until acknowledged (any other error fails the test). Returns the order id
/// and how many attempts failed.
pub async fn place_acked(
    app: &TestApp,
    token: &str,
    lines: &[(&str, i64)],
    key: &str,
    within: Duration,
) -> (String, u32) {
    let deadline = Instant::now() + within;
    let mut failures = 0;
    loop {
        match try_place(app, token, lines, key).await {
            Ok(order) => return (str(&order["id"]), failures),
            Err(e) if e["extensions"]["code"] == "SERVICE_UNAVAILABLE" => {
                failures += 1;
                assert!(
                    Instant::now() < deadline,
                    "order {key} not acknowledged within {within:?}: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("placing order {key} failed: {e:#}"),
        }
    }
}

/// Waits until every order left PENDING (one shared deadline) and returns them.
pub async fn settle_all(
    app: &TestApp,
    token: &str,
    ids: &[String],
    within: Duration,
) -> Vec<Value> {
    let deadline = Instant::now() + within;
    let mut settled = Vec::new();
    for id in ids {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "orders still PENDING after {within:?}");
        settled.push(app.settled_within(token, id, left).await);
    }
    settled
}

/// Units of `product` held by the orders among `orders` that are CONFIRMED or later.
pub fn held_units(orders: &[Value], product: &str) -> i64 {
    orders
        .iter()
        .filter(|o| {
            matches!(
                o["status"].as_str(),
                Some("CONFIRMED" | "PAID" | "SHIPPED" | "DELIVERED")
            )
        })
        .flat_map(|o| o["items"].as_array().cloned().unwrap_or_default())
        .filter(|i| i["productId"] == product)
        .map(|i| i["quantity"].as_i64().expect("quantity"))
        .sum()
}

/// Every order ends CONFIRMED or REJECTED (nothing else happened to them in these tests).
pub fn assert_settled_outcomes(orders: &[Value]) {
    for o in orders {
        assert!(
            matches!(o["status"].as_str(), Some("CONFIRMED" | "REJECTED")),
            "unexpected outcome: {o}"
        );
    }
}

/// The number of orders the system holds (admin view).
pub async fn order_count(app: &TestApp, admin: &str) -> i64 {
    app.ok(
        Some(admin),
        "{ orders(first: 1) { totalCount } }",
        json!({}),
    )
    .await["orders"]["totalCount"]
        .as_i64()
        .expect("totalCount")
}

/// Waits until the catalogue (through the gateway, past its cache) shows `want` units.
pub async fn stock_becomes(app: &TestApp, product: &str, want: i64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let now = app.stock(product).await;
        if now == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "stock of {product} is {now}, expected {want} (within {within:?})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The order as its owner sees it.
pub async fn order(app: &TestApp, token: &str, id: &str) -> Value {
    app.ok(Some(token), ORDER, json!({"id": id})).await["order"].clone()
}
