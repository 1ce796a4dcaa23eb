//! The `--abuse` phase of the benchmark: what crafted requests cost the server.
//!
//! - fragment: one anonymous request `query { ...F21 } fragment F0 on Query { __typename }
//!   fragment Fn on Query { ...Fn-1 ...Fn-1 }` (22 levels): its answer, the time to it and
//!   the extra peak RSS (VmHWM is reset before, through /proc/self/clear_refs);
//! - hashing: 200 registrations and 200 sign-ins (to 20 accounts made first) sent at once:
//!   how many succeeded, were RATE_LIMITED or failed otherwise, the slowest answer, whether
//!   every one came within 10 s, the peak RSS during the burst and the RSS 2 s after.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::client::{Gql, LOGIN, REGISTER};

const ACCOUNTS: usize = 20;
const BURST: usize = 200;

pub async fn run(gql: &Gql) -> anyhow::Result<()> {
    rss("start");
    for levels in [22, 40] {
        let query = bazaar_gateway::cost::fragment_explosion(levels);
        reset_peak();
        let before = kib("VmRSS:");
        let started = Instant::now();
        let answer = gql.run(None, &query, json!({})).await;
        let took = started.elapsed();
        let extra = kib("VmHWM:").saturating_sub(before);
        let outcome = answer
            .err()
            .unwrap_or_else(|| "ANSWERED (not refused!)".into());
        println!(
            "fragment  levels={levels} bytes={} answered_in={:.2}ms extra_peak_rss={extra}KiB  answer={outcome}",
            query.len(),
            took.as_secs_f64() * 1e3
        );
    }

    for i in 0..ACCOUNTS {
        let input = json!({"email": format!("a{i}@abuse.local"), "password": "correct-horse-1", "name": "A"});
        gql.run(None, REGISTER, json!({"input": input}))
            .await
            .map_err(anyhow::Error::msg)?;
    }
    rss("accounts");
    reset_peak();
    let started = Instant::now();
    let registrations = (0..BURST).map(|i| {
        let gql = gql.clone();
        tokio::spawn(async move {
            let input = json!({"email": format!("b{i}@abuse.local"), "password": "correct-horse-1", "name": "B"});
            timed(gql.run(None, REGISTER, json!({"input": input}))).await
        })
    });
    let logins = (0..BURST).map(|i| {
        let gql = gql.clone();
        tokio::spawn(async move {
            let login = json!({"email": format!("a{}@abuse.local", i % ACCOUNTS), "password": "correct-horse-1"});
            timed(gql.run(None, LOGIN, login)).await
        })
    });
    let all: Vec<_> = registrations.chain(logins).collect();
    let mut answers = Vec::new();
    for task in all {
        answers.push(task.await?);
    }
    let burst = started.elapsed();
    let peak = kib("VmHWM:");
    for (name, part) in [
        ("register", &answers[..BURST]),
        ("login", &answers[BURST..]),
    ] {
        let ok = part.iter().filter(|(r, _)| r.is_ok()).count();
        let limited = part
            .iter()
            .filter(|(r, _)| r.as_ref().is_err_and(|e| e.contains("RATE_LIMITED")))
            .count();
        let slowest = part.iter().map(|(_, t)| *t).max().unwrap_or_default();
        let other: Vec<&String> = part
            .iter()
            .filter_map(|(r, _)| r.as_ref().err())
            .filter(|e| !e.contains("RATE_LIMITED"))
            .collect();
        println!(
            "hashing   {name:<8} n={} ok={ok} rate_limited={limited} other={} slowest={:.2}s {}",
            part.len(),
            other.len(),
            slowest.as_secs_f64(),
            other
                .first()
                .map(|e| format!("e.g. {e}"))
                .unwrap_or_default()
        );
    }
    let within = answers.iter().all(|(r, t)| {
        *t < Duration::from_secs(10)
            && r.as_ref()
                .map_or_else(|e| e.contains("RATE_LIMITED"), |_| true)
    });
    println!(
        "hashing   burst={:.2}s every_answer_success_or_rate_limited_within_10s={within} peak_rss={:.1}MB",
        burst.as_secs_f64(),
        peak as f64 / 1024.0
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    rss("after");
    Ok(())
}

async fn timed<T>(f: impl Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let out = f.await;
    (out, started.elapsed())
}

/// A field of /proc/self/status in KiB.
pub fn kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Resets VmHWM to the current RSS (Linux: writing 5 to clear_refs).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn rss(when: &str) {
    println!(
        "memory    {when:<8} rss={:.1}MB",
        kib("VmRSS:") as f64 / 1024.0
    );
}
