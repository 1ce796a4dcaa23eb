//! Harness for the transport conformance suite: one fresh backend pair per test (embedded log +
//! SQLite, NATS JetStream + PostgreSQL, RabbitMQ in a vhost of its own + PostgreSQL, or Kafka
//! with a topic of its own + PostgreSQL), a
//! recording decorator over the real transport, and a configurable handler whose effects land
//! in the service database.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bazaar_bus::testing::TestVhost;
use bazaar_bus::{
    Acker, AmqpConfig, AmqpTransport, BusError, Consumer, ConsumerSpec, Delivery,
    EmbeddedTransport, Envelope, EventTx, Handler, HandlerError, KafkaConfig, KafkaTransport,
    NatsTransport, Outbox, OutboxRelay, RetryPolicy, StreamStats, Subscription, Transport,
};
use bazaar_db::{Db, DbTarget, Migration, sqlx};
use bazaar_testkit::TestDatabase;
use futures::FutureExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The default; `BAZAAR_TEST_NATS_URL` overrides it (and `BAZAAR_TEST_PG_URL` the PostgreSQL
/// server, see `bazaar_testkit::database`).
const NATS_URL: &str = "nats://127.0.0.1:4222";
/// The default; `BAZAAR_TEST_KAFKA_BROKERS` overrides it.
const KAFKA_BROKERS: &str = "127.0.0.1:9092";
const REACH_TIMEOUT: Duration = Duration::from_secs(3);
/// Whole-scenario bound, so a hang fails fast instead of stalling the run.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(20);
/// How long `eventually` waits for a condition.
const WAIT: Duration = Duration::from_secs(12);

pub const EVENT_TYPE: &str = "Tested";
/// A type no test handler applies: filtered consumers never receive it.
pub const OTHER_TYPE: &str = "Ignored";

const TEST_MIGRATIONS: &[Migration] = &[Migration {
    version: "0001_applied",
    // No uniqueness on event_id: a double effect must be visible, not swallowed.
    sql: "CREATE TABLE applied (
              n {{id_seq}},
              event_id TEXT NOT NULL,
              seq BIGINT NOT NULL,
              worker TEXT NOT NULL
          );",
}];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Embedded,
    Nats,
    Rabbitmq,
    Kafka,
}

/// One delivery as the consumer runtime received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub consumer: String,
    pub event_id: String,
    pub attempt: u32,
}

type Log = Arc<Mutex<Vec<Seen>>>;
/// The largest batch a subscription handed out so far.
type Largest = Arc<std::sync::atomic::AtomicUsize>;

/// What a scenario gets: a transport, a migrated service DB, an outbox relay over both.
#[derive(Clone)]
pub struct Ctx {
    /// The real transport behind a decorator that records every delivery it hands out.
    pub transport: Arc<dyn Transport>,
    pub db: Db,
    pub outbox: Outbox,
    pub relay: OutboxRelay,
    log: Log,
    largest: Largest,
    stop: CancellationToken,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

/// What must be torn down after the scenario, pass or fail.
#[allow(clippy::large_enum_variant)] // one per test
enum Cleanup {
    Embedded(#[allow(dead_code)] tempfile::TempDir),
    Nats {
        nats: NatsTransport,
        database: TestDatabase,
    },
    Rabbitmq {
        vhost: TestVhost,
        database: TestDatabase,
    },
    Kafka {
        kafka: KafkaTransport,
        database: TestDatabase,
    },
}

/// Runs `scenario` against a fresh backend of `kind`, bounded in time, and always cleans up.
pub async fn run<F, Fut>(kind: Kind, scenario: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some((transport, db, cleanup)) = (match kind {
        Kind::Embedded => Some(embedded().await),
        Kind::Nats => nats_and_postgres().await,
        Kind::Rabbitmq => rabbitmq_and_postgres().await,
        Kind::Kafka => kafka_and_postgres().await,
    }) else {
        return;
    };
    db.migrate("bus", bazaar_bus::MIGRATIONS)
        .await
        .expect("bus migrations");
    db.migrate("conformance", TEST_MIGRATIONS)
        .await
        .expect("test migrations");
    let log: Log = Arc::default();
    let largest: Largest = Arc::default();
    let transport: Arc<dyn Transport> = Arc::new(Recording {
        inner: transport,
        log: log.clone(),
        largest: largest.clone(),
    });
    let outbox = Outbox::new("conformance", db.clone());
    let ctx = Ctx {
        relay: outbox.relay(transport.clone()),
        outbox,
        transport,
        db,
        log,
        largest,
        stop: CancellationToken::new(),
        tasks: Arc::default(),
    };
    let outcome = tokio::time::timeout(
        SCENARIO_TIMEOUT,
        AssertUnwindSafe(scenario(ctx.clone())).catch_unwind(),
    )
    .await;

    ctx.stop.cancel();
    let tasks: Vec<_> = ctx.tasks.lock().unwrap().drain(..).collect();
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    ctx.db.close().await;
    drop(ctx);
    match cleanup {
        Cleanup::Embedded(_) => {}
        Cleanup::Nats { nats, database } => {
            nats.delete_stream().await.expect("delete test stream");
            database.drop().await.expect("drop test database");
        }
        Cleanup::Rabbitmq { vhost, database } => {
            vhost.delete().await;
            database.drop().await.expect("drop test database");
        }
        Cleanup::Kafka { kafka, database } => {
            kafka.delete_topic().await.expect("delete test topic");
            database.drop().await.expect("drop test database");
        }
    }
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("{kind:?} scenario did not finish within {SCENARIO_TIMEOUT:?}"),
    }
}

async fn embedded() -> (Arc<dyn Transport>, Db, Cleanup) {
    let dir = tempfile::tempdir().expect("tempdir");
    let transport = EmbeddedTransport::open(&dir.path().join("bus.db"))
        .await
        .expect("open embedded log");
    let db = Db::connect(&DbTarget::SqliteFile(dir.path().join("svc.db")))
        .await
        .expect("open service db");
    (Arc::new(transport), db, Cleanup::Embedded(dir))
}

/// Backends found unreachable in this test binary (by kind): later tests skip without waiting.
static UNREACHABLE: Mutex<Vec<(Kind, String)>> = Mutex::new(Vec::new());

/// Why `kind` was found unreachable earlier, if it was.
fn known_unreachable(kind: Kind) -> Option<String> {
    let known = UNREACHABLE.lock().unwrap();
    known
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, why)| why.clone())
}

