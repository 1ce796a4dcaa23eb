//! Sending mail: the `Mailer` seam, and its two implementations — SMTP (lettre) for real
//! deployments, `.eml` files in the data directory for the embedded default and tests.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bazaar_runtime::Settings;

use async_trait::async_trait;
use lettre::message::{Mailbox, Message, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::io::AsyncWriteExt;

/// Longest one SMTP send may take before it counts as failed (and is retried).
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// The mailer the settings choose: SMTP at `smtp_url`, or `.eml` files under
/// `data_dir/mail` without one.
pub fn configured(settings: &Settings) -> anyhow::Result<Arc<dyn Mailer>> {
    Ok(match &settings.smtp_url {
        Some(url) => Arc::new(
            SmtpMailer::new(url.expose(), &settings.mail_from, SMTP_TIMEOUT)
                .context("cannot set up SMTP mail")?,
        ),
        None => Arc::new(
            FileMailer::new(settings.data_dir.join("mail"), &settings.mail_from)
                .context("cannot set up file mail")?,
        ),
    })
}

/// One mail to send. The message id is the notification's id, so a mail sent again after a
/// crash between sending and recording it carries the same `Message-ID` and can be recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub message_id: String,
    pub to: String,
    pub subject: String,
    /// Plain text.
    pub body: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// An address or id that cannot go into a message; names the field.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The transport did not take the message (server down, refused, timed out, disk full).
    #[error("delivery failed: {0}")]
    Delivery(String),
}

fn invalid(field: &'static str, reason: impl ToString) -> MailError {
    MailError::Invalid {
        field,
        reason: reason.to_string(),
    }
}

/// Sends mail somewhere. `Ok` means the message was handed over for good.
#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    async fn send(&self, mail: &Mail) -> Result<(), MailError>;
}

/// Parses the sender address (`settings.mail_from`), e.g. `bazaar <no-reply@bazaar.local>`.
pub fn parse_from(from: &str) -> Result<Mailbox, MailError> {
    from.parse().map_err(|e| invalid("mail_from", e))
}

/// Ids become file names and Message-IDs: only letters, digits and '-' may pass.
fn check_id(id: &str) -> Result<(), MailError> {
    if id.is_empty() || id.len() > 100 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(invalid(
            "message_id",
            format!("{id:?} is not a notification id"),
        ));
    }
    Ok(())
}

/// The RFC 5322 message for `mail`.
pub fn message(from: &Mailbox, mail: &Mail) -> Result<Message, MailError> {
    check_id(&mail.message_id)?;
    let to: Mailbox = mail.to.parse().map_err(|e| invalid("to", e))?;
    Message::builder()
        .message_id(Some(format!("<{}@bazaar>", mail.message_id)))
        .from(from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .singlepart(SinglePart::plain(mail.body.clone()))
        .map_err(|e| invalid("message", e))
}

/// Writes each mail as `<dir>/<message id>.eml`: the embedded stand-in for an SMTP server.
pub struct FileMailer {
    dir: PathBuf,
    from: Mailbox,
}

impl FileMailer {
    pub fn new(dir: impl Into<PathBuf>, from: &str) -> Result<FileMailer, MailError> {
        Ok(FileMailer {
            dir: dir.into(),
            from: parse_from(from)?,
        })
    }

    pub fn path_of(&self, message_id: &str) -> PathBuf {
        self.dir.join(format!("{message_id}.eml"))
    }
}

#[async_trait]
impl Mailer for FileMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let bytes = message(&self.from, mail)?.formatted();
        let io = |e: std::io::Error| MailError::Delivery(format!("{}: {e}", self.dir.display()));
        bazaar_db::private_dir(&self.dir).map_err(io)?;
        // Written aside, flushed to disk, then renamed: a reader never sees half a message,
        // and a crash leaves either the whole file or none.
        let tmp = self.dir.join(format!(".{}.eml.tmp", mail.message_id));
        // Mail holds names and addresses: for the owner only, like the rest of the data dir.
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .await
            .map_err(io)?;
        file.write_all(&bytes).await.map_err(io)?;
        file.sync_all().await.map_err(io)?;
        drop(file);
        tokio::fs::rename(&tmp, self.path_of(&mail.message_id))
            .await
            .map_err(io)?;
        Ok(())
    }
}

/// Sends through an SMTP server given as a URL: `smtp://host:port` (plain),
/// `smtp://host:port?tls=required` or `?tls=opportunistic` (STARTTLS), `smtps://host:port`
/// (TLS from the start); credentials as `smtp://user:password@host`.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    /// Each send (connect, dialogue, data) gives up after `timeout`, so a hung server only
    /// delays mail.
    pub fn new(url: &str, from: &str, timeout: Duration) -> Result<SmtpMailer, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| invalid("smtp_url", e))?
            .timeout(Some(timeout))
            .build();
        Ok(SmtpMailer {
            transport,
            from: parse_from(from)?,
        })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let message = message(&self.from, mail)?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| MailError::Delivery(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_the_notification_id() {
        let from = parse_from("bazaar <no-reply@bazaar.local>").unwrap();
        let mail = Mail {
            message_id: "0190-abc".into(),
            to: "ann@example.com".into(),
            subject: "Welcome".into(),
            body: "Hello".into(),
        };
        let text = String::from_utf8(message(&from, &mail).unwrap().formatted()).unwrap();
        assert!(text.contains("Message-ID: <0190-abc@bazaar>\r\n"), "{text}");
        let bad = Mail {
            message_id: "../x".into(),
            ..mail.clone()
        };
        assert!(matches!(
            message(&from, &bad),
            Err(MailError::Invalid {
                field: "message_id",
                ..
            })
        ));
        let bad = Mail {
            to: "not an address".into(),
            ..mail
        };
        assert!(matches!(
            message(&from, &bad),
            Err(MailError::Invalid { field: "to", .. })
        ));
        assert!(parse_from("nobody").is_err());
    }
}
