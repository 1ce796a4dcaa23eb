//! Making stored events durable before their relays hear so.
//!
//! The writer commits publishes without waiting for the disk, so subscriptions can take them at
//! once; a relay is answered (and marks its outbox rows published) only after an fsync of the
//! log's write-ahead file, which covers every commit written to it before. One fsync serves every
//! batch stored while the previous one ran.
//!
//! Why this loses nothing: until its relay is answered an event stays in its service's outbox.
//! A power loss before the fsync drops a suffix of the log (the write-ahead file is sequential),
//! claims and acks with it; the relays publish those events again under the same ids, and a
//! consumer that already applied one absorbs it in its inbox.

use std::io;
use std::path::PathBuf;

use tokio::sync::{mpsc, oneshot};

/// Where to tell a relay its batch is durable (or why not).
pub(super) type Answer = oneshot::Sender<Result<(), String>>;

/// Answers the relays of the batches the writer sends here, each once an fsync that started
/// after its commit has finished. Ends when the writer does.
pub(super) async fn answer_when_durable(
    wal: PathBuf,
    mut stored: mpsc::UnboundedReceiver<Vec<Answer>>,
) {
    while let Some(mut waiting) = stored.recv().await {
        while let Ok(more) = stored.try_recv() {
            waiting.extend(more);
        }
        let outcome = fsync(wal.clone())
            .await
            .map_err(|e| format!("cannot make the event log durable: {e}"));
        for answer in waiting {
            let _ = answer.send(outcome.clone());
        }
    }
}

/// fsync of the write-ahead file. Without one, SQLite has checkpointed every commit into the
/// database file and synced it, as it does before removing the file.
async fn fsync(wal: PathBuf) -> io::Result<()> {
    tokio::task::spawn_blocking(move || match std::fs::File::open(&wal) {
        Ok(file) => file.sync_data(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    })
    .await?
}
