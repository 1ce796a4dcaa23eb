//! One bazaar process: the services it runs, wired to each other in process (or, for services
//! running elsewhere, over HTTP), behind one listener.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use bazaar_runtime::{
    Platform, ReadyCheck, ServiceName, Settings, ops_routes, serve, telemetry, with_standard_layers,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::peers::Peers;
use crate::registry::{self, SERVICES};

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
    for (_, open_db) in registry::with_db() {
        open_db(settings).await?.close().await;
    }
    Ok(())
}

impl App {
    /// Connects infrastructure, builds `services`, and binds the listener. The process serves
    /// the public API when it runs a service that has one (the gateway), else the internal
    /// APIs of its services.
    pub async fn build(settings: Settings, services: &[ServiceName]) -> anyhow::Result<App> {
        let _ = telemetry::metrics();
        bazaar_runtime::memory::tune_allocator();
        let runs_all = SERVICES.iter().all(|e| services.contains(&e.name));
        let shared_infra = settings.has_shared_bus()
            && (settings.database_url.is_some() || !settings.service_database_urls.is_empty());
        if !runs_all && !services.contains(&bazaar_gateway::NAME) && !shared_infra {
            anyhow::bail!(
                "running {} without the gateway needs NATS (BAZAAR_NATS_URL), RabbitMQ \
                 (BAZAAR_AMQP_URL) or Kafka (BAZAAR_KAFKA_BROKERS) and PostgreSQL (BAZAAR_DATABASE_URL): the embedded event log \
                 cannot reach other processes",
                names(services)
            );
        }
        let settings = Arc::new(settings);
        let platform = crate::infrastructure::connect(settings.clone()).await?;
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
        let mut public = None;
        let mut peers = Peers::new(platform.clone());
        let mut dbs = Vec::new();
        let mut built = Vec::new();

        // The registry's order puts callees first: catalog is built before orders calls it.
        for entry in SERVICES.iter().filter(|e| services.contains(&e.name)) {
            let name = entry.name;
            let mut service = (entry.build)(&platform, &peers).await?;
            if let Some(db) = &service.db {
                checks.push(Arc::new((name.to_string(), db.clone())));
                dbs.push((name.to_string(), db.clone()));
                let dead_letters =
                    bazaar_runtime::dead_letters::routes(name, db.clone(), &service.consumers);
                service.internal = service.internal.merge(platform.internal_only(dead_letters));
            }
            internal = internal.merge(service.internal.clone());
            peers.add_local(name, service.internal.clone());
            public = public.or(service.public.take());
            built.push(service);
        }
        // The gateway is ready only while the services it calls answer (orders: the catalogue).
        checks.extend(peers.ready_checks());
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

        let serves_graphql = public.is_some();
        let router = public.unwrap_or(internal);
        let router =
            with_standard_layers(router.merge(ops_routes(checks)), Duration::from_secs(30));
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let address = listener.local_addr()?;
        tracing::info!(%address, services = %names(services),
            bus = platform.transport.kind(), cache = platform.cache.kind(), "bazaar is ready");
        if serves_graphql {
            // Listening on every interface (0.0.0.0) is reached locally through loopback.
            let mut open = address;
            if open.ip().is_unspecified() {
                open.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            tracing::info!("GraphQL and GraphiQL: http://{open}/graphql");
        }
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
