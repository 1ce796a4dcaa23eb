//! Notification rules with no I/O: what each notification says, the keys that make each one
//! unique, and how long a failed mail waits before the next attempt.

use std::time::Duration;

use bazaar_contracts::events::OrderStatusChanged;
use bazaar_contracts::notifications::NotificationKind;

/// First wait after a failed send; doubles per attempt.
pub const RETRY_BASE: Duration = Duration::from_secs(1);
/// Longest wait between two attempts: mail is delayed, never dropped.
pub const RETRY_CAP: Duration = Duration::from_secs(60);

/// What a notification says (also the mail's subject and text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub title: String,
    pub body: String,
}

pub fn kind_str(kind: NotificationKind) -> &'static str {
    match kind {
        NotificationKind::Welcome => "WELCOME",
        NotificationKind::OrderUpdate => "ORDER_UPDATE",
        NotificationKind::Promotion => "PROMOTION",
        NotificationKind::Recommendation => "RECOMMENDATION",
    }
}

pub fn parse_kind(s: &str) -> Option<NotificationKind> {
    [
        NotificationKind::Welcome,
        NotificationKind::OrderUpdate,
        NotificationKind::Promotion,
        NotificationKind::Recommendation,
    ]
    .into_iter()
    .find(|k| kind_str(*k) == s)
}

/// The part of an id people can read out. Ids are UUID v7, whose leading digits are a
/// timestamp shared by everything created in the same minute, so the random tail is used.
pub fn short_id(id: &str) -> &str {
    let start = id.char_indices().rev().nth(7).map_or(0, |(i, _)| i);
    &id[start..]
}

/// Cents as a decimal amount, e.g. 2550 → "25.50".
pub fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// Unix milliseconds as a UTC date and time for people.
fn when(ms: i64) -> String {
    bazaar_db::from_millis(ms)
        .format("%Y-%m-%d %H:%M UTC")
        .to_string()
}

/// One welcome per user, whatever re-sends the registration.
pub const WELCOME_KEY: &str = "welcome";

pub fn welcome(name: &str) -> Content {
    Content {
        title: format!("Welcome to bazaar, {name}"),
        body: format!(
            "Hello {name},\n\nyour bazaar account is ready. We will let you know here when \
             your orders move along."
        ),
    }
}

/// An order reaches each status at most once (the state machine only moves forward), so the
/// order and the new status identify the update.
pub fn order_update_key(e: &OrderStatusChanged) -> String {
    format!("{}:{}", e.order_id, e.to.as_str())
}

pub fn order_update(e: &OrderStatusChanged) -> Content {
    let short = short_id(&e.order_id);
    let units: i64 = e.items.iter().map(|i| i.quantity).sum();
    let mut body = format!(
        "Your order {short} is now {} (it was {}).\nItems: {units}, total {}.",
        e.to.as_str(),
        e.from.as_str(),
        money(e.total_cents)
    );
    if let Some(reason) = e.reason.as_deref().filter(|r| !r.trim().is_empty()) {
        body.push_str(&format!("\nReason: {reason}"));
    }
    Content {
        title: format!("Order {short} is {}", e.to.as_str()),
        body,
    }
}

/// A promotion as the replica holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromotionInfo {
    pub id: String,
    pub title: String,
    pub product_count: usize,
    pub percent_off: i64,
    pub ends_at: i64,
}

pub fn promotion(p: &PromotionInfo) -> Content {
    let products = match p.product_count {
        1 => "1 product".to_owned(),
        n => format!("{n} products"),
    };
    Content {
        title: format!("{}: {}% off", p.title, p.percent_off),
        body: format!(
            "{}: {}% off {products}, until {}.",
            p.title,
            p.percent_off,
            when(p.ends_at)
        ),
    }
}

/// `None` for an empty digest: there is nothing to tell.
pub fn recommendation(products: &[(String, String)]) -> Option<Content> {
    if products.is_empty() {
        return None;
    }
    let lines: Vec<String> = products
        .iter()
        .map(|(_, name)| format!("- {name}"))
        .collect();
    Some(Content {
        title: "Recommended for you".to_owned(),
        body: format!("You might like:\n{}", lines.join("\n")),
    })
}

/// The mail's text: the notification, and where to switch such mail off.
pub fn mail_body(body: &str) -> String {
    format!(
        "{body}\n\n--\nYou can choose which notifications you receive in your bazaar preferences.\n"
    )
}

/// How long to wait after the `attempts`-th failed attempt: 1 s, 2 s, 4 s … at most 60 s.
pub fn retry_delay(attempts: i64) -> Duration {
    let exponent = attempts.saturating_sub(1).clamp(0, 16) as u32;
    (RETRY_BASE * 2u32.pow(exponent)).min(RETRY_CAP)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bazaar_contracts::orders::{OrderItem, OrderStatus};

    #[test]
    fn backoff_doubles_and_is_capped() {
        let secs: Vec<u64> = (0..10).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(secs, [1, 1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(retry_delay(i64::MAX), RETRY_CAP);
    }

    #[test]
    fn kinds_round_trip() {
        for s in ["WELCOME", "ORDER_UPDATE", "PROMOTION", "RECOMMENDATION"] {
            assert_eq!(kind_str(parse_kind(s).unwrap()), s);
        }
        assert!(parse_kind("welcome").is_none());
    }

    #[test]
    fn order_updates_read_well() {
        let e = OrderStatusChanged {
            order_id: "0190a1b2-0000-7000-8000-00000000abcd".into(),
            user_id: "u".into(),
            from: OrderStatus::Pending,
            to: OrderStatus::Rejected,
            reason: Some("not enough stock for Teapot".into()),
            items: vec![OrderItem {
                product_id: "p".into(),
                name: "Teapot".into(),
                quantity: 2,
                unit_price_cents: 1275,
            }],
            total_cents: 2550,
            changed_at: 0,
        };
        let c = order_update(&e);
        assert_eq!(c.title, "Order 0000abcd is REJECTED");
        assert!(c.body.contains("total 25.50"), "{}", c.body);
        assert!(c.body.contains("Reason: not enough stock for Teapot"));
        assert_eq!(order_update_key(&e), format!("{}:REJECTED", e.order_id));
        assert_eq!(short_id("abc"), "abc");
        assert_eq!(money(-5), "-0.05");
    }

    #[test]
    fn digests_list_product_names() {
        assert!(recommendation(&[]).is_none());
        let c =
            recommendation(&[("1".into(), "Teapot".into()), ("2".into(), "Cup".into())]).unwrap();
        assert_eq!(c.body, "You might like:\n- Teapot\n- Cup");
        let p = promotion(&PromotionInfo {
            id: "x".into(),
            title: "Spring sale".into(),
            product_count: 1,
            percent_off: 20,
            ends_at: 0,
        });
        assert_eq!(p.title, "Spring sale: 20% off");
        assert_eq!(
            p.body,
            "Spring sale: 20% off 1 product, until 1970-01-01 00:00 UTC."
        );
    }
}
