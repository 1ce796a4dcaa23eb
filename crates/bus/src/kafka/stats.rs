//! Figures for operators: the records in the topic (high minus low watermarks), and each
//! consumer group's lag, from its committed offsets against the high watermarks; plus what
//! this process holds (deliveries handed out, retries waiting in memory).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::config::{Context, KafkaConfig};
use super::subscription::ConsumerState;
use crate::broker::sanitize;
use crate::{BusError, ConsumerStats, StreamStats};

const TIMEOUT: Duration = Duration::from_secs(5);

/// Clients that read offsets without joining a group: one per group (a committed offset is
/// asked for as a member of that group id), kept for the next call.
pub struct Readers {
    config: Arc<KafkaConfig>,
    context: Context,
    clients: Mutex<HashMap<String, Arc<BaseConsumer<Context>>>>,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(format!("{what}: {e}"))
}

impl Readers {
    pub fn new(config: Arc<KafkaConfig>, context: Context) -> Readers {
        Readers {
            config,
            context,
            clients: Mutex::default(),
        }
    }

    fn reader(&self, group: &str) -> Result<Arc<BaseConsumer<Context>>, BusError> {
        let mut clients = self.clients.lock().expect("readers lock");
        if let Some(client) = clients.get(group) {
            return Ok(client.clone());
        }
        let client: BaseConsumer<Context> = self
            .config
            .client()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create_with_context(self.context.clone())
            .map_err(|e| unavailable("creating a Kafka offsets reader", e))?;
        let client = Arc::new(client);
        clients.insert(group.to_owned(), client.clone());
        Ok(client)
    }

    /// Consumer groups of `namespace` the broker knows, by group id.
    pub async fn groups(self: &Arc<Self>, namespace: &str) -> Result<Vec<String>, BusError> {
        let readers = self.clone();
        let prefix = format!("{namespace}.");
        blocking(move || readers.broker_groups(&prefix)).await
    }

    fn broker_groups(&self, prefix: &str) -> Result<Vec<String>, BusError> {
        let client = self.reader(&format!("{prefix}~stats"))?;
        let list = client
            .fetch_group_list(None, TIMEOUT)
            .map_err(|e| unavailable("listing consumer groups", e))?;
        Ok(list
            .groups()
            .iter()
            .map(|g| g.name().to_owned())
            .filter(|name| name.starts_with(prefix))
            .collect())
    }

    pub async fn stream(
        self: &Arc<Self>,
        namespace: &str,
        topic: &str,
        local: Vec<(String, Arc<ConsumerState>)>,
    ) -> Result<StreamStats, BusError> {
        let readers = self.clone();
        let (namespace, topic) = (namespace.to_owned(), topic.to_owned());
        blocking(move || readers.figures(&namespace, &topic, local)).await
    }

    fn figures(
        &self,
        namespace: &str,
        topic: &str,
        local: Vec<(String, Arc<ConsumerState>)>,
    ) -> Result<StreamStats, BusError> {
        let prefix = format!("{namespace}.");
        let meta = self.reader(&format!("{prefix}~stats"))?;
        let metadata = meta
            .fetch_metadata(Some(topic), TIMEOUT)
            .map_err(|e| unavailable("reading topic metadata", e))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic)
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        let mut marks = BTreeMap::new();
        for p in &partitions {
            let (low, high) = watermarks(&*meta, topic, *p)?;
            marks.insert(*p, (low, high));
        }
        let messages = marks
            .values()
            .map(|(low, high)| (high - low).max(0) as u64)
            .sum();

        // Consumer name -> this process's state of it, if any.
        let mut names: BTreeMap<String, Option<Arc<ConsumerState>>> = self
            .broker_groups(&prefix)?
            .into_iter()
            .filter(|g| !g.ends_with(".~stats"))
            .map(|g| (g[prefix.len()..].to_owned(), None))
            .collect();
        for (name, state) in local {
            names.insert(sanitize(&name), Some(state));
        }
        let mut consumers = Vec::with_capacity(names.len());
        for (name, state) in names {
            let reader = self.reader(&format!("{prefix}{name}"))?;
            let mut asked = TopicPartitionList::new();
            for p in &partitions {
                asked
                    .add_partition_offset(topic, *p, Offset::Invalid)
                    .map_err(|e| unavailable("listing partitions", e))?;
            }
            let committed = reader
                .committed_offsets(asked, TIMEOUT)
                .map_err(|e| unavailable("reading committed offsets", e))?;
            let mut lag = 0u64;
            for (p, (low, high)) in &marks {
                let from = committed
                    .find_partition(topic, *p)
                    .and_then(|e| match e.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    })
                    .unwrap_or(*low)
                    .max(*low);
                lag += (high - from).max(0) as u64;
            }
            let (delivered, held, redelivered, waiting) =
                state.as_ref().map_or((0, 0, 0, 0), |s| {
                    (
                        s.delivered.load(Ordering::Relaxed),
                        s.held.load(Ordering::Relaxed),
                        s.held_redeliveries.load(Ordering::Relaxed),
                        s.waiting(),
                    )
                });
            consumers.push(ConsumerStats {
                name,
                delivered,
                pending: lag,
                ack_pending: held + waiting,
                redelivered,
            });
        }
        Ok(StreamStats {
            name: topic.to_owned(),
            messages,
            consumers,
        })
    }
}

/// The low and high watermarks of one partition. Retried for a few seconds while the broker
/// answers "not leader": a topic just created has leaders in its metadata a moment before
/// the partitions take offset requests.
pub fn watermarks<C: Consumer<X>, X: ConsumerContext>(
    client: &C,
    topic: &str,
    partition: i32,
) -> Result<(i64, i64), BusError> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match client.fetch_watermarks(topic, partition, TIMEOUT) {
            Ok(marks) => return Ok(marks),
            Err(e)
                if Instant::now() < deadline
                    && matches!(
                        e.rdkafka_error_code(),
                        Some(
                            RDKafkaErrorCode::NotLeaderForPartition
                                | RDKafkaErrorCode::LeaderNotAvailable
                                | RDKafkaErrorCode::UnknownTopicOrPartition
                        )
                    ) =>
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(unavailable("reading watermarks", e)),
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BusError> + Send + 'static,
) -> Result<T, BusError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| unavailable("Kafka figures task", e))?
}