/// Skips (or, with `BAZAAR_REQUIRE_BACKENDS=1`, fails) when a backend is not reachable, and
/// remembers it so that later tests of this binary skip without waiting.
fn unreachable_backend<T>(kind: Kind, what: String) -> Option<T> {
    UNREACHABLE.lock().unwrap().push((kind, what.clone()));
    bazaar_testkit::skip(what)
}

async fn nats_and_postgres() -> Option<(Arc<dyn Transport>, Db, Cleanup)> {
    if let Some(what) = known_unreachable(Kind::Nats) {
        return unreachable_backend(Kind::Nats, what);
    }
    let nats_url = std::env::var("BAZAAR_TEST_NATS_URL").unwrap_or_else(|_| NATS_URL.into());
    let (database, db) = postgres(Kind::Nats).await?;
    let namespace = format!("conf_{}", uuid::Uuid::now_v7().simple());
    let nats = match NatsTransport::connect_with_timeout(&nats_url, &namespace, REACH_TIMEOUT).await
    {
        Ok(nats) => nats,
        Err(e) => {
            database.drop().await.expect("drop test database");
            return unreachable_backend(
                Kind::Nats,
                format!("NATS JetStream backend at {nats_url} unreachable: {e}"),
            );
        }
    };
    Some((Arc::new(nats.clone()), db, Cleanup::Nats { nats, database }))
}

async fn rabbitmq_and_postgres() -> Option<(Arc<dyn Transport>, Db, Cleanup)> {
    if let Some(what) = known_unreachable(Kind::Rabbitmq) {
        return unreachable_backend(Kind::Rabbitmq, what);
    }
    let vhost = match TestVhost::create().await {
        Ok(vhost) => vhost,
        Err(e) => return unreachable_backend(Kind::Rabbitmq, format!("RabbitMQ backend: {e}")),
    };
    let Some((database, db)) = postgres(Kind::Rabbitmq).await else {
        vhost.delete().await;
        return None;
    };
    let config = AmqpConfig {
        url: vhost.url(),
        ca_file: None,
    };
    let namespace = format!("conf_{}", uuid::Uuid::now_v7().simple());
    let transport = AmqpTransport::connect_with_timeout(config, &namespace, REACH_TIMEOUT)
        .await
        .expect("RabbitMQ answers on the fresh vhost");
    Some((
        Arc::new(transport),
        db,
        Cleanup::Rabbitmq { vhost, database },
    ))
}

/// Kafka settings for tests: short heartbeats, so that a second member joins within a
/// fraction of a second, and a short start-up deadline.
pub fn kafka_config(brokers: &str) -> KafkaConfig {
    let mut config = KafkaConfig::new(brokers);
    config.session_timeout = Duration::from_secs(6);
    config.heartbeat_interval = Duration::from_millis(100);
    config.startup_timeout = REACH_TIMEOUT * 3;
    config
}

