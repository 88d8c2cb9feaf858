//! Failures a job runner must tell apart: retry later (transient) or give up (permanent).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use clubpulse_mail::{Email, MailError, Mailer, MailerOptions, sink::SmtpSink};

const WAIT: Duration = Duration::from_secs(10);
const FROM: &str = "noreply@club.example";

fn email(to: &str, key: &str) -> Email {
    Email::new(
        to,
        Some("Ana"),
        key,
        "Hello",
        "Plain body\n",
        "<p>HTML body</p>",
    )
    .unwrap()
}

#[tokio::test]
async fn an_unreachable_relay_is_transient_and_a_retry_after_it_is_back_delivers_once() {
    // Arrange
    let mut sink = SmtpSink::start().await;
    let mailer = Mailer::from_url(&sink.url(), FROM).unwrap();
    let message = email("ana@example.com", "job-7");
    sink.stop().await;

    // Act
    let first = mailer.send(&message).await;
    sink.restart().await;
    let retry = mailer.send(&message).await;

    // Assert
    let error = first.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert_eq!(error.smtp_code(), None);
    retry.unwrap();
    let received = sink
        .wait_for(
            |m| m.message_id.as_deref() == Some("job-7@club.example"),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(received.to, ["ana@example.com"]);
    assert_eq!(sink.messages().len(), 1);
}

#[tokio::test]
async fn a_recipient_refused_with_5xx_is_permanent() {
    // Arrange
    let sink = SmtpSink::start().await;
    let mailer = Mailer::from_url(&sink.url(), FROM).unwrap();

    // Act
    let error = mailer
        .send(&email("nobody@reject.test", "k1"))
        .await
        .unwrap_err();

    // Assert
    assert!(error.is_permanent(), "{error:?}");
    assert!(
        matches!(
            error,
            MailError::Permanent {
                code: Some(550),
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        !error.to_string().contains("reject.test"),
        "no address in {error}"
    );
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn a_recipient_deferred_with_4xx_is_transient() {
    // Arrange
    let sink = SmtpSink::start().await;
    let mailer = Mailer::from_url(&sink.url(), FROM).unwrap();

    // Act
    let error = mailer
        .send(&email("busy@defer.test", "k2"))
        .await
        .unwrap_err();

    // Assert
    assert!(error.is_transient(), "{error:?}");
    assert_eq!(error.smtp_code(), Some(451));
}

#[tokio::test]
async fn credentials_in_the_url_authenticate_and_wrong_ones_are_permanent() {
    // Arrange
    let sink = SmtpSink::start_with_auth("club", "s3cret:pw").await;
    let url = |password: &str| format!("smtp://club:{password}@127.0.0.1:{}", sink.port());
    let good = Mailer::from_url(&url("s3cret%3Apw"), FROM).unwrap();
    let bad = Mailer::from_url(&url("wrong"), FROM).unwrap();
    let anonymous = Mailer::from_url(&sink.url(), FROM).unwrap();

    // Act
    let accepted = good.send(&email("ana@example.com", "auth-ok")).await;
    let refused = bad.send(&email("ana@example.com", "auth-bad")).await;
    let unauthenticated = anonymous.send(&email("ana@example.com", "auth-none")).await;

    // Assert
    accepted.unwrap();
    let refused = refused.unwrap_err();
    assert!(refused.is_permanent(), "{refused:?}");
    assert_eq!(refused.smtp_code(), Some(535));
    let unauthenticated = unauthenticated.unwrap_err();
    assert!(unauthenticated.is_permanent(), "{unauthenticated:?}");
    let ids: Vec<_> = sink
        .messages()
        .into_iter()
        .filter_map(|m| m.message_id)
        .collect();
    assert_eq!(ids, ["auth-ok@club.example"]);
}

#[tokio::test]
async fn a_relay_that_accepts_and_stays_silent_times_out_as_transient() {
    // Arrange: a listener that never says hello.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let options = MailerOptions {
        connect_timeout: Duration::from_millis(500),
        send_timeout: Duration::from_millis(700),
    };
    let mailer = Mailer::from_url_with(&format!("smtp://127.0.0.1:{port}"), FROM, options).unwrap();

    // Act
    let started = Instant::now();
    let error = mailer
        .send(&email("ana@example.com", "k3"))
        .await
        .unwrap_err();

    // Assert
    assert!(error.is_transient(), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    silent.abort();
}

#[tokio::test]
async fn tls_to_a_relay_that_speaks_plain_smtp_fails_without_sending() {
    // Arrange
    let sink = SmtpSink::start().await;
    let port = sink.port();
    let implicit = Mailer::from_url(&format!("smtps://127.0.0.1:{port}"), FROM).unwrap();
    let starttls =
        Mailer::from_url(&format!("smtp://127.0.0.1:{port}?tls=required"), FROM).unwrap();

    // Act
    let implicit = implicit.send(&email("ana@example.com", "tls-1")).await;
    let starttls = starttls.send(&email("ana@example.com", "tls-2")).await;

    // Assert
    let implicit = implicit.unwrap_err();
    assert!(implicit.is_transient(), "{implicit:?}");
    let starttls = starttls.unwrap_err();
    assert!(
        matches!(starttls, MailError::Permanent { code: None, .. }),
        "{starttls:?}"
    );
    assert!(starttls.to_string().contains("STARTTLS"), "{starttls}");
    assert!(sink.messages().is_empty());
}
