//! One bazaar process: the services it runs, wired to each other in process (or, for services
//! running elsewhere, over HTTP), behind one listener.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use std::collections::HashMap;

use bazaar_contracts::ServiceClient;
use bazaar_contracts::catalog::CatalogClient;
use bazaar_contracts::client::DeadLetterClient;
use bazaar_contracts::notifications::NotificationsClient;
use bazaar_contracts::orders::OrdersClient;
use bazaar_contracts::recommendations::RecommendationsClient;
use bazaar_contracts::users::UsersClient;
use bazaar_runtime::{
    Platform, ReadyCheck, ServiceName, Settings, ops_routes, serve, telemetry, with_standard_layers,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Budget of a call a service makes while serving another service's call (orders pricing an
/// order from the catalogue): shorter than the caller's 10 s, so the inner call gives up first,
/// the caller learns the real cause, and no work completes after the caller stopped waiting.
const NESTED_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// A built process, listening but not yet serving.
pub struct App {
    listener: TcpListener,
    router: Router,
    tracker: TaskTracker,
    stop: CancellationToken,
    platform: Platform,
}

/// Applies every service's migrations (the `bazaar migrate` command).
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    bazaar_users::open_db(settings).await?.close().await;
    bazaar_catalog::open_db(settings).await?.close().await;
    bazaar_orders::open_db(settings).await?.close().await;
    bazaar_notifications::open_db(settings).await?.close().await;
    bazaar_recommendations::open_db(settings)
        .await?
        .close()
        .await;
    Ok(())
}

