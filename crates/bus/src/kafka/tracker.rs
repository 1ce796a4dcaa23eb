//! Offset bookkeeping of one group member: which deliveries of each assigned partition are
//! still unsettled, which nak'd ones wait in memory for their retry, and what offset to commit.
//!
//! Kafka keeps one committed offset per partition, not an ack per message. A nak must not hold
//! back the events behind it, so the retry waits here while later deliveries go on and are
//! acked; the committed offset is the lowest unsettled offset of the partition (or one past the
//! last delivery when everything is settled). A crash or a rebalance therefore redelivers from
//! the oldest unsettled event on, including some already acked after it: the inbox absorbs them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use crate::Envelope;

/// Where a delivery came from: its partition, offset and the assignment it belongs to. A
/// settlement of an earlier assignment of the partition (revoked meanwhile) is ignored, since
/// the partition's next owner starts again from the committed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub partition: i32,
    pub offset: i64,
    pub epoch: u64,
}

/// A nak'd delivery waiting for its retry.
#[derive(Debug, Clone)]
pub struct Retry {
    pub at: Position,
    pub due: Instant,
    pub event: Envelope,
}

#[derive(Debug, Default)]
struct Partition {
    epoch: u64,
    unsettled: BTreeSet<i64>,
    /// One past the highest offset seen in this assignment.
    next: Option<i64>,
    /// The last commit point handed to the broker.
    committed: Option<i64>,
}

impl Partition {
    fn commit_point(&self) -> Option<i64> {
        self.unsettled.first().copied().or(self.next)
    }
}

#[derive(Debug, Default)]
pub struct Tracker {
    epochs: u64,
    partitions: BTreeMap<i32, Partition>,
    retries: Vec<Retry>,
}

impl Tracker {
    /// The group gave us `partitions`: each starts afresh from its committed offset.
    pub fn assign(&mut self, partitions: impl IntoIterator<Item = i32>) {
        for p in partitions {
            self.epochs += 1;
            self.partitions.insert(
                p,
                Partition {
                    epoch: self.epochs,
                    ..Default::default()
                },
            );
        }
    }

    /// The group takes `partitions` away: returns their last commit points (to commit while
    /// we still own them) and forgets their unsettled deliveries and retries.
    pub fn revoke(&mut self, partitions: &[i32]) -> Vec<(i32, i64)> {
        let mut points = Vec::new();
        for p in partitions {
            if let Some(state) = self.partitions.remove(p)
                && let Some(point) = state.commit_point()
                && Some(point) != state.committed
            {
                points.push((*p, point));
            }
        }
        self.retries
            .retain(|r| !partitions.contains(&r.at.partition));
        points
    }

    /// Records a message read from the broker: `handed_out` when it becomes a delivery,
    /// otherwise it is settled at once (another type, not an event). False when the
    /// partition is not ours (a message fetched before a revocation): skip it.
    pub fn read(&mut self, partition: i32, offset: i64, handed_out: bool) -> Option<Position> {
        let state = self.partitions.get_mut(&partition)?;
        if handed_out {
            state.unsettled.insert(offset);
        }
        state.next = Some(state.next.map_or(offset + 1, |n| n.max(offset + 1)));
        Some(Position {
            partition,
            offset,
            epoch: state.epoch,
        })
    }

    fn current(&mut self, at: Position) -> Option<&mut Partition> {
        self.partitions
            .get_mut(&at.partition)
            .filter(|p| p.epoch == at.epoch)
    }

    /// Done with the delivery at `at`; false when its assignment is gone.
    pub fn settle(&mut self, at: Position) -> bool {
        self.retries.retain(|r| r.at != at);
        self.current(at)
            .is_some_and(|state| state.unsettled.remove(&at.offset))
    }

    /// Holds the delivery at `at` for a retry at `due`; its offset stays unsettled.
    pub fn park(&mut self, at: Position, due: Instant, event: Envelope) -> bool {
        let owned = self
            .current(at)
            .is_some_and(|state| state.unsettled.contains(&at.offset));
        if owned && !self.retries.iter().any(|r| r.at == at) {
            self.retries.push(Retry { at, due, event });
        }
        owned
    }

    /// Retries due at `now`, in offset order per partition, at most `max`.
    pub fn take_due(&mut self, now: Instant, max: usize) -> Vec<Retry> {
        let mut due: Vec<Retry> = Vec::new();
        let mut waiting = Vec::with_capacity(self.retries.len());
        for retry in self.retries.drain(..) {
            if retry.due <= now && due.len() < max {
                due.push(retry);
            } else {
                waiting.push(retry);
            }
        }
        self.retries = waiting;
        due.sort_by_key(|r| (r.at.partition, r.at.offset));
        due
    }

    /// When the next retry is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.retries.iter().map(|r| r.due).min()
    }

    /// Retries waiting in memory.
    pub fn waiting(&self) -> usize {
        self.retries.len()
    }

    /// Commit points that moved since the last call, remembered as committed.
    pub fn commits(&mut self) -> Vec<(i32, i64)> {
        let mut out = Vec::new();
        for (p, state) in &mut self.partitions {
            if let Some(point) = state.commit_point()
                && Some(point) != state.committed
            {
                state.committed = Some(point);
                out.push((*p, point));
            }
        }
        out
    }

    /// Forgets that the last commit points were sent (the commit failed): the next
    /// [`Tracker::commits`] offers them again.
    pub fn uncommitted(&mut self, points: &[(i32, i64)]) {
        for (p, point) in points {
            if let Some(state) = self.partitions.get_mut(p)
                && state.committed == Some(*point)
            {
                state.committed = None;
            }
        }
    }
}
