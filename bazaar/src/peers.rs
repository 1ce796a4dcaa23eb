//! The clients a service being built gets of the services it calls: in process when the
//! callee runs here, over HTTP at its `BAZAAR_<SERVICE>_URL` otherwise. The remote ones are
//! remembered, because a process is ready only while the services it calls answer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::Router;
use bazaar_contracts::ServiceClient;
use bazaar_contracts::client::DeadLetterClient;
use bazaar_runtime::{Platform, ReadyCheck, ServiceName};

/// Budget of a call a service makes while serving another service's call (orders pricing an
/// order from the catalogue): shorter than the caller's 10 s, so the inner call gives up first,
/// the caller learns the real cause, and no work completes after the caller stopped waiting.
const NESTED_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The services of this process built so far, and the remote services handed out.
pub struct Peers {
    platform: Platform,
    local: HashMap<ServiceName, Router>,
    remote: Mutex<Vec<ServiceClient>>,
}

impl Peers {
    pub fn new(platform: Platform) -> Peers {
        Peers {
            platform,
            local: HashMap::new(),
            remote: Mutex::new(Vec::new()),
        }
    }

    /// `service` now runs in this process, serving `router`.
    pub fn add_local(&mut self, service: ServiceName, router: Router) {
        self.local.insert(service, router);
    }

    /// The client of `service`: in process when it runs here, else at its URL setting, else
    /// one that answers SERVICE_UNAVAILABLE.
    pub fn client(&self, service: ServiceName) -> ServiceClient {
        let name = service.as_str();
        let token = &self.platform.service_token;
        if let Some(router) = self.local.get(&service) {
            return ServiceClient::local(name, router.clone(), token);
        }
        let var = format!("{}URL", service.env_prefix());
        match self.platform.settings.service_urls.get(&service) {
            Some(url) => {
                let client = ServiceClient::remote(name, url, token);
                let mut remote = self.remote.lock().expect("remote clients");
                if !remote.iter().any(|c| c.service() == name) {
                    remote.push(client.clone());
                }
                client
            }
            None => {
                tracing::warn!(
                    "the {name} service is not running here and {var} is not set: its operations will answer SERVICE_UNAVAILABLE"
                );
                ServiceClient::missing(name, &var)
            }
        }
    }

    /// [`Self::client`] for calls made while serving another service's call.
    pub fn nested(&self, service: ServiceName) -> ServiceClient {
        self.client(service).with_timeout(NESTED_CALL_TIMEOUT)
    }

    /// A client of the dead letters of every service that keeps a database.
    pub fn dead_letters(&self) -> Vec<DeadLetterClient> {
        crate::registry::with_db()
            .map(|(name, _)| DeadLetterClient(self.client(name)))
            .collect()
    }

    /// One readiness check per remote service handed out so far.
    pub fn ready_checks(&self) -> Vec<std::sync::Arc<dyn ReadyCheck>> {
        let remote = self.remote.lock().expect("remote clients");
        remote
            .iter()
            .map(|c| std::sync::Arc::new(RemoteService(c.clone())) as _)
            .collect()
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
