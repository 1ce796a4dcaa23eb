//! Live order tracking: `orderUpdated` over WebSocket (graphql-transport-ws). Each gateway
//! process listens to the orders service's events on the bus (every replica sees every event) and
//! fans it out to its subscribers, who see only the orders they may see, in order.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Context, ID, Subscription};
use bazaar_bus::Transport;
use bazaar_contracts::events::{OrderPlaced, OrderStatusChanged};
use bazaar_contracts::orders::{self, OrdersClient};
use bazaar_contracts::{ApiError, Principal};
use bazaar_runtime::Task;
use futures::{Stream, StreamExt};
use tokio::sync::broadcast;

use crate::context::{clients, principal};
use crate::error::{OrGql, gql};
use crate::orders::Order;

/// This process's feed of order status changes.
#[derive(Clone)]
pub struct OrderFeed(broadcast::Sender<OrderStatusChanged>);

impl OrderFeed {
    /// The feed and the task that fills it from the bus.
    pub fn start(transport: Arc<dyn Transport>) -> (OrderFeed, Task) {
        let (tx, _) = broadcast::channel(4096);
        let feed = OrderFeed(tx.clone());
        let task: Task = Box::new(move |stop| {
            Box::pin(async move {
                while !stop.is_cancelled() {
                    match transport.live("orders").await {
                        Ok(mut events) => loop {
                            let next = tokio::select! { _ = stop.cancelled() => return, e = events.next() => e };
                            let Some(event) = next else { break };
                            if let Some(change) = as_change(&event) {
                                let _ = tx.send(change);
                            }
                        },
                        Err(e) => tracing::warn!(error = %e, "order feed cannot listen; retrying"),
                    }
                    tokio::select! { _ = stop.cancelled() => return, _ = tokio::time::sleep(Duration::from_secs(1)) => {} }
                }
            })
        });
        (feed, task)
    }
}

/// Order events as status steps: a placement is the PENDING step.
fn as_change(event: &bazaar_bus::Envelope) -> Option<OrderStatusChanged> {
    match event.event_type.as_str() {
        "OrderStatusChanged" => event.decode().ok(),
        "OrderPlaced" => event
            .decode::<OrderPlaced>()
            .ok()
            .map(|placed| OrderStatusChanged {
                order_id: placed.order_id,
                user_id: placed.user_id,
                from: orders::OrderStatus::Pending,
                to: orders::OrderStatus::Pending,
                reason: None,
                items: placed.items,
                total_cents: placed.total_cents,
                changed_at: placed.placed_at,
            }),
        _ => None,
    }
}

/// Which changes one subscriber may see.
enum Watch {
    One(String),
    Own(String),
    All,
}

impl Watch {
    fn admits(&self, change: &OrderStatusChanged) -> bool {
        match self {
            Watch::One(id) => &change.order_id == id,
            Watch::Own(user) => &change.user_id == user,
            Watch::All => true,
        }
    }
}

#[derive(Default)]
pub struct Subscriptions;

#[Subscription]
impl Subscriptions {
    /// Every status change of one order, or (without `id`) of all the caller's orders; admins
    /// may watch any order, and without `id` every order. Sign in through `connection_init`
    /// with `{"Authorization": "Bearer <accessToken>"}`.
    async fn order_updated(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
    ) -> async_graphql::Result<impl Stream<Item = Order>> {
        let p = principal(ctx).clone();
        let caller = p.require_user().gql()?.clone();
        let slot = match ctx.data_opt::<SubscriptionSlots>() {
            Some(slots) => Some(slots.take()?),
            None => None,
        };
        let client = clients(ctx).orders.clone();
        // Listen before reading the order, so no change falls between the read and the feed.
        let feed = ctx.data_unchecked::<OrderFeed>().0.subscribe();
        let mut known = HashMap::<String, orders::Order>::new();
        let (watch, first) = match &id {
            Some(id) => {
                // Refused unless the caller may read the order (its owner or an admin).
                let Some(order) = client.order(&p, id).await.gql()? else {
                    return Err(gql(ApiError::forbidden("you may not watch this order")));
                };
                known.insert(order.id.clone(), order.clone());
                (Watch::One(id.0.clone()), Some(Order(order)))
            }
            None if p.is_admin() => (Watch::All, None),
            None => (Watch::Own(caller.id), None),
        };
        let state = (feed, watch, client, p, known);
        let changes = futures::stream::unfold(
            state,
            |(mut feed, watch, client, p, mut known)| async move {
                loop {
                    let change = match feed.recv().await {
                        Ok(change) => change,
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!(missed = n, "order subscriber fell behind");
                            continue;
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    };
                    if !watch.admits(&change) {
                        continue;
                    }
                    if let Some(order) = apply(&client, &p, &mut known, &change).await {
                        return Some((Order(order), (feed, watch, client, p, known)));
                    }
                }
            },
        );
        // A watched order starts with its current state. The slot is held by the stream and
        // freed when the client completes the subscription or the connection closes.
        Ok(futures::stream::iter(first)
            .chain(changes)
            .inspect(move |_| {
                let _held = &slot;
            }))
    }
}

/// The subscriptions one WebSocket connection may hold at once (`ws_max_subscriptions`).
#[derive(Clone)]
pub struct SubscriptionSlots(Arc<tokio::sync::Semaphore>);

impl SubscriptionSlots {
    pub fn new(max: usize) -> Self {
        SubscriptionSlots(Arc::new(tokio::sync::Semaphore::new(max)))
    }

    fn take(&self) -> async_graphql::Result<tokio::sync::OwnedSemaphorePermit> {
        self.0.clone().try_acquire_owned().map_err(|_| {
            gql(ApiError::rate_limited(
                "too many subscriptions on this connection (ws_max_subscriptions)",
                1,
            ))
        })
    }
}
/// The order as of `change`: its stable parts read once from the orders service, its status
/// from the event, so every step is reported even when changes come faster than reads.
async fn apply(
    client: &OrdersClient,
    p: &Principal,
    known: &mut HashMap<String, orders::Order>,
    change: &OrderStatusChanged,
) -> Option<orders::Order> {
    match known.get(&change.order_id) {
        // Already reported: the snapshot the subscription started with was this change or later.
        Some(seen)
            if change.changed_at < seen.updated_at
                || (change.changed_at == seen.updated_at && seen.status == change.to) =>
        {
            return None;
        }
        Some(_) => {}
        None => {
            let order = client.order(p, &change.order_id).await.ok().flatten()?;
            known.insert(change.order_id.clone(), order);
        }
    }
    let order = known.get_mut(&change.order_id)?;
    order.status = change.to;
    order.status_reason = change.reason.clone();
    order.updated_at = change.changed_at;
    Some(order.clone())
}
