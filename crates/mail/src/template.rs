//! [`Template`]: the messages Club Pulse sends, as data a background job can carry, and their
//! rendering into an [`Email`] (text, HTML and, for a booking, an `.ics` file).
//!
//! Plain Rust rather than a template engine: a few short messages, checked by the compiler. Every
//! value is escaped where it lands: HTML escaping in the HTML part, RFC 5545 escaping in the
//! calendar, control characters flattened in the subject. Times are stored in UTC and shown in
//! the club's time zone; amounts are integers in the currency's minor unit.

use std::fmt;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use clubpulse_calendar as ics;

use crate::{Attachment, Email, MailError, html};

/// The product name, in subjects and signatures.
const PRODUCT: &str = "Club Pulse";

/// A message to render, with everything it needs. Serialises as an object with a `template` tag
/// (`"password_reset"`, `"booking_confirmed"`, `"booking_cancelled"`, `"waitlist_offer"`) beside
/// the fields of its variant, so it can ride in a job payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "template", rename_all = "snake_case")]
pub enum Template {
    /// A link to choose a new password.
    PasswordReset(PasswordReset),
    /// A booking was confirmed; carries an `.ics` file.
    BookingConfirmed(BookingDetails),
    /// A booking was cancelled, maybe with a late-cancellation fee.
    BookingCancelled(Cancellation),
    /// A slot the member waited for freed up and is held for them until `expires_at`.
    WaitlistOffer(WaitlistOffer),
}

/// The password-reset message. `Debug` hides the token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordReset {
    /// How to greet the member.
    pub display_name: String,
    /// The single-use reset token, as the reset endpoint expects it. Percent-encoded into the link
    /// if it holds anything beyond `A-Z a-z 0-9 - . _ ~`.
    pub token: String,
    /// How long the link works, in minutes.
    pub expires_in_minutes: u32,
}

impl fmt::Debug for PasswordReset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordReset")
            .field("display_name", &self.display_name)
            .field("token", &"<redacted>")
            .field("expires_in_minutes", &self.expires_in_minutes)
            .finish()
    }
}

/// A confirmed booking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingDetails {
    /// The booking; also the calendar event's `UID`, so a later message about the same booking
    /// updates the same calendar entry.
    pub booking_id: Uuid,
    /// How to greet the member.
    pub display_name: String,
    /// The club's name; the event's `LOCATION`.
    pub club_name: String,
    /// The facility booked (`Court 3`).
    pub facility_name: String,
    /// The club's time zone, for the times shown in the message (an IANA name in JSON).
    pub time_zone: Tz,
    /// Start, inclusive.
    pub start: DateTime<Utc>,
    /// End, exclusive.
    pub end: DateTime<Utc>,
    /// The price in minor units (cents) of `currency`.
    pub price_cents: i64,
    /// ISO 4217 code (`EUR`).
    pub currency: String,
    /// When the booking was confirmed: the event's `DTSTAMP`. From the payload rather than the
    /// clock, so a retried job renders the same calendar file.
    pub booked_at: DateTime<Utc>,
}

/// A cancelled booking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancellation {
    /// The booking.
    pub booking_id: Uuid,
    /// How to greet the member.
    pub display_name: String,
    /// The club's name.
    pub club_name: String,
    /// The facility that was booked.
    pub facility_name: String,
    /// The club's time zone, for the times shown (an IANA name in JSON).
    pub time_zone: Tz,
    /// Start of the cancelled booking.
    pub start: DateTime<Utc>,
    /// End of the cancelled booking.
    pub end: DateTime<Utc>,
    /// The late-cancellation fee in minor units of `currency`; `None` (or 0) when it was free.
    pub fee_cents: Option<i64>,
    /// ISO 4217 code of the fee.
    pub currency: String,
}