async fn kafka_and_postgres() -> Option<(Arc<dyn Transport>, Db, Cleanup)> {
    if let Some(what) = known_unreachable(Kind::Kafka) {
        return unreachable_backend(Kind::Kafka, what);
    }
    let brokers =
        std::env::var("BAZAAR_TEST_KAFKA_BROKERS").unwrap_or_else(|_| KAFKA_BROKERS.into());
    // librdkafka retries an absent broker quietly: ask the socket first, as the other kinds do.
    let first = brokers.split(',').next().unwrap_or_default().to_owned();
    let reached = tokio::time::timeout(REACH_TIMEOUT, tokio::net::TcpStream::connect(&first)).await;
    if !matches!(reached, Ok(Ok(_))) {
        return unreachable_backend(Kind::Kafka, format!("Kafka broker at {first} unreachable"));
    }
    let (database, db) = postgres(Kind::Kafka).await?;
    let namespace = format!("conf_{}", uuid::Uuid::now_v7().simple());
    let kafka = KafkaTransport::connect(kafka_config(&brokers), &namespace)
        .await
        .expect("Kafka creates the test topic");
    Some((
        Arc::new(kafka.clone()),
        db,
        Cleanup::Kafka { kafka, database },
    ))
}

/// A fresh PostgreSQL database and a migrated-to-be `Db` on it.
async fn postgres(kind: Kind) -> Option<(TestDatabase, Db)> {
    let database = match TestDatabase::create("bazaar_test").await {
        Ok(database) => database,
        Err(why) => return unreachable_backend(kind, why),
    };
    let db = Db::connect(&DbTarget::Postgres {
        url: database.url.clone(),
        schema: "svc".into(),
        pool_size: 4,
    })
    .await
    .expect("connect test database");
    Some((database, db))
}

impl Ctx {
    /// A consumer of this context's transport and DB with `handler`.
    pub fn consumer(&self, name: &str, handler: Arc<TestHandler>, policy: RetryPolicy) -> Consumer {
        Consumer::new(name, &self.outbox, self.transport.clone(), handler).with_policy(policy)
    }

    /// Creates the durable (so it sees everything published from now on), then runs the
    /// consumer loop until the scenario ends.
    pub async fn start(&self, consumer: &Consumer) {
        drop(
            self.transport
                .subscribe(&consumer.spec)
                .await
                .expect("create durable consumer"),
        );
        let task = tokio::spawn(consumer.clone().run(self.stop.child_token()));
        self.tasks.lock().unwrap().push(task);
    }

    /// Writes `events` to the outbox in one transaction per chunk, then flushes the relay.
    pub async fn publish_via_outbox(&self, events: &[Envelope], per_tx: usize) {
        for chunk in events.chunks(per_tx) {
            let mut tx = self.outbox.begin().await.unwrap();
            for e in chunk {
                tx.emit(e).await.unwrap();
            }
            tx.commit().await.unwrap();
        }
        self.relay.flush().await.expect("relay flush");
    }

    /// Rows of `applied` in insertion order: (event id, seq, worker).
    pub async fn applied(&self) -> Vec<(String, i64, String)> {
        sqlx::query_as("SELECT event_id, seq, worker FROM applied ORDER BY n")
            .fetch_all(self.db.pool())
            .await
            .unwrap()
    }

    /// How many effects `event_id` has had.
    pub async fn effects(&self, event_id: &str) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM applied WHERE event_id = $1")
            .bind(event_id)
            .fetch_one(self.db.pool())
            .await
            .unwrap()
    }

    pub async fn stats(&self) -> StreamStats {
        self.transport.stats().await.expect("transport stats")
    }

    /// True when the consumer has nothing pending or in flight on the broker.
    pub async fn idle(&self, consumer: &str) -> bool {
        let stats = self.stats().await;
        let c = stats
            .consumers
            .iter()
            .find(|c| c.name == consumer)
            .unwrap_or_else(|| {
                panic!("no consumer {consumer} in {stats:?}");
            });
        c.pending == 0 && c.ack_pending == 0
    }

    /// The most deliveries one `next_batch` call handed out.
    pub fn largest_batch(&self) -> usize {
        self.largest.load(Ordering::SeqCst)
    }

    /// Every delivery handed out so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    /// Attempt numbers of the deliveries of `event_id`, in order.
    pub fn attempts(&self, event_id: &str) -> Vec<u32> {
        self.seen()
            .into_iter()
            .filter(|s| s.event_id == event_id)
            .map(|s| s.attempt)
            .collect()
    }
}

/// Polls `check` until it holds, failing after [`WAIT`] (inside the scenario's bound, so
/// the failure names what it waited for).
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    bazaar_testkit::eventually_within(WAIT, what, check).await;
}

/// A test event; `payload` carries the handler's instructions (seq, fail_times, poison, ...).
pub fn event(aggregate: &str, payload: serde_json::Value) -> Envelope {
    Envelope::new("conformance", EVENT_TYPE, 1, aggregate, payload)
}