impl App {
    /// Connects infrastructure, builds `services`, and binds the listener. The process serves
    /// the public GraphQL API when it runs the gateway, else the internal APIs of its services.
    pub async fn build(settings: Settings, services: &[ServiceName]) -> anyhow::Result<App> {
        let _ = telemetry::metrics();
        bazaar_runtime::memory::tune_allocator();
        let runs_all = ServiceName::ALL.iter().all(|s| services.contains(s));
        let shared_infra = settings.has_shared_bus()
            && (settings.database_url.is_some() || !settings.service_database_urls.is_empty());
        if !runs_all && !services.contains(&ServiceName::Gateway) && !shared_infra {
            anyhow::bail!(
                "running {} without the gateway needs NATS (BAZAAR_NATS_URL) or RabbitMQ \
                 (BAZAAR_AMQP_URL) and PostgreSQL (BAZAAR_DATABASE_URL): the embedded event log \
                 cannot reach other processes",
                names(services)
            );
        }
        let settings = Arc::new(settings);
        let platform = crate::platform::connect(settings.clone()).await?;
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        let mut checks: Vec<Arc<dyn ReadyCheck>> = vec![
            Arc::new(platform.transport.clone()),
            Arc::new(platform.cache.clone()),
        ];
        tracker.spawn(bazaar_runtime::retention::event_log_task(
            platform.transport.clone(),
            &settings.retention,
        )(stop.clone()));
        let mut internal = Router::new();
        let mut local: HashMap<ServiceName, Router> = HashMap::new();
        let mut dbs = Vec::new();
        let mut built = Vec::new();

        // ServiceName orders dependencies first: catalog is built before orders calls it.
        for &name in services {
            let service = match name {
                ServiceName::Users => bazaar_users::build(&platform).await?,
                ServiceName::Catalog => bazaar_catalog::build(&platform).await?,
                ServiceName::Orders => {
                    let catalog = CatalogClient(
                        client(&platform, ServiceName::Catalog, &local)?
                            .with_timeout(NESTED_CALL_TIMEOUT),
                    );
                    if catalog.0.is_remote() {
                        checks.push(Arc::new(RemoteService(catalog.0.clone())));
                    }
                    let users = UsersClient(
                        client(&platform, ServiceName::Users, &local)?
                            .with_timeout(NESTED_CALL_TIMEOUT),
                    );
                    if users.0.is_remote() {
                        checks.push(Arc::new(RemoteService(users.0.clone())));
                    }
                    let payments = Arc::new(bazaar_orders::SimulatedPayments);
                    bazaar_orders::build(&platform, catalog, users, payments).await?
                }
                ServiceName::Gateway => continue,
                ServiceName::Notifications => bazaar_notifications::build(&platform).await?,
                ServiceName::Recommendations => bazaar_recommendations::build(&platform).await?,
            };
            checks.push(Arc::new((name.to_string(), service.db.clone())));
            dbs.push((name.to_string(), service.db.clone()));
            let token = platform.service_token.clone();
            let router = service
                .internal
                .clone()
                .merge(bazaar_runtime::dead_letters::routes(
                    name,
                    service.db.clone(),
                    service.consumers.clone(),
                    token,
                ));
            internal = internal.merge(router.clone());
            local.insert(name, router);
            built.push(service);
        }
        // Every consumer of this process exists on the broker before any of its relays
        // publishes: RabbitMQ keeps an event only for the queues that exist when it arrives.
        for consumer in built.iter().flat_map(|s| &s.consumers) {
            drop(
                platform
                    .transport
                    .subscribe(&consumer.spec)
                    .await
                    .with_context(|| format!("cannot declare consumer {}", consumer.spec.name))?,
            );
        }
        for service in built {
            let _ = service.spawn(&tracker, &stop, &platform.settings.retention);
        }
        // The gauges read rather than counted (outbox backlog and age, dead letters, consumer
        // lag); until this was spawned the dashboard's panels for them stayed empty.
        tracker.spawn(bazaar_runtime::sampler::run(
            dbs,
            platform.transport.clone(),
            stop.clone(),
        ));

        let router = if services.contains(&ServiceName::Gateway) {
            let clients = bazaar_gateway::Clients {
                users: UsersClient(client(&platform, ServiceName::Users, &local)?),
                catalog: CatalogClient(client(&platform, ServiceName::Catalog, &local)?),
                orders: OrdersClient(client(&platform, ServiceName::Orders, &local)?),
                notifications: NotificationsClient(client(
                    &platform,
                    ServiceName::Notifications,
                    &local,
                )?),
                recommendations: RecommendationsClient(client(
                    &platform,
                    ServiceName::Recommendations,
                    &local,
                )?),
            };
            let mut dead_letters = Vec::new();
            for service in ServiceName::ALL
                .into_iter()
                .filter(|s| *s != ServiceName::Gateway)
            {
                let client = client(&platform, service, &local)?;
                // The gateway is ready only while the services it calls answer.
                if client.is_remote() {
                    checks.push(Arc::new(RemoteService(client.clone())));
                }
                dead_letters.push(DeadLetterClient(client));
            }
            let (router, tasks) = bazaar_gateway::build(&platform, clients, dead_letters)
                .map_err(|e| anyhow::anyhow!("invalid trusted documents manifest: {e}"))?;
            for task in tasks {
                tracker.spawn(task(stop.clone()));
            }
            router
        } else {
            internal
        };
        let router =
            with_standard_layers(router.merge(ops_routes(checks)), Duration::from_secs(30));
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        tracing::info!(address = %listener.local_addr()?, services = %names(services),
            bus = platform.transport.kind(), cache = platform.cache.kind(), "bazaar is ready");
        Ok(App {
            listener,
            router,
            tracker,
            stop,
            platform,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    /// Cancel to shut the process down gracefully (what SIGINT/SIGTERM do).
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// Serves until SIGINT, SIGTERM or the stop token; then stops accepting, drains requests,
    /// stops consumers and flushes the outbox relays.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let stop = self.stop.clone();
        tokio::spawn(cancel_on_signal(stop.clone()));
        let served = serve(self.listener, self.router, stop.clone()).await;
        stop.cancel();
        self.tracker.close();
        if tokio::time::timeout(Duration::from_secs(20), self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("background work did not stop within 20 s");
        }
        tracing::info!("bazaar stopped");
        served.context("server failed")
    }
}

/// The client of `service`: in process when it runs here, else at `BAZAAR_<SERVICE>_URL`.
fn client(
    platform: &Platform,
    service: ServiceName,
    local: &HashMap<ServiceName, Router>,
) -> anyhow::Result<ServiceClient> {
    let name = service.as_str();
    if let Some(router) = local.get(&service) {
        return Ok(ServiceClient::local(
            name,
            router.clone(),
            &platform.service_token,
        ));
    }
    let var = format!("{}URL", service.env_prefix());
    match std::env::var(&var) {
        Ok(url) => Ok(ServiceClient::remote(name, &url, &platform.service_token)),
        Err(_) => {
            tracing::warn!(
                "the {name} service is not running here and {var} is not set: its operations will answer SERVICE_UNAVAILABLE"
            );
            Ok(ServiceClient::missing(name, &var))
        }
    }
}

/// Readiness of a service this process calls.
struct RemoteService(ServiceClient);

#[async_trait::async_trait]
impl ReadyCheck for RemoteService {
    fn name(&self) -> String {
        format!("{} service", self.0.service())
    }
    async fn ready(&self) -> bool {
        self.0.ping().await
    }
}

fn names(services: &[ServiceName]) -> String {
    services
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

async fn cancel_on_signal(stop: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received; shutting down"),
        _ = terminate => tracing::info!("SIGTERM received; shutting down"),
        _ = stop.cancelled() => {}
    }
    stop.cancel();
}
