//! Creating the events topic at start-up (retried with backoff until the controller answers,
//! each retry logged), and deleting a namespace's topic and groups (tests, teardown).

use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, Producer};
use tracing::{debug, info, warn};

use super::config::{Context, KafkaConfig, Refusal};
use crate::BusError;
use crate::broker::backoff;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

pub type Admin = AdminClient<Context>;

pub fn client(config: &KafkaConfig, context: Context) -> Result<Admin, BusError> {
    config
        .client()
        .create_with_context(context)
        .map_err(|e| BusError::Unavailable(format!("creating a Kafka admin client: {e}")))
}

fn options() -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(REQUEST_TIMEOUT))
        .operation_timeout(Some(REQUEST_TIMEOUT))
}

/// The error start-up reports for a refusal: it names the setting to fix.
pub fn refused(refusal: Refusal) -> BusError {
    match refusal {
        Refusal::Credentials(why) => BusError::Unavailable(format!(
            "Kafka refused the SASL credentials (check BAZAAR_KAFKA_USERNAME, \
             BAZAAR_KAFKA_PASSWORD and BAZAAR_KAFKA_SASL_MECHANISM): {why}"
        )),
        Refusal::Certificate(why) => BusError::Unavailable(format!(
            "TLS to Kafka failed: the brokers' certificate did not verify or TLS is \
             misconfigured (check BAZAAR_KAFKA_CA_FILE and BAZAAR_KAFKA_TLS): {why}"
        )),
    }
}

/// Creates `topic` with the configured partitions and replication factor (an existing topic
/// is kept as it is), retrying until `config.startup_timeout`; a refused credential or
/// certificate ends the retries at once.
pub async fn ensure_topic(
    admin: &Admin,
    context: &Context,
    config: &KafkaConfig,
    topic: &str,
) -> Result<(), BusError> {
    let deadline = Instant::now() + config.startup_timeout;
    let new = NewTopic::new(
        topic,
        config.partitions,
        TopicReplication::Fixed(config.replication_factor),
    );
    let mut attempt = 0u32;
    loop {
        let why = match admin.create_topics([&new], &options()).await {
            Ok(results) => match results.into_iter().next() {
                Some(Ok(_)) => {
                    info!(%topic, partitions = config.partitions,
                        replication_factor = config.replication_factor, "Kafka topic created");
                    return Ok(());
                }
                Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => return Ok(()),
                // Not worth waiting for: the cluster cannot honour the settings.
                Some(Err((_, code @ RDKafkaErrorCode::InvalidReplicationFactor)))
                | Some(Err((_, code @ RDKafkaErrorCode::InvalidPartitions))) => {
                    return Err(BusError::Unavailable(format!(
                        "Kafka cannot create {topic} with {} partitions and replication factor {} \
                         (BAZAAR_KAFKA_PARTITIONS, BAZAAR_KAFKA_REPLICATION_FACTOR): {code}",
                        config.partitions, config.replication_factor
                    )));
                }
                Some(Err((_, code))) => code.to_string(),
                None => "no answer for the topic".into(),
            },
            Err(e) => e.to_string(),
        };
        if let Some(refusal) = context.refusal() {
            return Err(refused(refusal));
        }
        if Instant::now() >= deadline {
            return Err(BusError::Unavailable(format!(
                "Kafka at {} did not create topic {topic} within {:?}: {why}",
                config.brokers, config.startup_timeout
            )));
        }
        let delay = backoff(attempt);
        warn!(brokers = %config.brokers, attempt = attempt + 1, ?delay, reason = %why,
            "Kafka controller not answering yet, retrying");
        tokio::time::sleep(delay).await;
        attempt = attempt.saturating_add(1);
    }
}

/// Waits until every partition of `topic` has a leader: a topic just created answers
/// "not leader" for a moment, and live feeds and figures read its offsets at once.
pub async fn wait_for_leaders<C: ClientContext + 'static>(
    producer: &FutureProducer<C>,
    config: &KafkaConfig,
    topic: &str,
) -> Result<(), BusError> {
    let deadline = Instant::now() + config.startup_timeout;
    let mut attempt = 0u32;
    loop {
        // A blocking call of librdkafka's: off the async workers.
        let (client, name) = (producer.clone(), topic.to_owned());
        let metadata = tokio::task::spawn_blocking(move || {
            client.client().fetch_metadata(Some(&name), REQUEST_TIMEOUT)
        })
        .await;
        let led = metadata
            .map_err(|e| e.to_string())
            .and_then(|m| m.map_err(|e| e.to_string()))
            .map(|m| {
                m.topics().iter().any(|t| {
                    t.name() == topic
                        && t.error().is_none()
                        && !t.partitions().is_empty()
                        && t.partitions()
                            .iter()
                            .all(|p| p.error().is_none() && p.leader() >= 0)
                })
            });
        match led {
            Ok(true) => return Ok(()),
            _ if Instant::now() >= deadline => {
                return Err(BusError::Unavailable(format!(
                    "the partitions of {topic} have no leader after {:?}",
                    config.startup_timeout
                )));
            }
            _ => {
                debug!(%topic, attempt, "waiting for partition leaders");
                tokio::time::sleep(Duration::from_millis(50).saturating_mul(attempt + 1)).await;
                attempt = attempt.saturating_add(1);
            }
        }
    }
}

/// Deletes `topic` and `groups`, as far as they exist.
pub async fn delete(admin: &Admin, topic: &str, groups: &[String]) -> Result<(), BusError> {
    let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
    if !groups.is_empty() {
        admin
            .delete_groups(&groups, &options())
            .await
            .map_err(|e| BusError::Unavailable(format!("deleting consumer groups: {e}")))?;
    }
    admin
        .delete_topics(&[topic], &options())
        .await
        .map_err(|e| BusError::Unavailable(format!("deleting topic {topic}: {e}")))?;
    Ok(())
}
