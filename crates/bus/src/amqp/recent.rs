//! Publish-side deduplication for RabbitMQ and Kafka, which have none across publishes: event ids this process
//! had confirmed by the broker in the last two minutes are not published again (the relay's
//! retry after a failed mark, a batch handed in twice). A repeat from another process or after
//! a restart still goes out; the consumers' inbox absorbs it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::Envelope;

/// As long as JetStream's duplicate window, so both brokers forgive the same retries.
pub const WINDOW: Duration = Duration::from_secs(120);
/// Bounds memory under a publish storm: the oldest ids are forgotten first.
const CAPACITY: usize = 200_000;

#[derive(Default)]
pub struct RecentIds {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    at: HashMap<String, Instant>,
    order: VecDeque<(Instant, String)>,
    /// Distinct ids confirmed over the transport's life: the stream figure `messages`.
    total: u64,
}

impl RecentIds {
    /// True when `id` was confirmed within the window.
    pub fn seen(&self, id: &str) -> bool {
        let mut inner = self.inner.lock().expect("recent ids lock");
        inner.expire(Instant::now());
        inner.at.contains_key(id)
    }

    /// The events of `events` to send: neither confirmed within the window nor repeated
    /// earlier in the batch, in order.
    pub fn fresh<'a>(&self, events: &'a [Envelope]) -> Vec<&'a Envelope> {
        let mut fresh: Vec<&Envelope> = Vec::with_capacity(events.len());
        for event in events {
            if self.seen(&event.id) || fresh.iter().any(|e| e.id == event.id) {
                tracing::debug!(event_id = %event.id, "duplicate publish skipped");
                continue;
            }
            fresh.push(event);
        }
        fresh
    }

    /// Records ids the broker just confirmed.
    pub fn confirmed<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        let now = Instant::now();
        let mut inner = self.inner.lock().expect("recent ids lock");
        for id in ids {
            if inner.at.insert(id.to_owned(), now).is_none() {
                inner.total += 1;
            }
            inner.order.push_back((now, id.to_owned()));
        }
        inner.expire(now);
    }

    /// Distinct events this transport had confirmed (repeats within the window counted once).
    pub fn total(&self) -> u64 {
        self.inner.lock().expect("recent ids lock").total
    }
}

impl Inner {
    fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            let old = now.duration_since(*at) > WINDOW || self.order.len() > CAPACITY;
            if !old {
                break;
            }
            let (at, id) = self.order.pop_front().expect("front exists");
            // Only the newest record of an id removes it.
            if self.at.get(&id) == Some(&at) {
                self.at.remove(&id);
            }
        }
    }
}
