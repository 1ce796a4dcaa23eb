//! Waiting for what happens in the background (a consumer applying an event, a relay
//! publishing): poll a check until it holds, and fail the test, naming what it waited for,
//! once a deadline has passed.

use std::future::Future;
use std::time::{Duration, Instant};

/// How long [`eventually`] waits: far beyond what a healthy run needs, so only a real hang
/// (or a machine starved by parallel suites) fails.
pub const DEADLINE: Duration = Duration::from_secs(30);
/// How often a check runs: cheap queries, so often enough not to slow tests down.
const INTERVAL: Duration = Duration::from_millis(20);

/// Polls `check` until it holds, failing the test after [`DEADLINE`].
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_within(DEADLINE, what, check).await;
}

/// Polls `check` until it holds, failing the test after `deadline` (shorter than a bound
/// around the whole test, so the failure names what it waited for).
pub async fn eventually_within<F, Fut>(deadline: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    poll(deadline, what, || {
        let holds = check();
        async move { holds.await.then_some(()) }
    })
    .await;
}

/// Polls `check` until it returns `Some`, and returns that, failing after `timeout`.
pub async fn until<T, F, Fut>(timeout: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    poll(timeout, "the condition", check).await
}

/// Polls `check` until it returns `Some`, and returns that, failing after `timeout` with a
/// message naming `what`.
pub async fn poll<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(INTERVAL).await;
    }
}
