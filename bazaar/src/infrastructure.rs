//! Connecting the shared infrastructure chosen by the configuration: the embedded event log,
//! NATS JetStream, RabbitMQ or Kafka, the in-memory cache or Redis.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bazaar_auth::TokenKeys;
use bazaar_bus::{
    AmqpConfig, AmqpTransport, EmbeddedTransport, KafkaTransport, NatsTransport, Transport,
    without_credentials,
};
use bazaar_cache::{Cache, CacheError, MemoryCache, RedisCache, RedisOptions};
use bazaar_runtime::{Platform, Settings};

pub async fn connect(settings: Arc<Settings>) -> anyhow::Result<Platform> {
    let brokers = (&settings.nats_url, &settings.amqp_url, &settings.kafka);
    // The configuration allows one broker only.
    let transport: Arc<dyn Transport> = match brokers {
        (_, _, Some(config)) => {
            tracing::info!(?config, "connecting to Kafka");
            Arc::new(KafkaTransport::connect(config.clone(), &settings.namespace).await?)
        }
        (Some(url), _, None) => {
            let options = settings.connections.nats_options();
            tracing::info!(url = %without_credentials(url), auth = ?options.auth, ca_file = ?options.ca_file, "connecting to NATS JetStream");
            Arc::new(NatsTransport::connect_with(url, &settings.namespace, &options).await?)
        }
        (None, Some(url), None) => {
            let config = AmqpConfig {
                url: url.expose().to_owned(),
                ca_file: settings.amqp_ca_file.clone(),
            };
            tracing::info!(?config, "connecting to RabbitMQ");
            Arc::new(AmqpTransport::connect(config, &settings.namespace).await?)
        }
        (None, None, None) => {
            bazaar_db::private_dir(&settings.data_dir).with_context(|| {
                format!(
                    "cannot create data directory {}",
                    settings.data_dir.display()
                )
            })?;
            Arc::new(EmbeddedTransport::open(&settings.data_dir.join("bus.db")).await?)
        }
    };
    let cache: Arc<dyn Cache> = match &settings.redis_url {
        Some(url) => Arc::new(
            connect_redis(
                url.expose(),
                &settings.namespace,
                &settings.connections.redis_options(),
            )
            .await
            .context("cannot connect to Redis (BAZAAR_REDIS_URL)")?,
        ),
        None => Arc::new(MemoryCache::new(100_000)),
    };
    let secret = settings.jwt_secret.expose().as_bytes();
    let tokens = TokenKeys::new(secret, settings.access_token_ttl)?;
    let service_token = bazaar_auth::service_token(secret).into();
    Ok(Platform {
        settings,
        transport,
        cache,
        tokens,
        service_token,
    })
}

/// Retries for a while: in a fresh deployment Redis may start after bazaar. Refused
/// credentials and certificates that do not verify are not retried.
async fn connect_redis(
    url: &str,
    namespace: &str,
    options: &RedisOptions,
) -> anyhow::Result<RedisCache> {
    let mut delay = Duration::from_millis(200);
    for _ in 0..8 {
        match RedisCache::connect_with(url, namespace, options).await {
            Ok(cache) if cache.ping().await => return Ok(cache),
            Ok(_) => tracing::warn!("Redis does not answer yet; retrying"),
            Err(e @ CacheError::Config(_)) => return Err(e.into()),
            Err(e) => tracing::warn!(error = %e, "Redis unavailable; retrying"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    Ok(RedisCache::connect_with(url, namespace, options).await?)
}