/// A waitlist offer: a hold in the member's name that passes to the next waiter unless confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitlistOffer {
    /// The offer hold.
    pub booking_id: Uuid,
    /// How to greet the member.
    pub display_name: String,
    /// The club's name.
    pub club_name: String,
    /// The facility held (`Court 3`).
    pub facility_name: String,
    /// The club's time zone, for the times shown (an IANA name in JSON).
    pub time_zone: Tz,
    /// Start of the held range.
    pub start: DateTime<Utc>,
    /// End of the held range.
    pub end: DateTime<Utc>,
    /// When the offer passes on unless confirmed.
    pub expires_at: DateTime<Utc>,
    /// The price in minor units (cents) of `currency`.
    pub price_cents: i64,
    /// ISO 4217 code (`EUR`).
    pub currency: String,
}

impl Template {
    /// A short stable name for logs and metrics: the serde tag.
    pub fn name(&self) -> &'static str {
        match self {
            Self::PasswordReset(_) => "password_reset",
            Self::BookingConfirmed(_) => "booking_confirmed",
            Self::BookingCancelled(_) => "booking_cancelled",
            Self::WaitlistOffer(_) => "waitlist_offer",
        }
    }

    /// Renders the message for the address `to`. `message_id` is the caller's stable key for this
    /// message (a job id, say; see [`MessageId`](crate::MessageId)); `public_url` is where members
    /// reach the service (`https://club.example`), the base of every link.
    pub fn render(&self, to: &str, message_id: &str, public_url: &str) -> Result<Email, MailError> {
        let base = base_url(public_url)?;
        match self {
            Self::PasswordReset(reset) => reset.render(to, message_id, &base),
            Self::BookingConfirmed(booking) => booking.render(to, message_id, &base),
            Self::BookingCancelled(cancellation) => cancellation.render(to, message_id, &base),
            Self::WaitlistOffer(offer) => offer.render(to, message_id, &base),
        }
    }
}

impl PasswordReset {
    fn render(&self, to: &str, message_id: &str, base: &str) -> Result<Email, MailError> {
        let link = format!(
            "{base}/reset-password?token={}",
            percent_encode(&self.token)
        );
        let expiry = minutes_in_words(self.expires_in_minutes);
        let subject = format!("Reset your {PRODUCT} password");
        let text = format!(
            "{greeting}\n\
             \n\
             Someone asked to reset the password of your {PRODUCT} account. To choose a new\n\
             password, open this link within {expiry}; it works once:\n\
             \n\
             {link}\n\
             \n\
             If you did not ask for this, ignore this message: your password stays as it is.\n\
             \n\
             {PRODUCT}\n",
            greeting = greeting(&self.display_name),
        );
        let body = [
            html::paragraph(&greeting(&self.display_name)),
            html::paragraph(&format!(
                "Someone asked to reset the password of your {PRODUCT} account. To choose a new \
                 password, open this link within {expiry}; it works once:"
            )),
            html::button(&link, "Choose a new password"),
            format!(
                "<p style=\"font-size:13px;color:#52606d;\">Or paste this address into your browser: \
                 <br><a href=\"{href}\">{href}</a></p>\n",
                href = html::escape(&link)
            ),
            html::paragraph(
                "If you did not ask for this, ignore this message: your password stays as it is.",
            ),
        ]
        .concat();
        Email::new(
            to,
            Some(&self.display_name),
            message_id,
            subject.clone(),
            text,
            html::page(&subject, &body),
        )
    }
}

/// The subject of a message about one booking: what happened, where and when (local time).
fn booking_subject(
    what: &str,
    facility: &str,
    club: &str,
    time_zone: Tz,
    start: DateTime<Utc>,
) -> String {
    format!(
        "Booking {what}: {} at {}, {}",
        one_line(facility),
        one_line(club),
        local_short(time_zone, start),
    )
}

/// Where a member sees one booking.
fn booking_link(base: &str, booking_id: Uuid) -> String {
    format!("{base}/bookings/{booking_id}")
}

