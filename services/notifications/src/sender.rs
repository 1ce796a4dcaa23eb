//! The mailer task: sends queued mail apart from event handling, so a slow or absent mail
//! server delays mail but never the consumer. Failures back off per mail (1 s doubling to
//! 60 s) with no limit: mail is late, never lost.

use std::sync::Arc;
use std::time::Duration;

use bazaar_db::{Db, DbError, now_millis};
use bazaar_runtime::Task;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::domain::retry_delay;
use crate::mail::{Mail, Mailer, SMTP_TIMEOUT};
use crate::store::{self, DueMail};

/// How often the queue is looked at without a wake-up (mail queued by another replica, or
/// whose backoff ran out).
const POLL: Duration = Duration::from_millis(500);
/// A wake-up comes from inside the transaction that queued the mail, just before it commits:
/// waiting this long lets the commit land (and gathers a burst of events into one pass).
const SETTLE: Duration = Duration::from_millis(25);
/// Mails taken per pass.
const BATCH: i64 = 50;
/// How long the mail of a pass is reserved for its sender. A pass sends only while at least
/// two SMTP timeouts of it remain, so only a sender that died (or a pass of hung sends) leaves
/// mail to be retried after it.
pub const LEASE: Duration = Duration::from_secs(120);

/// The task: a pass over due mail at every wake-up and every [`POLL`], until stopped.
pub fn task(db: Db, mailer: Arc<dyn Mailer>, wake: Arc<Notify>) -> Task {
    Box::new(move |stop: CancellationToken| Box::pin(run(db, mailer, wake, stop)))
}

async fn run(db: Db, mailer: Arc<dyn Mailer>, wake: Arc<Notify>, stop: CancellationToken) {
    loop {
        let wait = match send_due(&db, mailer.as_ref(), &stop).await {
            // A full batch means more are probably due: go again at once.
            Ok(n) if n as i64 >= BATCH => Duration::ZERO,
            Ok(_) => POLL,
            Err(e) => {
                tracing::warn!(error = %e, "mail queue unavailable; retrying");
                POLL * 4
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = wake.notified() => tokio::time::sleep(SETTLE).await,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// One pass: claims and sends every due mail (up to a batch). Returns how many it looked at.
pub async fn send_due(
    db: &Db,
    mailer: &dyn Mailer,
    stop: &CancellationToken,
) -> Result<usize, DbError> {
    let due = store::due_mail(db, now_millis(), BATCH).await?;
    // One claim for the pass (not one commit per mail); each mail is still marked sent as
    // soon as it went, so a crash re-sends at most the mail that was on its way.
    let now = now_millis();
    let lease_until = now + LEASE.as_millis() as i64;
    let ids: Vec<&str> = due.iter().map(|m| m.notification_id.as_str()).collect();
    let claimed = store::claim_mails(db, &ids, now, lease_until).await?;
    for mail in &due {
        // A send may take up to the SMTP timeout: mail the lease no longer covers is left to
        // be claimed again when the lease runs out, never sent while another may take it.
        let covered = now_millis() + SMTP_TIMEOUT.as_millis() as i64 * 2 < lease_until;
        if stop.is_cancelled() || !covered {
            break;
        }
        if !claimed.contains(&mail.notification_id) {
            continue; // another replica has it
        }
        send_one(db, mailer, mail).await?;
    }
    Ok(due.len())
}

async fn send_one(db: &Db, mailer: &dyn Mailer, due: &DueMail) -> Result<(), DbError> {
    let outcome = match &due.to {
        // The user's registration has not reached us yet: try again later.
        None => Err(format!(
            "no email address known yet for user {}",
            due.user_id
        )),
        Some(to) => {
            let mail = Mail {
                message_id: due.notification_id.clone(),
                to: to.clone(),
                subject: due.subject.clone(),
                body: due.body.clone(),
            };
            match mailer.send(&mail).await {
                Ok(()) => Ok(to),
                Err(e) => Err(e.to_string()),
            }
        }
    };
    match outcome {
        Ok(to) => {
            metrics::counter!("bazaar_mail_sent_total").increment(1);
            store::mail_sent(db, &due.notification_id, to, now_millis()).await
        }
        Err(error) => {
            let attempts = due.attempts + 1;
            let next = now_millis() + retry_delay(attempts).as_millis() as i64;
            metrics::counter!("bazaar_mail_failed_total").increment(1);
            tracing::warn!(notification_id = %due.notification_id, attempts, error = %error,
                "mail not sent; will retry");
            store::mail_failed(db, &due.notification_id, attempts, next, &error).await
        }
    }
}
