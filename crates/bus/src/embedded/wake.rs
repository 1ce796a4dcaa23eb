//! Waking the subscriptions that wait for events of the types just published, and handing
//! freshly stored events straight to an idle one.
//!
//! A subscription that found nothing to claim parks here. When the log's writer stores events
//! a parked subscription takes, it reserves that subscription, records the claim in the very
//! transaction that stores the events (see [`super::publish`]) and hands the events over in
//! memory: the subscription skips a claim transaction of its own, which on a quiet system is
//! most of the time an event spends between two services.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

use crate::{ConsumerSpec, Envelope};

/// Events with their log sequence numbers.
pub(super) type Sequenced = Vec<(i64, Envelope)>;

/// Every subscription of the log in this process.
#[derive(Default)]
pub(super) struct Waiters(Mutex<Vec<Arc<Waiter>>>);

/// One subscription, as the writer sees it.
pub(super) struct Waiter {
    pub(super) spec: ConsumerSpec,
    pub(super) wake: Notify,
    state: Mutex<State>,
}

enum State {
    /// Claiming or applying: only woken, never handed events.
    Busy,
    /// Waiting for events, ready to take up to `room` at once.
    Idle { room: usize },
    /// Chosen by the writer for events it is storing now.
    Reserved,
    /// Events the writer stored and claimed for it, with their log sequence numbers.
    Handed(Sequenced),
}

/// What a subscription does when it wakes up.
pub(super) enum Woken {
    /// Claim from the log as usual.
    Claim,
    /// Wait a little longer: the writer is committing events for it.
    Wait,
    /// Take these events, already claimed for it.
    Take(Sequenced),
}

impl Waiters {
    /// The waiter of a new subscription of `spec`.
    pub(super) fn register(&self, spec: &ConsumerSpec) -> Arc<Waiter> {
        let waiter = Arc::new(Waiter {
            spec: spec.clone(),
            wake: Notify::new(),
            state: Mutex::new(State::Busy),
        });
        locked(&self.0).push(waiter.clone());
        waiter
    }

    /// Reserves, for each consumer with an idle subscription, one of them for the events of
    /// `stored` it takes (when they fit its room), and returns them with those events. The one
    /// chosen goes to the back of the line, so replicas of one consumer take turns.
    pub(super) fn reserve(&self, stored: &[(i64, &Envelope)]) -> Vec<(Arc<Waiter>, Sequenced)> {
        let mut waiters = locked(&self.0);
        waiters.retain(|w| Arc::strong_count(w) > 1);
        let mut reserved: Vec<(Arc<Waiter>, Sequenced)> = Vec::new();
        for waiter in waiters.iter() {
            if reserved
                .iter()
                .any(|(w, _)| w.spec.name == waiter.spec.name)
            {
                continue;
            }
            let wanted = stored
                .iter()
                .filter(|(_, e)| waiter.spec.wants(&e.event_type));
            let count = wanted.clone().count();
            if count > 0 && waiter.reserve(count) {
                let events = wanted.map(|(seq, e)| (*seq, (*e).clone())).collect();
                reserved.push((waiter.clone(), events));
            }
        }
        // Stable: the others keep their order ahead of the ones just chosen.
        waiters.sort_by_key(|w| reserved.iter().any(|(r, _)| Arc::ptr_eq(r, w)));
        reserved
    }

    /// Wakes the subscriptions that take any of `types` (all of them for `None`), except those
    /// the writer holds (it wakes them itself). A subscription busy claiming keeps the wake-up
    /// for its next look.
    pub(super) fn wake(&self, types: Option<&[&str]>) {
        let waiters = locked(&self.0);
        for waiter in waiters.iter() {
            let wanted = match types {
                Some(types) => types.iter().any(|t| waiter.spec.wants(t)),
                None => true,
            };
            let held = matches!(*locked(&waiter.state), State::Reserved | State::Handed(_));
            if wanted && !held {
                waiter.wake.notify_one();
            }
        }
    }
}

impl Waiter {
    /// Reserves an idle subscription with room for `count` events for the writer.
    fn reserve(&self, count: usize) -> bool {
        let mut state = locked(&self.state);
        match *state {
            State::Idle { room } if count <= room => {
                *state = State::Reserved;
                true
            }
            _ => false,
        }
    }

    /// Found nothing to claim: ready to be handed up to `room` events.
    pub(super) fn park(&self, room: usize) {
        let mut state = locked(&self.state);
        if matches!(*state, State::Busy) {
            *state = State::Idle { room };
        }
    }

    /// Woken (or its wait ran out): what to do next. Leaves it busy unless the writer holds it.
    pub(super) fn woken(&self) -> Woken {
        let mut state = locked(&self.state);
        match std::mem::replace(&mut *state, State::Busy) {
            State::Reserved => {
                *state = State::Reserved;
                Woken::Wait
            }
            State::Handed(events) => Woken::Take(events),
            State::Busy | State::Idle { .. } => Woken::Claim,
        }
    }

    /// The writer stored and claimed `events` for this subscription.
    pub(super) fn hand(&self, events: Sequenced) {
        *locked(&self.state) = State::Handed(events);
        self.wake.notify_one();
    }

    /// The writer could not hand it the events it reserved it for: it claims them itself.
    pub(super) fn release(&self) {
        *locked(&self.state) = State::Busy;
        self.wake.notify_one();
    }
}

/// Every section under these locks only assigns whole values, so a lock left by a panicking
/// thread still guards a consistent state: take it rather than panic in turn.
fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
