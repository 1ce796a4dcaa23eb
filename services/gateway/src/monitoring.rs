//! Event-stream monitoring for operators (admins only): per-consumer delivery figures from the
//! broker, every service's dead letters, and redriving one.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::{Context, ID, Object, SimpleObject};
use bazaar_bus::{DeadLetter, Transport};
use bazaar_contracts::client::DeadLetterClient;
use chrono::{DateTime, Utc};

use crate::context::{admin, principal};
use crate::error::{GqlResult, OrGql, gql};

/// What monitoring reads: the broker, and each service's dead letters.
#[derive(Clone)]
pub struct Monitoring {
    pub transport: Arc<dyn Transport>,
    pub services: Vec<DeadLetterClient>,
}

#[derive(SimpleObject)]
pub struct EventStream {
    pub name: String,
    /// `embedded` or `nats`.
    pub transport: String,
    /// Events stored in the stream (published and retained).
    pub messages: i64,
    pub consumers: Vec<EventConsumer>,
}

#[derive(SimpleObject)]
pub struct EventConsumer {
    pub name: String,
    pub delivered: i64,
    /// Events not yet acknowledged by this consumer (its lag).
    pub pending: i64,
    /// Handed out and awaiting an acknowledgement.
    pub ack_pending: i64,
    pub redelivered: i64,
    pub dead_lettered: i64,
}

#[derive(SimpleObject)]
pub struct DeadLetterEntry {
    pub id: ID,
    pub service: String,
    pub consumer: String,
    pub event_id: ID,
    pub event_type: String,
    pub error: String,
    pub attempts: i32,
    pub failed_at: DateTime<Utc>,
    /// The event's payload as JSON.
    pub payload: String,
}

async fn all_dead_letters(ctx: &Context<'_>) -> GqlResult<Vec<DeadLetterEntry>> {
    let monitoring = ctx.data_unchecked::<Monitoring>();
    let mut entries = Vec::new();
    for client in &monitoring.services {
        let letters: Vec<DeadLetter> = client.list(principal(ctx)).await.gql()?;
        entries.extend(letters.into_iter().map(|d| DeadLetterEntry {
            id: ID(d.id),
            service: client.0.service().to_owned(),
            consumer: d.consumer,
            event_id: ID(d.event_id),
            event_type: d.event_type,
            error: d.error,
            attempts: d.attempts as i32,
            failed_at: bazaar_db::from_millis(d.failed_at),
            payload: d.event.payload.to_string(),
        }));
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.failed_at));
    Ok(entries)
}

#[derive(Default)]
pub struct MonitoringQuery;

#[Object]
impl MonitoringQuery {
    /// The event stream and its durable consumers (admins only).
    async fn event_streams(&self, ctx: &Context<'_>) -> GqlResult<Vec<EventStream>> {
        admin(ctx)?;
        let monitoring = ctx.data_unchecked::<Monitoring>();
        let stats = monitoring
            .transport
            .stats()
            .await
            .map_err(|e| gql(bazaar_contracts::ApiError::unavailable(e.to_string())))?;
        let mut dead: HashMap<String, i64> = HashMap::new();
        for letter in all_dead_letters(ctx).await? {
            *dead.entry(letter.consumer).or_default() += 1;
        }
        let consumers = stats
            .consumers
            .into_iter()
            .map(|c| EventConsumer {
                dead_lettered: dead.get(&c.name).copied().unwrap_or(0),
                name: c.name,
                delivered: c.delivered as i64,
                pending: c.pending as i64,
                ack_pending: c.ack_pending as i64,
                redelivered: c.redelivered as i64,
            })
            .collect();
        Ok(vec![EventStream {
            name: stats.name,
            transport: monitoring.transport.kind().to_owned(),
            messages: stats.messages as i64,
            consumers,
        }])
    }

    /// Events consumers gave up on, newest first (admins only).
    async fn dead_letters(&self, ctx: &Context<'_>) -> GqlResult<Vec<DeadLetterEntry>> {
        admin(ctx)?;
        all_dead_letters(ctx).await
    }
}

#[derive(Default)]
pub struct MonitoringMutation;

#[Object]
impl MonitoringMutation {
    /// Applies a dead-lettered event again through the consumer that gave up on it; true when
    /// it succeeded and left the dead letters (admins only).
    async fn redrive_dead_letter(&self, ctx: &Context<'_>, id: ID) -> GqlResult<bool> {
        let p = admin(ctx)?;
        for client in &ctx.data_unchecked::<Monitoring>().services {
            if client.redrive(p, &id).await.gql()? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
