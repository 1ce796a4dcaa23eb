//! Live feeds over RabbitMQ: each listener gets an exclusive, auto-deleted queue of its own
//! bound to one source's events, so every gateway replica sees every event; nothing durable,
//! no acks. A feed re-binds a new queue after the connection comes back (events published in
//! between are missed, as the contract allows).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::Channel;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::link::{Link, unavailable};
use super::topology::{self, Names};
use crate::broker::sanitize;
use crate::{BusError, Envelope, LiveEvents};

/// Events buffered for a slow listener before newer ones are dropped.
const BUFFER: usize = 1024;
const RETRY: Duration = Duration::from_millis(500);

/// Starts a feed of `source`'s events; bound before it returns, so nothing published
/// afterwards is missed while the connection holds.
pub async fn live(link: Arc<Link>, names: Names, source: &str) -> Result<LiveEvents, BusError> {
    let key = format!("{}.*", sanitize(source));
    let bound = bind(&link, &names, &key).await?;
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(async move {
        let channel = forward(link, names, key, bound, tx).await;
        // The listener left: closing the channel cancels the consumer, which deletes the queue.
        let _ = channel.close(200, "live feed ended".into()).await;
    });
    Ok(Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|event| (event, rx))
    })))
}

async fn bind(
    link: &Link,
    names: &Names,
    key: &str,
) -> Result<(Channel, lapin::Consumer), BusError> {
    let channel = link.channel().await?;
    topology::declare_exchange(&channel, names).await?;
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|e| unavailable("declaring a live queue", e))?;
    channel
        .queue_bind(
            queue.name().clone(),
            names.exchange().into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| unavailable("binding a live queue", e))?;
    let consumer = channel
        .basic_consume(
            queue.name().clone(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|e| unavailable("consuming a live queue", e))?;
    Ok((channel, consumer))
}

/// Hands events to the listener until it goes away, re-binding after connection loss;
/// returns the channel in use then.
async fn forward(
    link: Arc<Link>,
    names: Names,
    key: String,
    (mut channel, mut consumer): (Channel, lapin::Consumer),
    tx: mpsc::Sender<Envelope>,
) -> Channel {
    loop {
        loop {
            let message = tokio::select! {
                _ = tx.closed() => return channel,
                message = consumer.next() => message,
            };
            let Some(Ok(message)) = message else { break };
            if let Ok(event) = serde_json::from_slice::<Envelope>(&message.data)
                && let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(event)
            {
                return channel;
            }
        }
        debug!(%key, "live feed interrupted; re-binding");
        (channel, consumer) = loop {
            if tx.is_closed() {
                return channel;
            }
            tokio::time::sleep(RETRY).await;
            match bind(&link, &names, &key).await {
                Ok(bound) => break bound,
                Err(e) => warn!(%key, error = %e, "live feed not re-bound yet"),
            }
        };
    }
}
