//! Unit tests of the RabbitMQ transport's pure parts; the broker-facing behaviour is checked by
//! the conformance suite and `tests/amqp.rs`.

use std::time::Duration;

use super::link::redact;
use super::recent::RecentIds;
use super::topology::{Names, delay_tier};

#[test]
fn passwords_never_reach_logs() {
    assert_eq!(
        redact("amqps://app:s3cret@mq.example:5671/shop"),
        "amqps://app:***@mq.example:5671/shop"
    );
    assert_eq!(redact("amqp://mq:5672/%2f"), "amqp://mq:5672/%2f");
    let config = super::AmqpConfig {
        url: "amqp://guest:hunter2@127.0.0.1:5672/%2f".into(),
        ca_file: None,
    };
    assert!(!format!("{config:?}").contains("hunter2"));
}

#[test]
fn delays_round_up_to_a_power_of_two_milliseconds() {
    assert_eq!(delay_tier(Duration::from_millis(1)), 16);
    assert_eq!(delay_tier(Duration::from_millis(200)), 256);
    assert_eq!(delay_tier(Duration::from_millis(256)), 256);
    assert_eq!(delay_tier(Duration::from_secs(30)), 32_768);
    assert_eq!(delay_tier(Duration::from_secs(100_000)), 1 << 21);
}

#[test]
fn names_keep_words_apart() {
    let names = Names::new("shop.eu west");
    assert_eq!(names.exchange(), "shop_eu_west.events");
    assert_eq!(
        names.queue("orders saga"),
        "shop_eu_west.consumer.orders_saga"
    );
    assert_eq!(
        Names::routing_key("orders", "Order.Placed"),
        "orders.Order_Placed"
    );
    assert_eq!(Names::delay_queue("q", 256), "q.retry.256ms");
}

#[test]
fn confirmed_ids_are_remembered_and_counted_once() {
    let recent = RecentIds::default();
    assert!(!recent.seen("a"));
    recent.confirmed(["a", "b"]);
    recent.confirmed(["a"]);
    assert!(recent.seen("a") && recent.seen("b") && !recent.seen("c"));
    assert_eq!(recent.total(), 2);
}