impl BookingDetails {
    fn render(&self, to: &str, message_id: &str, base: &str) -> Result<Email, MailError> {
        let link = booking_link(base, self.booking_id);
        let when = local_span(self.time_zone, self.start, self.end);
        let price = money(self.price_cents, &self.currency);
        let id = self.booking_id.to_string();
        let subject = booking_subject(
            "confirmed",
            &self.facility_name,
            &self.club_name,
            self.time_zone,
            self.start,
        );
        let rows = [
            ("Club", self.club_name.as_str()),
            ("Facility", self.facility_name.as_str()),
            ("When", when.as_str()),
            ("Price", price.as_str()),
            ("Booking", id.as_str()),
        ];
        let text = format!(
            "{greeting}\n\
             \n\
             Your booking is confirmed.\n\
             \n\
             {rows}\
             \n\
             See or cancel it here: {link}\n\
             \n\
             The attached booking.ics adds it to your calendar.\n\
             \n\
             {PRODUCT}\n",
            greeting = greeting(&self.display_name),
            rows = text_rows(&rows),
        );
        let body = [
            "<h1 style=\"font-size:20px;\">Your booking is confirmed</h1>\n".to_owned(),
            html::paragraph(&greeting(&self.display_name)),
            html::table(&rows),
            html::button(&link, "See your booking"),
            html::paragraph("The attached booking.ics adds it to your calendar."),
        ]
        .concat();
        // The calendar file, written by the same module as the booking page's and the feed's.
        let calendar = ics::Calendar {
            method: Some("PUBLISH"),
            events: vec![ics::Event {
                uid: &id,
                stamp: self.booked_at,
                start: self.start,
                end: self.end,
                summary: &format!("{} – {}", self.facility_name, self.club_name),
                location: &self.club_name,
                description: Some(&format!(
                    "Booking {id}\n{} at {}\n{when}\nPrice: {price}\n{link}",
                    self.facility_name, self.club_name
                )),
                url: Some(&link),
                status: ics::Status::Confirmed,
                sequence: 0,
            }],
            ..ics::Calendar::default()
        }
        .to_ics();
        let attachment = Attachment::new(
            "booking.ics",
            "text/calendar; charset=UTF-8; method=PUBLISH",
            calendar,
        )?;
        Ok(Email::new(
            to,
            Some(&self.display_name),
            message_id,
            subject.clone(),
            text,
            html::page(&subject, &body),
        )?
        .with_attachment(attachment))
    }
}

impl Cancellation {
    fn render(&self, to: &str, message_id: &str, base: &str) -> Result<Email, MailError> {
        let link = booking_link(base, self.booking_id);
        let when = local_span(self.time_zone, self.start, self.end);
        let id = self.booking_id.to_string();
        let fee = self
            .fee_cents
            .filter(|cents| *cents > 0)
            .map(|cents| money(cents, &self.currency));
        let fee_shown = fee.clone().unwrap_or_else(|| "none".to_owned());
        let fee_sentence = match &fee {
            Some(amount) => format!(
                "The booking was cancelled late, so a late-cancellation fee of {amount} applies."
            ),
            None => "No cancellation fee applies.".to_owned(),
        };
        let subject = booking_subject(
            "cancelled",
            &self.facility_name,
            &self.club_name,
            self.time_zone,
            self.start,
        );
        let rows = [
            ("Club", self.club_name.as_str()),
            ("Facility", self.facility_name.as_str()),
            ("When", when.as_str()),
            ("Booking", id.as_str()),
            ("Fee", fee_shown.as_str()),
        ];
        let text = format!(
            "{greeting}\n\
             \n\
             Your booking has been cancelled.\n\
             \n\
             {rows}\
             \n\
             {fee_sentence}\n\
             \n\
             Details: {link}\n\
             \n\
             {PRODUCT}\n",
            greeting = greeting(&self.display_name),
            rows = text_rows(&rows),
        );
        let body = [
            "<h1 style=\"font-size:20px;\">Your booking has been cancelled</h1>\n".to_owned(),
            html::paragraph(&greeting(&self.display_name)),
            html::table(&rows),
            html::paragraph(&fee_sentence),
            html::button(&link, "See the booking"),
        ]
        .concat();
        Email::new(
            to,
            Some(&self.display_name),
            message_id,
            subject.clone(),
            text,
            html::page(&subject, &body),
        )
    }
}

