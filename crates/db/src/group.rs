//! Group commit for SQLite: concurrent write transactions on one file share one `COMMIT`, and
//! so one fsync, instead of queueing for an fsync each.
//!
//! SQLite has one writer per file, and with `synchronous = FULL` each commit waits for the
//! disk (about a millisecond here, several under I/O load). Writers already take turns through
//! an in-process queue (see [`crate::Tx`]); here each turn is a savepoint inside a transaction
//! that stays open while more writers are queued:
//!
//! - a writer's turn runs under `SAVEPOINT member`; its rollback rolls back only that savepoint;
//! - finishing a turn with writers still queued, it leaves the transaction open for the next
//!   one (the group) and queues again itself; whoever of the group comes first to a group that
//!   is still open commits it, for all;
//! - `commit` returns only once the group's `COMMIT` is durable, with its outcome: a commit that
//!   fails fails for every member, whose work then never happened.
//!
//! A member therefore sees the writes of earlier members of its group, as it would have after
//! their commits; a failed group rolls back all of them together, so nobody acted on a write
//! that was lost.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use sqlx::Executor;
use sqlx::pool::PoolConnection;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// Members at most in one group, so a steady stream of writers still commits regularly.
const MAX_MEMBERS: usize = 64;

/// The writers of one SQLite file: their queue and the group transaction left open in it.
#[derive(Debug, Default)]
pub(crate) struct Writers {
    queue: Arc<Mutex<Option<OpenGroup>>>,
    /// Writers waiting for their first turn (not members waiting for their group's commit).
    arriving: AtomicUsize,
}

/// A transaction left open for the next writer in the queue.
#[derive(Debug)]
struct OpenGroup {
    conn: PoolConnection<sqlx::Any>,
    group: Arc<Group>,
    /// Which pool's durability the transaction commits with (see `Db::connect_sqlite_relaxed`).
    durable: bool,
}

#[derive(Debug, Default)]
struct Group {
    members: AtomicUsize,
    outcome: OnceLock<Result<(), String>>,
}

/// One writer's turn: the connection, inside its savepoint of the group transaction.
pub(crate) struct Member {
    turn: Option<Turn>,
}

/// What a member holds until it finishes; moved onto a task to finish, so a caller that is
/// cancelled half-way (a client hanging up) cannot leave the group transaction half-done.
struct Turn {
    conn: PoolConnection<sqlx::Any>,
    queue: OwnedMutexGuard<Option<OpenGroup>>,
    group: Arc<Group>,
    durable: bool,
    writers: Arc<Writers>,
}

impl Writers {
    /// Waits for this writer's turn and opens its savepoint, joining the group transaction left
    /// open by the writer before it, or beginning one.
    pub(crate) async fn begin(
        self: &Arc<Self>,
        pool: &sqlx::AnyPool,
        durable: bool,
    ) -> Result<Member, sqlx::Error> {
        let (writers, pool) = (self.clone(), pool.clone());
        // On a task of its own: a caller cancelled while it waits must not leave the group's
        // connection half-way; a member it no longer wants rolls back when dropped.
        tokio::spawn(async move { writers.take_turn(&pool, durable).await })
            .await
            .map_err(|e| sqlx::Error::Protocol(format!("writer's turn failed: {e}")))?
    }

    async fn take_turn(
        self: Arc<Self>,
        pool: &sqlx::AnyPool,
        durable: bool,
    ) -> Result<Member, sqlx::Error> {
        let mut queue = {
            let _arriving = Arriving::new(&self.arriving);
            self.queue.clone().lock_owned().await
        };
        let open = match queue.take() {
            Some(open) if open.durable == durable => Some(open),
            // A group of the other durability: commit it for its members, then start afresh.
            Some(open) => {
                commit(open).await;
                None
            }
            None => None,
        };
        // A new group begins and opens the member's savepoint in one round trip to SQLite's
        // thread: on a quiet system each round trip is a good part of a transaction's time.
        let (mut conn, group, open_member) = match open {
            Some(open) => (open.conn, open.group, "SAVEPOINT member"),
            None => (
                pool.acquire().await?,
                Arc::default(),
                "BEGIN IMMEDIATE; SAVEPOINT member",
            ),
        };
        if let Err(e) = conn.execute(open_member).await {
            fail(conn, &group, &e).await;
            return Err(e);
        }
        group.members.fetch_add(1, Ordering::SeqCst);
        let turn = Turn {
            conn,
            queue,
            group,
            durable,
            writers: self,
        };
        Ok(Member { turn: Some(turn) })
    }
}

impl Member {
    pub(crate) fn conn(&mut self) -> &mut sqlx::AnyConnection {
        &mut self
            .turn
            .as_mut()
            .expect("a member holds its turn until it finishes")
            .conn
    }

    pub(crate) fn conn_ref(&self) -> &sqlx::AnyConnection {
        &self
            .turn
            .as_ref()
            .expect("a member holds its turn until it finishes")
            .conn
    }

    /// Keeps this member's writes and returns once they are durable with its group's.
    pub(crate) async fn commit(mut self) -> Result<(), sqlx::Error> {
        let turn = self.turn.take().expect("a member finishes once");
        finished(tokio::spawn(turn.commit())).await
    }