/// A decorator over the real transport recording each delivery it hands out.
struct Recording {
    inner: Arc<dyn Transport>,
    log: Log,
    largest: Largest,
}

#[async_trait]
impl Transport for Recording {
    async fn publish(&self, event: &Envelope) -> Result<(), BusError> {
        self.inner.publish(event).await
    }

    async fn publish_batch(&self, events: &[Envelope]) -> Result<(), BusError> {
        self.inner.publish_batch(events).await
    }

    async fn subscribe(&self, spec: &ConsumerSpec) -> Result<Box<dyn Subscription>, BusError> {
        let inner = self.inner.subscribe(spec).await?;
        Ok(Box::new(RecordingSubscription {
            inner,
            log: self.log.clone(),
            largest: self.largest.clone(),
            consumer: spec.name.clone(),
        }))
    }

    async fn ready(&self) -> bool {
        self.inner.ready().await
    }

    async fn stats(&self) -> Result<StreamStats, BusError> {
        self.inner.stats().await
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    async fn live(&self, source: &str) -> Result<bazaar_bus::LiveEvents, BusError> {
        self.inner.live(source).await
    }
}

struct RecordingSubscription {
    inner: Box<dyn Subscription>,
    log: Log,
    largest: Largest,
    consumer: String,
}

#[async_trait]
impl Subscription for RecordingSubscription {
    async fn next_batch(&mut self, max: usize) -> Result<Option<Vec<Delivery>>, BusError> {
        let batch = self.inner.next_batch(max).await?;
        let size = batch.as_ref().map_or(0, Vec::len);
        self.largest.fetch_max(size, Ordering::SeqCst);
        for d in batch.iter().flatten() {
            self.log.lock().unwrap().push(Seen {
                consumer: self.consumer.clone(),
                event_id: d.event.id.clone(),
                attempt: d.attempt,
            });
        }
        Ok(batch)
    }

    async fn ack_batch(&mut self, deliveries: Vec<Delivery>) -> Result<(), BusError> {
        self.inner.ack_batch(deliveries).await
    }
}

/// Settles a hand-made delivery by recording what the consumer decided.
#[derive(Clone, Default)]
pub struct RecordingAcker(pub Arc<Mutex<Vec<&'static str>>>);

#[async_trait]
impl Acker for RecordingAcker {
    async fn ack(&self) -> Result<(), BusError> {
        self.0.lock().unwrap().push("ack");
        Ok(())
    }

    async fn nak(&self, _delay: Duration) -> Result<(), BusError> {
        self.0.lock().unwrap().push("nak");
        Ok(())
    }
}

/// Applies `Tested` events by inserting into `applied`, following instructions in the payload:
/// `seq` (recorded), `fail_times` (Retry on the first n calls), `poison` (Retry until healed),
/// `reject` (always Reject), `slow_ms` (sleep inside the transaction).
pub struct TestHandler {
    pub worker: &'static str,
    pub healed: AtomicBool,
    calls: Mutex<HashMap<String, u32>>,
}

impl TestHandler {
    pub fn new(worker: &'static str) -> Arc<Self> {
        Arc::new(TestHandler {
            worker,
            healed: AtomicBool::new(false),
            calls: Mutex::default(),
        })
    }

    /// How many times the handler ran for `event_id` (the inbox skips it for duplicates).
    pub fn calls(&self, event_id: &str) -> u32 {
        self.calls
            .lock()
            .unwrap()
            .get(event_id)
            .copied()
            .unwrap_or(0)
    }
}

#[async_trait]
impl Handler for TestHandler {
    fn event_types(&self) -> &[&'static str] {
        &[EVENT_TYPE]
    }

    async fn handle(&self, tx: &mut EventTx, event: &Envelope) -> Result<(), HandlerError> {
        let p = &event.payload;
        let calls = {
            let mut calls = self.calls.lock().unwrap();
            let n = calls.entry(event.id.clone()).or_default();
            *n += 1;
            *n
        };
        if p["reject"].as_bool() == Some(true) {
            return Err(HandlerError::Reject(
                "rejected: malformed test order".into(),
            ));
        }
        if p["poison"].as_bool() == Some(true) && !self.healed.load(Ordering::SeqCst) {
            return Err(HandlerError::Retry(
                "poison event: downstream refuses it".into(),
            ));
        }
        if calls <= p["fail_times"].as_u64().unwrap_or(0) as u32 {
            return Err(HandlerError::Retry(format!("transient failure #{calls}")));
        }
        if let Some(ms) = p["slow_ms"].as_u64() {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        sqlx::query("INSERT INTO applied (event_id, seq, worker) VALUES ($1, $2, $3)")
            .bind(&event.id)
            .bind(p["seq"].as_i64().unwrap_or(-1))
            .bind(self.worker)
            .execute(&mut ***tx)
            .await?;
        Ok(())
    }
}
