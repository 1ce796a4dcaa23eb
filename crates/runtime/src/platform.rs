//! What services are built from: the shared infrastructure handles, and the parts a built
//! service hands back to whoever runs it (one process or many).

use std::sync::Arc;

use axum::Router;
use bazaar_auth::TokenKeys;
use bazaar_bus::{Consumer, OutboxRelay, Transport};
use bazaar_cache::Cache;
use bazaar_db::{Db, Prune};
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::retention::Retention;
use crate::{ServiceName, Settings};

/// Infrastructure every service of one process shares.
#[derive(Clone)]
pub struct Platform {
    pub settings: Arc<Settings>,
    pub transport: Arc<dyn Transport>,
    pub cache: Arc<dyn Cache>,
    pub tokens: TokenKeys,
    /// Credential for internal calls between services.
    pub service_token: Arc<str>,
}

/// A background job that runs until its token is cancelled.
pub type Task = Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, ()> + Send>;

/// A built service: its database, its internal API, and the loops that keep it moving.
pub struct Service {
    pub name: ServiceName,
    pub db: Db,
    /// `/internal/*` routes, already behind the service-credential check.
    pub internal: Router,
    pub relay: OutboxRelay,
    pub consumers: Vec<Consumer>,
    pub tasks: Vec<Task>,
    /// Rows of its own the service keeps only for a while (the bus's are added to them).
    pub retention: Vec<Prune>,
}

impl Service {
    /// Starts the relay, consumers, tasks and the retention purge on `tracker`; they stop when
    /// `stop` fires, the relay last so that it flushes what the consumers wrote.
    pub fn spawn(
        self,
        tracker: &TaskTracker,
        stop: &CancellationToken,
        retention: &Retention,
    ) -> (ServiceName, Db, Router, Vec<Consumer>) {
        let purge = crate::retention::task(self.name, self.db.clone(), retention, self.retention);
        let relay_stop = CancellationToken::new();
        let consumers_done = TaskTracker::new();
        for consumer in &self.consumers {
            consumers_done.spawn(consumer.clone().run(stop.clone()));
        }
        for task in self.tasks.into_iter().chain([purge]) {
            consumers_done.spawn(task(stop.clone()));
        }
        consumers_done.close();
        tracker.spawn(self.relay.clone().run(relay_stop.clone()));
        let stop = stop.clone();
        tracker.spawn(async move {
            stop.cancelled().await;
            consumers_done.wait().await;
            relay_stop.cancel();
        });
        (self.name, self.db, self.internal, self.consumers)
    }
}
