//! The stream's figures for operators (`eventStreams`, the consumer-lag gauges): events
//! stored, and per durable consumer what it was handed, holds and still has to take.

use std::time::Duration;

use futures::TryStreamExt;

use super::{NatsTransport, unavailable};
use crate::{BusError, ConsumerStats, StreamStats};

const STATS_TIMEOUT: Duration = Duration::from_secs(10);

/// The stream's message count and its consumers' figures, sorted by consumer name.
pub(super) async fn stats(transport: &NatsTransport) -> Result<StreamStats, BusError> {
    let fetch = async {
        let stream = transport
            .js
            .get_stream(&transport.stream)
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
            name: transport.stream.clone(),
            messages,
            consumers,
        })
    };
    tokio::time::timeout(STATS_TIMEOUT, fetch)
        .await
        .map_err(|_| BusError::Unavailable("stats timed out".into()))?
}
