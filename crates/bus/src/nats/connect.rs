//! Reaching the NATS server: connect with the configured credentials, retry with capped
//! backoff while it is not there yet, stop at once when no retry can help, and provision the
//! namespace's stream before the transport is handed out.

use std::time::Duration;

use async_nats::{ConnectOptions, Event, jetstream};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::NatsTransport;
use super::auth::{self, NatsOptions, without_credentials};
use crate::BusError;
use crate::broker::{backoff, sanitize};

/// Bounds each JetStream API call, and the wait for the first connection.
const API_TIMEOUT: Duration = Duration::from_secs(5);

/// How one connect attempt failed: worth another try, or not.
pub(super) enum Attempt {
    Retry(String),
    Fatal(BusError),
}

impl NatsTransport {
    /// Connects and provisions the stream, retrying with capped backoff until the server answers.
    /// Never gives up on an unreachable server: wrap it in a timeout or use [`Self::connect_with_timeout`].
    pub async fn connect(url: &str, namespace: &str) -> Result<NatsTransport, BusError> {
        Self::connect_with(url, namespace, &NatsOptions::default()).await
    }

    /// [`Self::connect`] with credentials and a CA file. Refused credentials and certificates
    /// that do not verify end the retries at once with an error naming the settings.
    pub async fn connect_with(
        url: &str,
        namespace: &str,
        options: &NatsOptions,
    ) -> Result<NatsTransport, BusError> {
        let log_url = without_credentials(url);
        let mut attempt = 0u32;
        loop {
            match Self::try_connect(url, namespace, options).await {
                Ok(transport) => return Ok(transport),
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Retry(reason)) => {
                    let delay = backoff(attempt);
                    warn!(url = %log_url, attempt = attempt + 1, ?delay, %reason, "NATS not reachable yet, retrying");
                    tokio::time::sleep(delay).await;
                    attempt = attempt.saturating_add(1);
                }
            }
        }
    }

    /// [`Self::connect`], giving up with `Unavailable` after `timeout`.
    pub async fn connect_with_timeout(
        url: &str,
        namespace: &str,
        timeout: Duration,
    ) -> Result<NatsTransport, BusError> {
        Self::connect_with_options_and_timeout(url, namespace, &NatsOptions::default(), timeout)
            .await
    }

    /// [`Self::connect_with`], giving up with `Unavailable` after `timeout`.
    pub async fn connect_with_options_and_timeout(
        url: &str,
        namespace: &str,
        options: &NatsOptions,
        timeout: Duration,
    ) -> Result<NatsTransport, BusError> {
        tokio::time::timeout(timeout, Self::connect_with(url, namespace, options))
            .await
            .map_err(|_| {
                BusError::Unavailable(format!(
                    "NATS at {} not reachable within {timeout:?}",
                    without_credentials(url)
                ))
            })?
    }

    async fn try_connect(
        url: &str,
        namespace: &str,
        options: &NatsOptions,
    ) -> Result<NatsTransport, Attempt> {
        let (connects_tx, connects) = watch::channel(0u64);
        let log_url = without_credentials(url);
        let connect_options = ConnectOptions::new()
            .name("bazaar")
            .connection_timeout(API_TIMEOUT)
            .event_callback(move |event| {
                // Logged here, synchronously, so the returned future needs nothing from us.
                match &event {
                    Event::Connected => {
                        connects_tx.send_modify(|n| *n += 1);
                        info!(url = %log_url, "NATS connected");
                    }
                    Event::Disconnected => warn!(url = %log_url, "NATS disconnected, reconnecting"),
                    other => debug!(url = %log_url, event = %other, "NATS event"),
                }
                async {}
            });
        let client = options
            .apply(connect_options)
            .await
            .map_err(Attempt::Fatal)?
            .connect(url)
            .await
            .map_err(|e| match auth::fatal(&e) {
                Some(fatal) => Attempt::Fatal(fatal),
                None => Attempt::Retry(e.to_string()),
            })?;
        // async-nats reports the first connection as Connected too: wait for it and mark it
        // seen, so subscriptions only react to real reconnects (a spurious one drops a fresh
        // pull the server may already have answered, stranding that message until ack_wait).
        let mut connects = connects;
        let _ = tokio::time::timeout(API_TIMEOUT, connects.wait_for(|n| *n > 0)).await;
        connects.mark_unchanged();
        let js = jetstream::ContextBuilder::new()
            .timeout(API_TIMEOUT)
            .build(client.clone());
        let transport = NatsTransport {
            client,
            js,
            prefix: subject_prefix(namespace),
            stream: format!("{}_events", sanitize(namespace)),
            connects,
        };
        transport.provision().await?;
        Ok(transport)
    }
}

/// The namespace keeps its dots (subject hierarchy) but each token is made subject-safe.
pub(super) fn subject_prefix(namespace: &str) -> String {
    namespace
        .split('.')
        .map(sanitize)
        .collect::<Vec<_>>()
        .join(".")
}