    /// Undoes this member's writes; earlier members of the group keep theirs.
    pub(crate) async fn rollback(mut self) -> Result<(), sqlx::Error> {
        let turn = self.turn.take().expect("a member finishes once");
        finished(tokio::spawn(turn.roll_back())).await
    }
}

impl Drop for Member {
    /// A member dropped unfinished (an early return with `?`) rolls back, as a transaction
    /// would; the group it leaves still needs its turn finished, so that runs on a task.
    fn drop(&mut self) {
        let Some(turn) = self.turn.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(turn.roll_back());
            }
            // No runtime left to finish on: closing the connection rolls the whole group back.
            Err(_) => {
                let _ = turn
                    .group
                    .outcome
                    .set(Err("the process is shutting down".into()));
                drop(turn.conn.detach());
            }
        }
    }
}

async fn finished(
    task: tokio::task::JoinHandle<Result<(), sqlx::Error>>,
) -> Result<(), sqlx::Error> {
    task.await
        .map_err(|e| sqlx::Error::Protocol(format!("finishing a write failed: {e}")))?
}

impl Turn {
    async fn commit(self) -> Result<(), sqlx::Error> {
        let full = self.group.members.load(Ordering::SeqCst) >= MAX_MEMBERS;
        if full || self.writers.arriving.load(Ordering::SeqCst) == 0 {
            // Nobody to leave the group open for: release and commit in one round trip.
            let (open, _queue, _) = self
                .end_savepoint("RELEASE SAVEPOINT member; COMMIT")
                .await?;
            let _ = open.group.outcome.set(Ok(()));
            return outcome(&open.group);
        }
        let (open, queue, writers) = self.end_savepoint("RELEASE SAVEPOINT member").await?;
        let group = open.group.clone();
        pass_on(open, queue, &writers).await;
        outcome(&group)
    }

    /// Rolls back this member's savepoint, then passes the group on (or commits it for the
    /// members waiting on it, or rolls back an empty one).
    async fn roll_back(self) -> Result<(), sqlx::Error> {
        let (mut open, queue, writers) = self
            .end_savepoint("ROLLBACK TO SAVEPOINT member; RELEASE SAVEPOINT member")
            .await?;
        if open.group.members.fetch_sub(1, Ordering::SeqCst) == 1 {
            // Nobody else wrote in this transaction: nothing to keep.
            let _ = open.conn.execute("ROLLBACK").await;
            return Ok(());
        }
        // Waits for the group like a commit: what this member saw of the others' writes (a
        // unique key taken, a count) is durable before its caller acts on it.
        pass_on(open, queue, &writers).await;
        Ok(())
    }

    /// Ends this member's savepoint with `statement` (release, or roll back and release) and
    /// hands back the group still open, with the queue to pass it on through. When the
    /// statement fails, the whole group fails with it.
    async fn end_savepoint(
        self,
        statement: &'static str,
    ) -> Result<(OpenGroup, OwnedMutexGuard<Option<OpenGroup>>, Arc<Writers>), sqlx::Error> {
        let Turn {
            mut conn,
            queue,
            group,
            durable,
            writers,
        } = self;
        if let Err(e) = conn.execute(statement).await {
            fail(conn, &group, &e).await;
            return Err(e);
        }
        let open = OpenGroup {
            conn,
            group,
            durable,
        };
        Ok((open, queue, writers))
    }
}

/// Ends a member's turn: commits its group now when no writer is waiting, else leaves it open
/// for the writers queued and queues up behind them; returns once the group is committed (or
/// failed), whoever of its members did it.
async fn pass_on(
    open: OpenGroup,
    mut queue: OwnedMutexGuard<Option<OpenGroup>>,
    writers: &Writers,
) {
    if writers.arriving.load(Ordering::SeqCst) == 0 {
        return commit(open).await;
    }
    let group = open.group.clone();
    *queue = Some(open);
    drop(queue);
    let mut queue = writers.queue.clone().lock_owned().await;
    if group.outcome.get().is_none()
        && let Some(open) = queue.take()
    {
        // Still open, so it is this member's group (one group is open at a time).
        commit(open).await;
    }
}

/// Commits a group and records the outcome for its members.
async fn commit(mut open: OpenGroup) {
    match open.conn.execute("COMMIT").await {
        Ok(_) => {
            let _ = open.group.outcome.set(Ok(()));
        }
        Err(e) => fail(open.conn, &open.group, &e).await,
    }
}

/// A statement of the group transaction itself failed: the whole group is rolled back, and the
/// connection, in a state we no longer know, is closed rather than returned to the pool.
async fn fail(mut conn: PoolConnection<sqlx::Any>, group: &Group, e: &sqlx::Error) {
    let _ = group.outcome.set(Err(e.to_string()));
    let _ = conn.execute("ROLLBACK").await;
    drop(conn.detach());
}

fn outcome(group: &Group) -> Result<(), sqlx::Error> {
    match group.outcome.get() {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err(sqlx::Error::Protocol(format!("group commit failed: {e}"))),
        None => Err(sqlx::Error::Protocol(
            "group commit left without an outcome".into(),
        )),
    }
}

/// Counts a writer waiting for its first turn, for as long as it waits (also when cancelled).
struct Arriving<'a>(&'a AtomicUsize);

impl<'a> Arriving<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Arriving(count)
    }
}

impl Drop for Arriving<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