impl WaitlistOffer {
    fn render(&self, to: &str, message_id: &str, base: &str) -> Result<Email, MailError> {
        let link = booking_link(base, self.booking_id);
        let when = local_span(self.time_zone, self.start, self.end);
        let until = self
            .expires_at
            .with_timezone(&self.time_zone)
            .format("%H:%M on %A %-d %B")
            .to_string();
        let price = money(self.price_cents, &self.currency);
        let id = self.booking_id.to_string();
        let subject = format!(
            "A slot you waited for is free: {} at {}, {}",
            one_line(&self.facility_name),
            one_line(&self.club_name),
            local_short(self.time_zone, self.start),
        );
        let rows = [
            ("Club", self.club_name.as_str()),
            ("Facility", self.facility_name.as_str()),
            ("When", when.as_str()),
            ("Price", price.as_str()),
            ("Held until", until.as_str()),
            ("Booking", id.as_str()),
        ];
        let sentence = format!(
            "The slot you were waiting for has freed up, and we are holding it for you until \
             {until}. Confirm it before then; after that it passes to the next member waiting."
        );
        let text = format!(
            "{greeting}\n\
             \n\
             {sentence}\n\
             \n\
             {rows}\
             \n\
             Confirm or release it here: {link}\n\
             \n\
             {PRODUCT}\n",
            greeting = greeting(&self.display_name),
            rows = text_rows(&rows),
        );
        let body = [
            "<h1 style=\"font-size:20px;\">A slot you waited for is free</h1>\n".to_owned(),
            html::paragraph(&greeting(&self.display_name)),
            html::paragraph(&sentence),
            html::table(&rows),
            html::button(&link, "Confirm your booking"),
        ]
        .concat();
        Email::new(
            to,
            Some(&self.display_name),
            message_id,
            subject.clone(),
            text,
            html::page(&subject, &body),
        )
    }
}

