//! Live feeds over Kafka: a consumer outside any group, assigned every partition of the topic
//! at its current end, keeps the events of one source; nothing committed, so every gateway
//! replica gets every event. librdkafka keeps the position across broker restarts, so a feed
//! misses nothing while it lives (the contract allows it to).

use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tracing::warn;

use super::config::{Context, KafkaConfig};
use crate::{BusError, Envelope, LiveEvents};

/// Events buffered for a slow listener before newer ones are dropped.
const BUFFER: usize = 1024;
const TIMEOUT: Duration = Duration::from_secs(5);

fn unavailable(what: &str, e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(format!("{what}: {e}"))
}

/// Starts a feed of `source`'s events, positioned before it returns at the end of every
/// partition, so nothing published afterwards is missed.
pub async fn live(
    config: &KafkaConfig,
    context: Context,
    namespace: &str,
    topic: &str,
    source: &str,
) -> Result<LiveEvents, BusError> {
    // A group id of its own that never joins or commits: librdkafka wants one on a consumer.
    let group = format!("{namespace}.~live.{}", uuid::Uuid::now_v7().simple());
    let consumer: StreamConsumer<Context> = config
        .client()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create_with_context(context)
        .map_err(|e| unavailable("creating a Kafka live consumer", e))?;
    let (consumer, topic) = tokio::task::spawn_blocking({
        let topic = topic.to_owned();
        move || -> Result<_, BusError> {
            let metadata = consumer
                .fetch_metadata(Some(&topic), TIMEOUT)
                .map_err(|e| unavailable("reading topic metadata", e))?;
            let mut list = TopicPartitionList::new();
            for p in metadata
                .topics()
                .iter()
                .filter(|t| t.name() == topic)
                .flat_map(|t| t.partitions())
            {
                let (_, high) = super::stats::watermarks(&consumer, &topic, p.id())?;
                list.add_partition_offset(&topic, p.id(), Offset::Offset(high))
                    .map_err(|e| unavailable("positioning a live feed", e))?;
            }
            consumer
                .assign(&list)
                .map_err(|e| unavailable("assigning a live feed", e))?;
            Ok((consumer, topic))
        }
    })
    .await
    .map_err(|e| unavailable("live feed set-up", e))??;
    let source = source.to_owned();
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                _ = tx.closed() => return,
                message = consumer.recv() => message,
            };
            let message = match message {
                Ok(message) => message,
                Err(e) => {
                    warn!(%topic, error = %e, "live feed interrupted");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            let from_source = message.headers().is_none_or(|h| {
                h.iter()
                    .find(|h| h.key == "source")
                    .is_none_or(|h| h.value == Some(source.as_bytes()))
            });
            if !from_source {
                continue;
            }
            if let Some(Ok(event)) = message.payload().map(serde_json::from_slice::<Envelope>)
                && event.source == source
                && let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(event)
            {
                return;
            }
        }
    });
    Ok(Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|event| (event, rx))
    })))
}
