//! Waking the subscriptions that wait for events of the types just published.

use std::sync::Arc;

use tokio::sync::Notify;

/// Subscriptions waiting for events, each woken only by events of the types it takes: a publish
/// does not set every consumer of the process claiming (each claim is a turn in the log's
/// writers' queue) when one or two of them want the event.
#[derive(Default)]
pub(super) struct Waiters(std::sync::Mutex<Vec<Waiter>>);

struct Waiter {
    /// Empty: every type.
    types: Vec<String>,
    wake: Arc<Notify>,
}

impl Waiters {
    /// The wake-up of a new subscription to `types`.
    pub(super) fn register(&self, types: &[String]) -> Arc<Notify> {
        let wake = Arc::new(Notify::new());
        let waiter = Waiter {
            types: types.to_vec(),
            wake: wake.clone(),
        };
        self.0.lock().expect("waiters").push(waiter);
        wake
    }

    /// Wakes the subscriptions that take any of `types` (all of them for `None`), and forgets
    /// those that are gone. A subscription busy claiming keeps the wake-up for its next look.
    pub(super) fn wake(&self, types: Option<&[&str]>) {
        let mut waiters = self.0.lock().expect("waiters");
        waiters.retain(|w| Arc::strong_count(&w.wake) > 1);
        for waiter in waiters.iter() {
            let wanted = match types {
                Some(types) => {
                    waiter.types.is_empty()
                        || types.iter().any(|t| waiter.types.iter().any(|w| w == t))
                }
                None => true,
            };
            if wanted {
                waiter.wake.notify_one();
            }
        }
    }
}