/// The public URL without a trailing slash, checked to be an absolute http(s) URL.
fn base_url(public_url: &str) -> Result<String, MailError> {
    let base = public_url.trim().trim_end_matches('/');
    let ok = (base.starts_with("https://") || base.starts_with("http://"))
        && base.len() > "https://".len()
        && !base.contains(|c: char| {
            c.is_whitespace() || c.is_control() || matches!(c, '"' | '<' | '>')
        });
    if ok {
        Ok(base.to_owned())
    } else {
        Err(MailError::InvalidMessage(format!(
            "the public URL {public_url:?} is not an http(s) URL"
        )))
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so the value is one query
/// parameter whatever it holds.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn greeting(display_name: &str) -> String {
    let name = one_line(display_name);
    if name.is_empty() {
        "Hello,".to_owned()
    } else {
        format!("Hello {name},")
    }
}

/// A value for a one-line place (a subject, a greeting): control characters become spaces.
fn one_line(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// `Label:    value` lines, labels padded to one column.
fn text_rows(rows: &[(&str, &str)]) -> String {
    let width = rows.iter().map(|(label, _)| label.len()).max().unwrap_or(0) + 2;
    rows.iter()
        .map(|(label, value)| format!("  {:<width$}{}\n", format!("{label}:"), one_line(value)))
        .collect()
}

/// "30 minutes", "1 hour", "2 hours", "90 minutes".
fn minutes_in_words(minutes: u32) -> String {
    match minutes {
        1 => "1 minute".to_owned(),
        60 => "1 hour".to_owned(),
        m if m > 0 && m % 60 == 0 => format!("{} hours", m / 60),
        m => format!("{m} minutes"),
    }
}

/// `Saturday 14 June 2025, 18:00–19:30 (Europe/Madrid)` in the club's zone; both dates when the
/// booking crosses local midnight.
fn local_span(tz: Tz, start: DateTime<Utc>, end: DateTime<Utc>) -> String {
    let (start, end) = (start.with_timezone(&tz), end.with_timezone(&tz));
    let day = "%A %-d %B %Y";
    if start.date_naive() == end.date_naive() {
        format!(
            "{}, {}–{} ({})",
            start.format(day),
            start.format("%H:%M"),
            end.format("%H:%M"),
            tz.name()
        )
    } else {
        format!(
            "{}, {} – {}, {} ({})",
            start.format(day),
            start.format("%H:%M"),
            end.format(day),
            end.format("%H:%M"),
            tz.name()
        )
    }
}

/// `Sat 14 Jun, 18:00`, for subjects.
fn local_short(tz: Tz, at: DateTime<Utc>) -> String {
    at.with_timezone(&tz).format("%a %-d %b, %H:%M").to_string()
}

/// `12.50 EUR`, `1500 JPY`, `1.250 KWD`: minor units shown with the currency's ISO 4217
/// exponent (2 unless listed).
fn money(minor: i64, currency: &str) -> String {
    let code = currency.trim().to_ascii_uppercase();
    let exponent: u32 = match code.as_str() {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    };
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    if exponent == 0 {
        return format!("{sign}{abs} {code}");
    }
    let scale = 10_u64.pow(exponent);
    let width = exponent as usize;
    format!("{sign}{}.{:0width$} {code}", abs / scale, abs % scale)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    const TO: &str = "ana@example.com";
    const BASE: &str = "https://club.example/";

    fn booking() -> BookingDetails {
        BookingDetails {
            booking_id: Uuid::parse_str("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").unwrap(),
            display_name: "Ana <Admin>".into(),
            club_name: "Club Náutico, Sur".into(),
            facility_name: "Pista 1 & 2".into(),
            time_zone: chrono_tz::Europe::Madrid,
            start: Utc.with_ymd_and_hms(2025, 6, 14, 16, 0, 0).unwrap(),
            end: Utc.with_ymd_and_hms(2025, 6, 14, 17, 30, 0).unwrap(),
            price_cents: 1250,
            currency: "EUR".into(),
            booked_at: Utc.with_ymd_and_hms(2025, 6, 1, 9, 30, 0).unwrap(),
        }
    }

    fn cancellation(fee_cents: Option<i64>) -> Cancellation {
        let b = booking();
        Cancellation {
            booking_id: b.booking_id,
            display_name: b.display_name,
            club_name: b.club_name,
            facility_name: b.facility_name,
            time_zone: b.time_zone,
            start: b.start,
            end: b.end,
            fee_cents,
            currency: "EUR".into(),
        }
    }

    fn reset(token: &str) -> Template {
        Template::PasswordReset(PasswordReset {
            display_name: "José".into(),
            token: token.into(),
            expires_in_minutes: 30,
        })
    }

    #[test]
    fn a_password_reset_links_to_the_reset_page_with_the_token() {
        let email = reset("tok_123-abc").render(TO, "reset-1", BASE).unwrap();
        assert_eq!(email.subject(), "Reset your Club Pulse password");
        assert_eq!(email.to(), TO);
        assert!(email.text().starts_with("Hello José,\n"));
        assert!(
            email
                .text()
                .contains("\nhttps://club.example/reset-password?token=tok_123-abc\n")
        );
        assert!(email.text().contains("within 30 minutes"));
        assert!(
            email
                .html()
                .contains("href=\"https://club.example/reset-password?token=tok_123-abc\"")
        );
        assert!(email.attachments().is_empty());
    }

    #[test]
    fn a_token_with_reserved_characters_is_percent_encoded() {
        let email = reset("a+b/c=&d").render(TO, "reset-1", BASE).unwrap();
        assert!(email.text().contains("token=a%2Bb%2Fc%3D%26d\n"));
    }

    #[test]
    fn names_are_html_escaped_in_the_html_part_only() {
        let email = Template::BookingConfirmed(booking())
            .render(TO, "b-1", BASE)
            .unwrap();
        assert!(email.html().contains("Hello Ana &lt;Admin&gt;,"));
        assert!(email.html().contains("Pista 1 &amp; 2"));
        assert!(!email.html().contains("<Admin>"));
        assert!(email.text().contains("Hello Ana <Admin>,"));
        assert!(email.text().contains("Pista 1 & 2"));
    }

    #[test]
    fn a_confirmation_shows_local_times_price_and_attaches_the_event() {
        let email = Template::BookingConfirmed(booking())
            .render(TO, "b-1", BASE)
            .unwrap();
        assert_eq!(
            email.subject(),
            "Booking confirmed: Pista 1 & 2 at Club Náutico, Sur, Sat 14 Jun, 18:00"
        );
        let text = email.text();
        assert!(
            text.contains("When:     Saturday 14 June 2025, 18:00–19:30 (Europe/Madrid)\n"),
            "{text}"
        );
        assert!(text.contains("Price:    12.50 EUR\n"), "{text}");
        assert!(
            text.contains("Booking:  0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b\n"),
            "{text}"
        );
        assert!(
            text.contains("https://club.example/bookings/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b\n")
        );

        let [attachment] = email.attachments() else {
            panic!("one attachment")
        };
        assert_eq!(attachment.filename(), "booking.ics");
        assert!(attachment.content_type().starts_with("text/calendar"));
        assert!(attachment.content_type().contains("method=PUBLISH"));
        let ics = std::str::from_utf8(attachment.content()).unwrap();
        assert!(ics.contains("UID:0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b\r\n"));
        assert!(ics.contains("DTSTART:20250614T160000Z\r\n"));
        assert!(ics.contains("DTEND:20250614T173000Z\r\n"));
        assert!(ics.contains("DTSTAMP:20250601T093000Z\r\n"));
        assert_eq!(
            ics::property(ics, "SUMMARY").unwrap(),
            r"Pista 1 & 2 – Club Náutico\, Sur"
        );
        assert_eq!(
            ics::property(ics, "LOCATION").unwrap(),
            r"Club Náutico\, Sur"
        );
        let description = ics::property(ics, "DESCRIPTION").unwrap();
        assert!(
            description.contains(r"\nPrice: 12.50 EUR\n"),
            "{description}"
        );
        assert!(
            description
                .ends_with("https://club.example/bookings/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
        );
    }

    #[test]
    fn rendering_is_deterministic() {
        let a = Template::BookingConfirmed(booking())
            .render(TO, "b-1", BASE)
            .unwrap();
        let b = Template::BookingConfirmed(booking())
            .render(TO, "b-1", BASE)
            .unwrap();
        assert_eq!(a.text(), b.text());
        assert_eq!(a.html(), b.html());
        assert_eq!(a.attachments()[0].content(), b.attachments()[0].content());
        assert_eq!(a.message_id(), b.message_id());
    }

    #[test]
    fn a_cancellation_states_the_fee_or_that_there_is_none() {
        let late = Template::BookingCancelled(cancellation(Some(625)))
            .render(TO, "c-1", BASE)
            .unwrap();
        assert!(
            late.subject()
                .starts_with("Booking cancelled: Pista 1 & 2 at Club Náutico, Sur")
        );
        assert!(
            late.text().contains("Fee:      6.25 EUR\n"),
            "{}",
            late.text()
        );
        assert!(
            late.text()
                .contains("late-cancellation fee of 6.25 EUR applies")
        );
        assert!(
            late.text()
                .contains("Saturday 14 June 2025, 18:00–19:30 (Europe/Madrid)")
        );
        assert!(late.attachments().is_empty());

        for free in [None, Some(0)] {
            let email = Template::BookingCancelled(cancellation(free))
                .render(TO, "c-1", BASE)
                .unwrap();
            assert!(email.text().contains("Fee:      none\n"));
            assert!(email.text().contains("No cancellation fee applies."));
        }
    }

    #[test]
    fn a_booking_across_local_midnight_shows_both_dates() {
        let tz = chrono_tz::America::Argentina::Buenos_Aires;
        let start = Utc.with_ymd_and_hms(2025, 3, 1, 2, 0, 0).unwrap();
        let end = Utc.with_ymd_and_hms(2025, 3, 1, 4, 0, 0).unwrap();
        assert_eq!(
            local_span(tz, start, end),
            "Friday 28 February 2025, 23:00 – Saturday 1 March 2025, 01:00 (America/Argentina/Buenos_Aires)"
        );
    }

    #[test]
    fn local_times_follow_daylight_saving() {
        let tz = chrono_tz::Europe::Madrid;
        let winter = Utc.with_ymd_and_hms(2025, 1, 10, 17, 0, 0).unwrap();
        let summer = Utc.with_ymd_and_hms(2025, 7, 10, 16, 0, 0).unwrap();
        assert_eq!(local_short(tz, winter), "Fri 10 Jan, 18:00");
        assert_eq!(local_short(tz, summer), "Thu 10 Jul, 18:00");
    }

    #[test]
    fn money_uses_the_currency_exponent() {
        assert_eq!(money(1250, "EUR"), "12.50 EUR");
        assert_eq!(money(5, "eur"), "0.05 EUR");
        assert_eq!(money(1500, "JPY"), "1500 JPY");
        assert_eq!(money(1250, "KWD"), "1.250 KWD");
        assert_eq!(money(-1250, "ARS"), "-12.50 ARS");
    }

    #[test]
    fn expiry_reads_naturally() {
        assert_eq!(minutes_in_words(1), "1 minute");
        assert_eq!(minutes_in_words(30), "30 minutes");
        assert_eq!(minutes_in_words(60), "1 hour");
        assert_eq!(minutes_in_words(120), "2 hours");
        assert_eq!(minutes_in_words(90), "90 minutes");
    }

    #[test]
    fn subjects_never_carry_line_breaks() {
        let mut b = booking();
        b.facility_name = "Court\r\nBcc: x@evil.example".into();
        let email = Template::BookingConfirmed(b)
            .render(TO, "b-1", BASE)
            .unwrap();
        assert!(!email.subject().contains(['\r', '\n']));
    }

    #[test]
    fn a_bad_public_url_or_recipient_is_a_permanent_error() {
        for url in ["club.example", "ftp://x", "https://", "https://a b"] {
            let err = reset("t").render(TO, "k", url).unwrap_err();
            assert!(matches!(err, MailError::InvalidMessage(_)), "{url}");
        }
        let err = reset("t").render("nope", "k", BASE).unwrap_err();
        assert!(matches!(err, MailError::InvalidRecipient));
        assert!(err.is_permanent());
    }

    #[test]
    fn templates_round_trip_through_json_with_a_tag() {
        for template in [
            reset("t"),
            Template::BookingConfirmed(booking()),
            Template::BookingCancelled(cancellation(Some(100))),
        ] {
            let json = serde_json::to_value(&template).unwrap();
            assert_eq!(json["template"], template.name());
            let back: Template = serde_json::from_value(json).unwrap();
            assert_eq!(back, template);
        }
        let json = serde_json::to_value(Template::BookingConfirmed(booking())).unwrap();
        assert_eq!(json["time_zone"], "Europe/Madrid");
        assert_eq!(json["start"], "2025-06-14T16:00:00Z");
    }

    fn offer() -> WaitlistOffer {
        let b = booking();
        WaitlistOffer {
            booking_id: b.booking_id,
            display_name: b.display_name,
            club_name: b.club_name,
            facility_name: b.facility_name,
            time_zone: b.time_zone,
            start: b.start,
            end: b.end,
            expires_at: Utc.with_ymd_and_hms(2025, 6, 14, 10, 15, 0).unwrap(),
            price_cents: 1250,
            currency: "EUR".into(),
        }
    }

    #[test]
    fn a_waitlist_offer_says_until_when_it_is_held_in_local_time() {
        let email = Template::WaitlistOffer(offer())
            .render(TO, "w-1", BASE)
            .unwrap();
        assert_eq!(
            email.subject(),
            "A slot you waited for is free: Pista 1 & 2 at Club Náutico, Sur, Sat 14 Jun, 18:00"
        );
        let text = email.text();
        assert!(text.contains("until 12:15 on Saturday 14 June"), "{text}");
        assert!(
            text.contains("Saturday 14 June 2025, 18:00–19:30 (Europe/Madrid)"),
            "{text}"
        );
        assert!(
            text.contains("https://club.example/bookings/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
        );
        assert!(email.html().contains("Pista 1 &amp; 2"));
        assert!(email.attachments().is_empty());
        let json = serde_json::to_value(Template::WaitlistOffer(offer())).unwrap();
        assert_eq!(json["template"], "waitlist_offer");
        assert_eq!(
            serde_json::from_value::<Template>(json).unwrap(),
            Template::WaitlistOffer(offer())
        );
    }

    #[test]
    fn debug_of_a_reset_hides_the_token() {
        let debug = format!("{:?}", reset("secret-token"));
        assert!(!debug.contains("secret-token"));
    }
}
