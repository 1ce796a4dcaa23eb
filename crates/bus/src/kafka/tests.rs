//! Unit tests of the Kafka transport's pure parts; the broker-facing behaviour is checked by
//! the conformance suite and `tests/kafka.rs`.

use std::time::{Duration, Instant};

use super::config::{KafkaConfig, KafkaSasl, SaslMechanism};
use super::tracker::Tracker;
use crate::Envelope;

fn event() -> Envelope {
    Envelope::new("t", "T", 1, "a", serde_json::json!({}))
}

#[test]
fn the_commit_point_is_the_lowest_unsettled_offset() {
    let mut t = Tracker::default();
    t.assign([0, 1]);
    let a = t.read(0, 10, true).unwrap();
    let b = t.read(0, 11, true).unwrap();
    t.read(0, 12, false).unwrap();
    assert!(t.read(5, 1, true).is_none(), "not our partition");
    assert_eq!(t.commits(), [(0, 10)]);
    assert!(t.settle(b));
    assert!(t.commits().is_empty(), "offset 10 still unsettled");
    let now = Instant::now();
    assert!(t.park(a, now + Duration::from_millis(50), event()));
    assert!(t.take_due(now, 10).is_empty(), "not due yet");
    assert_eq!(t.next_due(), Some(now + Duration::from_millis(50)));
    let due = t.take_due(now + Duration::from_millis(60), 10);
    assert_eq!(due.len(), 1);
    assert!(t.settle(a));
    assert_eq!(t.commits(), [(0, 13)], "one past the last read");
    assert!(
        t.commits().is_empty(),
        "unchanged points are not sent again"
    );
}

#[test]
fn a_revoked_partition_forgets_its_deliveries_and_retries() {
    let mut t = Tracker::default();
    t.assign([0]);
    let a = t.read(0, 3, true).unwrap();
    let b = t.read(0, 4, true).unwrap();
    assert!(t.settle(b));
    assert!(t.park(a, Instant::now(), event()));
    assert_eq!(t.revoke(&[0]), [(0, 3)]);
    assert_eq!(t.waiting(), 0);
    t.assign([0]);
    assert!(!t.settle(a), "an ack of the earlier assignment is ignored");
    assert!(t.commits().is_empty(), "nothing read in the new assignment");
}

#[test]
fn a_failed_commit_is_offered_again() {
    let mut t = Tracker::default();
    t.assign([2]);
    t.read(2, 0, false).unwrap();
    let sent = t.commits();
    assert_eq!(sent, [(2, 1)]);
    t.uncommitted(&sent);
    assert_eq!(t.commits(), [(2, 1)]);
}

#[test]
fn passwords_never_reach_logs() {
    let mut config = KafkaConfig::new("k1:9093");
    config.sasl = Some(KafkaSasl {
        mechanism: SaslMechanism::ScramSha512,
        username: "shop".into(),
        password: "hunter2".into(),
    });
    assert!(!format!("{config:?}").contains("hunter2"));
    assert_eq!(
        SaslMechanism::parse("scram-sha-256"),
        Some(SaslMechanism::ScramSha256)
    );
    assert_eq!(SaslMechanism::parse("GSSAPI"), None);
}
