//! Each template, rendered and sent through a real SMTP server, arrives readable.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::{TimeZone, Utc};
use clubpulse_mail::{
    BookingDetails, Cancellation, Mailer, PasswordReset, Template,
    sink::{ReceivedMessage, SmtpSink},
};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(10);
const FROM: &str = "Club Pulse <noreply@club.example>";
/// Long on purpose: with the token, the link line is far past 76 characters.
const PUBLIC_URL: &str = "https://reservas.club-nautico-del-sur.example/";

fn mailer(sink: &SmtpSink) -> Mailer {
    Mailer::from_url(&sink.url(), FROM).unwrap()
}

fn booking_id() -> Uuid {
    Uuid::parse_str("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").unwrap()
}

fn booking() -> BookingDetails {
    BookingDetails {
        booking_id: booking_id(),
        display_name: "Zoë Fernández".into(),
        club_name: "Club Náutico del Sur".into(),
        facility_name: "Pista de pádel 3".into(),
        time_zone: chrono_tz::Europe::Madrid,
        start: Utc.with_ymd_and_hms(2025, 6, 14, 16, 0, 0).unwrap(),
        end: Utc.with_ymd_and_hms(2025, 6, 14, 17, 30, 0).unwrap(),
        price_cents: 2400,
        currency: "EUR".into(),
        booked_at: Utc.with_ymd_and_hms(2025, 6, 1, 9, 30, 0).unwrap(),
    }
}

/// What a person or a script does with the raw message: find `token=` and copy what follows, up
/// to the first character that cannot be part of a URL query value.
fn extract_token(raw: &str) -> Option<String> {
    let start = raw.find("reset-password?token=")? + "reset-password?token=".len();
    let token: String = raw[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "-._~%".contains(*c))
        .collect();
    (!token.is_empty()).then_some(token)
}

async fn received_by(sink: &SmtpSink, to: &str) -> ReceivedMessage {
    let to = to.to_owned();
    sink.wait_for(move |m| m.to.contains(&to), WAIT)
        .await
        .expect("the message arrives")
}

#[tokio::test]
async fn a_password_reset_arrives_and_a_reader_can_extract_the_token_from_the_raw_message() {
    // Arrange
    let sink = SmtpSink::start().await;
    let token = "q3N5-xT8_vK2.wL9~".to_owned() + &"aB7".repeat(15);
    let template = Template::PasswordReset(PasswordReset {
        display_name: "José Núñez".into(),
        token: token.clone(),
        expires_in_minutes: 30,
    });
    let email = template
        .render("jose@example.com", "password-reset.42", PUBLIC_URL)
        .unwrap();

    // Act
    mailer(&sink).send(&email).await.unwrap();

    // Assert
    let received = received_by(&sink, "jose@example.com").await;
    assert_eq!(received.subject, "Reset your Club Pulse password");
    assert_eq!(received.header_to, ["jose@example.com"]);
    assert_eq!(received.mail_from, "noreply@club.example");
    assert_eq!(
        received.message_id.as_deref(),
        Some("password-reset.42@club.example")
    );
    assert_eq!(
        extract_token(&received.raw).as_deref(),
        Some(token.as_str())
    );
    assert_eq!(
        extract_token(&received.text).as_deref(),
        Some(token.as_str())
    );
    assert!(
        received.text.starts_with("Hello José Núñez,"),
        "{}",
        received.text
    );
    assert!(received.text.contains("within 30 minutes"));
    let link =
        format!("https://reservas.club-nautico-del-sur.example/reset-password?token={token}");
    assert!(received.html.unwrap().contains(&link));
    assert!(received.raw.contains("Auto-Submitted: auto-generated"));
}

#[tokio::test]
async fn a_booking_confirmation_arrives_with_its_calendar_event() {
    // Arrange
    let sink = SmtpSink::start().await;
    let email = Template::BookingConfirmed(booking())
        .render("zoe@example.com", "booking-confirmed.0190a1b2", PUBLIC_URL)
        .unwrap();

    // Act
    mailer(&sink).send(&email).await.unwrap();

    // Assert
    let received = received_by(&sink, "zoe@example.com").await;
    assert_eq!(
        received.subject,
        "Booking confirmed: Pista de pádel 3 at Club Náutico del Sur, Sat 14 Jun, 18:00"
    );
    assert!(
        received
            .text
            .contains("Saturday 14 June 2025, 18:00–19:30 (Europe/Madrid)")
    );
    assert!(received.text.contains("24.00 EUR"));
    assert!(received.text.contains(&booking_id().to_string()));

    let [ics] = received.attachments.as_slice() else {
        panic!("one attachment, got {:?}", received.attachments)
    };
    assert_eq!(ics.filename.as_deref(), Some("booking.ics"));
    assert_eq!(ics.content_type, "text/calendar");
    assert_eq!(ics.parameter("method"), Some("PUBLISH"));
    let calendar = ics.text();
    assert!(
        calendar.contains(&format!("\r\nUID:{}\r\n", booking_id())),
        "{calendar}"
    );
    assert!(calendar.contains("\r\nDTSTART:20250614T160000Z\r\n"));
    assert!(calendar.contains("\r\nDTEND:20250614T173000Z\r\n"));
    assert!(calendar.contains("\r\nLOCATION:Club Náutico del Sur\r\n"));
    assert!(calendar.split("\r\n").all(|line| line.len() <= 75));
}

#[tokio::test]
async fn a_booking_cancellation_arrives_with_the_late_fee() {
    // Arrange
    let sink = SmtpSink::start().await;
    let b = booking();
    let template = Template::BookingCancelled(Cancellation {
        booking_id: b.booking_id,
        display_name: b.display_name,
        club_name: b.club_name,
        facility_name: b.facility_name,
        time_zone: b.time_zone,
        start: b.start,
        end: b.end,
        fee_cents: Some(1200),
        currency: b.currency,
    });
    let email = template
        .render("zoe@example.com", "booking-cancelled.0190a1b2", PUBLIC_URL)
        .unwrap();

    // Act
    mailer(&sink).send(&email).await.unwrap();

    // Assert
    let received = received_by(&sink, "zoe@example.com").await;
    assert!(
        received
            .subject
            .starts_with("Booking cancelled: Pista de pádel 3 at Club Náutico del Sur")
    );
    assert!(
        received.text.contains("late-cancellation fee of 12.00 EUR"),
        "{}",
        received.text
    );
    assert!(
        received
            .text
            .contains("Saturday 14 June 2025, 18:00–19:30 (Europe/Madrid)")
    );
    assert!(received.text.contains(&booking_id().to_string()));
    assert!(received.attachments.is_empty());
}

#[tokio::test]
async fn messages_are_listed_in_arrival_order() {
    // Arrange
    let sink = SmtpSink::start().await;
    let mailer = mailer(&sink);

    // Act
    for n in 0..3 {
        let email = Template::BookingConfirmed(booking())
            .render(
                &format!("member{n}@example.com"),
                &format!("order-{n}"),
                PUBLIC_URL,
            )
            .unwrap();
        mailer.send(&email).await.unwrap();
    }

    // Assert
    let ids: Vec<_> = sink
        .messages()
        .into_iter()
        .filter_map(|m| m.message_id)
        .collect();
    assert_eq!(
        ids,
        [
            "order-0@club.example",
            "order-1@club.example",
            "order-2@club.example"
        ]
    );
}
