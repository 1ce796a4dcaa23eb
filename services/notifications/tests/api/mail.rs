//! Mail delivery: held while the SMTP server is down and delivered exactly once when it
//! returns; .eml files in the embedded default.

use std::time::Duration;

use bazaar_notifications::{FileMailer, Mail, Mailer};
use bazaar_testkit::eventually;

use crate::smtp;
use crate::support::{Harness, user_id};

crate::scenarios!(
    mail_waits_for_the_smtp_server_then_arrives_once: SmtpDown,
    embedded_default_writes_eml_files: Files,
);

async fn mail_waits_for_the_smtp_server_then_arrives_once(t: &Harness) {
    let mut users = Vec::new();
    for name in ["Ann", "Bob", "Cid"] {
        users.push(t.register(name).await);
    }
    for u in &users {
        eventually("a failed attempt while the server is down", || async {
            t.mails(user_id(u)).await[0].1 >= 1
        })
        .await;
        let (status, _, error) = t.mails(user_id(u)).await.remove(0);
        assert_eq!(status, "PENDING");
        assert!(error.is_some_and(|e| !e.is_empty()));
    }

    t.smtp().start().await;
    t.all_mail_sent().await;
    eventually("three mails at the SMTP server", || async {
        t.smtp().messages().len() >= 3
    })
    .await;

    // Down again, a new mail waits; back up on the same port, it arrives.
    t.smtp().stop();
    let dee = t.register("Dee").await;
    eventually("Dee's mail to fail once", || async {
        t.mails(user_id(&dee)).await[0].1 >= 1
    })
    .await;
    t.smtp().start().await;
    t.all_mail_sent().await;
    eventually("four mails at the SMTP server", || async {
        t.smtp().messages().len() >= 4
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ids = t.smtp().message_ids();
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert!(
        ids.values().all(|n| *n == 1),
        "a mail arrived twice: {ids:?}"
    );
    let subjects: Vec<String> = t
        .smtp()
        .messages()
        .iter()
        .map(|m| m.header("subject").to_owned())
        .collect();
    assert!(
        subjects.contains(&"Welcome to bazaar, Dee".to_owned()),
        "{subjects:?}"
    );
}

async fn embedded_default_writes_eml_files(t: &Harness) {
    let ann = t.register("Ann").await;
    t.all_mail_sent().await;
    let id: String =
        bazaar_db::sqlx::query_scalar("SELECT id FROM notifications WHERE user_id = $1")
            .bind(user_id(&ann))
            .fetch_one(t.db.pool())
            .await
            .unwrap();
    let path = t.platform.dir.path().join("mail").join(format!("{id}.eml"));
    let eml = std::fs::read_to_string(&path).expect("the .eml file");
    let m = smtp::parse(&eml);
    assert_eq!(m.header("message-id"), format!("<{id}@bazaar>"));
    assert_eq!(m.header("to"), "ann@example.com");
    assert_eq!(m.header("subject"), "Welcome to bazaar, Ann");
}

#[tokio::test]
async fn file_mailer_writes_parseable_eml_files() {
    let dir = tempfile::tempdir().unwrap();
    let mailer =
        FileMailer::new(dir.path().join("mail"), "bazaar <no-reply@bazaar.local>").unwrap();
    let mail = Mail {
        message_id: "0190a1b2-c3d4-7000-8000-0000000000aa".into(),
        to: "ann@example.com".into(),
        subject: "Grüße from bazaar".into(),
        body: "Hello Ann,\n\nyour order is on its way.\n".into(),
    };
    mailer.send(&mail).await.unwrap();
    // Sent again (a retry after a crash): the same file, not a second one.
    mailer.send(&mail).await.unwrap();

    let files: Vec<String> = std::fs::read_dir(dir.path().join("mail"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        files,
        [format!("{}.eml", mail.message_id)],
        "temp files left behind?"
    );
    let bytes = std::fs::read(mailer.path_of(&mail.message_id)).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains("\r\n"), "lines must end in CRLF");
    let m = smtp::parse(&text);
    assert_eq!(
        m.header("message-id"),
        format!("<{}@bazaar>", mail.message_id)
    );
    assert_eq!(m.header("from"), "bazaar <no-reply@bazaar.local>");
    assert_eq!(m.header("to"), "ann@example.com");
    assert!(
        m.header("subject").starts_with("=?utf-8?"),
        "{}",
        m.header("subject")
    );
    assert!(m.header("content-type").starts_with("text/plain"));
    assert!(!m.header("date").is_empty());
    assert_eq!(m.header("mime-version"), "1.0");
    assert!(
        m.body
            .replace("\r\n", "\n")
            .contains("your order is on its way.")
    );

    let bad = Mail {
        to: "not an address".into(),
        ..mail
    };
    let err = mailer.send(&bad).await.unwrap_err();
    assert!(err.to_string().starts_with("to:"), "{err}");
}
