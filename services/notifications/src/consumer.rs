//! The notifications consumer: keeps the user and promotion replicas current and turns
//! registrations, order status changes and recommendation digests into notifications (with
//! their mail), each in the transaction that records the event in the inbox.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use bazaar_bus::{Applying, Consumer, Envelope, EventTx, Handler, HandlerError, Outbox};
use bazaar_contracts::events::{
    Event, OrderStatusChanged, PromotionCreated, PromotionEnded, RecommendationDigest,
    UserProfileUpdated, UserRegistered, decode,
};
use bazaar_contracts::notifications::NotificationKind;
use bazaar_db::{Tx, now_millis};
use bazaar_runtime::Platform;
use tokio::sync::Notify;

use crate::app::SERVICE;
use crate::domain::{self, Content};
use crate::store::{self, NewNotification, UserReplica};

/// The durable consumers this service runs: one, named after the service, that wakes the
/// mailer (`wake`) when it queued mail.
pub fn consumers(outbox: &Outbox, platform: &Platform, wake: Arc<Notify>) -> Vec<Consumer> {
    let handler = Arc::new(NotificationsHandler { wake });
    vec![Consumer::new(
        SERVICE,
        outbox,
        platform.transport.clone(),
        handler,
    )]
}

pub struct NotificationsHandler {
    /// Wakes the mailer when mail was queued.
    pub wake: Arc<Notify>,
}

#[async_trait]
impl Handler for NotificationsHandler {
    fn event_types(&self) -> &[&'static str] {
        &[
            UserRegistered::TYPE,
            UserProfileUpdated::TYPE,
            OrderStatusChanged::TYPE,
            PromotionCreated::TYPE,
            PromotionEnded::TYPE,
            RecommendationDigest::TYPE,
        ]
    }

    /// A run of order status changes with distinct notification keys (user, order, status).
    fn together(&self, events: &[&Envelope]) -> usize {
        let mut seen = HashSet::new();
        events
            .iter()
            .take_while(|e| {
                let field = |name: &str| e.payload.get(name).and_then(|v| v.as_str());
                e.event_type == OrderStatusChanged::TYPE
                    && seen.insert((field("userId"), field("orderId"), field("to")))
            })
            .count()
    }

    /// Order updates set-based: the run's opt-outs read in one statement, its notifications
    /// and their mail written in one each. The same notifications as one at a time.
    async fn handle_together(
        &self,
        tx: &mut EventTx,
        run: &[Applying<'_>],
    ) -> Result<(), HandlerError> {
        let changes = run
            .iter()
            .map(|applying| decode::<OrderStatusChanged>(applying.event))
            .collect::<Result<Vec<_>, _>>()?;
        let users: Vec<&str> = changes.iter().map(|e| e.user_id.as_str()).collect();
        let off = store::without_order_updates(tx, &users).await?;
        let wanted: Vec<(&OrderStatusChanged, String, Content)> = changes
            .iter()
            .filter(|e| !off.contains(&e.user_id))
            .map(|e| (e, domain::order_update_key(e), domain::order_update(e)))
            .collect();
        let notifications: Vec<NewNotification> = wanted
            .iter()
            .map(|(e, key, content)| NewNotification {
                user_id: &e.user_id,
                kind: NotificationKind::OrderUpdate,
                dedup_key: key,
                content,
            })
            .collect();
        if !store::insert_notifications(tx, &notifications, now_millis())
            .await?
            .is_empty()
        {
            self.wake.notify_one();
        }
        Ok(())
    }

    async fn handle(&self, tx: &mut EventTx, event: &Envelope) -> Result<(), HandlerError> {
        match event.event_type.as_str() {
            UserRegistered::TYPE => {
                let e: UserRegistered = decode(event)?;
                let user = UserReplica {
                    user_id: &e.user_id,
                    email: &e.email,
                    name: &e.name,
                    updated_at: e.registered_at,
                };
                store::upsert_user(tx, &user).await?;
                let content = domain::welcome(&e.name);
                self.notify(
                    tx,
                    &e.user_id,
                    NotificationKind::Welcome,
                    domain::WELCOME_KEY,
                    &content,
                )
                .await?;
            }
            UserProfileUpdated::TYPE => {
                let e: UserProfileUpdated = decode(event)?;
                let user = UserReplica {
                    user_id: &e.user_id,
                    email: &e.email,
                    name: &e.name,
                    updated_at: e.updated_at,
                };
                store::upsert_user(tx, &user).await?;
            }
            OrderStatusChanged::TYPE => {
                let e: OrderStatusChanged = decode(event)?;
                if store::preferences(tx, &e.user_id).await?.order_updates {
                    let key = domain::order_update_key(&e);
                    let content = domain::order_update(&e);
                    self.notify(
                        tx,
                        &e.user_id,
                        NotificationKind::OrderUpdate,
                        &key,
                        &content,
                    )
                    .await?;
                }
            }
            PromotionCreated::TYPE => {
                let e: PromotionCreated = decode(event)?;
                store::insert_promotion(tx, &e.promotion).await?;
            }
            PromotionEnded::TYPE => {
                let e: PromotionEnded = decode(event)?;
                store::end_promotion(tx, &e.promotion_id, e.ended_at).await?;
            }
            RecommendationDigest::TYPE => {
                let e: RecommendationDigest = decode(event)?;
                if let Some(content) = domain::recommendation(&e.products)
                    && store::preferences(tx, &e.user_id).await?.recommendations
                {
                    let kind = NotificationKind::Recommendation;
                    self.notify(tx, &e.user_id, kind, &e.digest_id, &content)
                        .await?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl NotificationsHandler {
    /// Stores the notification and its mail (a no-op when the user already has this one).
    async fn notify(
        &self,
        tx: &mut Tx,
        user_id: &str,
        kind: NotificationKind,
        dedup_key: &str,
        content: &Content,
    ) -> Result<(), HandlerError> {
        let n = NewNotification {
            user_id,
            kind,
            dedup_key,
            content,
        };
        if store::insert_notification(tx, &n, now_millis())
            .await?
            .is_some()
        {
            self.wake.notify_one();
        }
        Ok(())
    }
}
