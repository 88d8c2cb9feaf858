//! iCalendar (RFC 5545) writing: the one place where Club Pulse makes a calendar, whether it is the
//! file a booking confirmation attaches, the download on a booking's page, or a member's calendar
//! feed.
//!
//! The rules calendar clients are strict about, kept here once for all of them:
//!
//! - CRLF line ends;
//! - content lines folded at 75 octets: a fold is CRLF plus one space, and never splits a UTF-8
//!   character;
//! - `TEXT` values escape `\`, `;`, `,` and line breaks;
//! - times in UTC (`DTSTART:20270328T080000Z`). A booking is stored as two UTC instants, so UTC is
//!   exact by construction: no `VTIMEZONE` has to be written (and kept true to the tz database),
//!   and a calendar shows the event at the right local time in any zone, across DST changes too.
//!   The local time a member picked is what PostgreSQL stored, converted once at booking time.
//!
//! # Layout
//!
//! - [`Calendar`]: a `VCALENDAR` with its events, written by [`Calendar::to_ics`].
//! - [`Event`]: one `VEVENT`, with its [`Status`].
//! - [`escape_text`], [`fold`], [`utc`]: the value and line rules, for anything else that writes
//!   iCalendar text.
//! - [`property`]: reads a property back (unfolded), for tests and readers of what was sent.

use chrono::{DateTime, Utc};

/// The `PRODID` of every calendar made here.
pub const PRODID: &str = "-//Club Pulse//Bookings//EN";

/// Longest content line, in octets, before folding (RFC 5545 §3.1).
pub const MAX_LINE_OCTETS: usize = 75;

/// Where an event stands (`STATUS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Held, not confirmed yet.
    Tentative,
    Confirmed,
    /// A calendar that already has the event (same `UID`) removes or strikes it.
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tentative => "TENTATIVE",
            Self::Confirmed => "CONFIRMED",
            Self::Cancelled => "CANCELLED",
        }
    }
}

/// One `VEVENT`.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    /// Stable across updates of the same event: a later calendar with the same UID replaces it.
    pub uid: &'a str,
    /// When this version of the event was made.
    pub stamp: DateTime<Utc>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub summary: &'a str,
    pub location: &'a str,
    pub description: Option<&'a str>,
    /// A link to the event's page (`URL`, a URI value: not escaped).
    pub url: Option<&'a str>,
    pub status: Status,
    /// The revision (`SEQUENCE`): a calendar applies the highest one it has seen.
    pub sequence: u32,
}

impl Event<'_> {
    fn write(&self, out: &mut String) {
        let mut line = |text: String| out.push_str(&fold(&text));
        line("BEGIN:VEVENT".to_owned());
        line(format!("UID:{}", escape_text(self.uid)));
        line(format!("DTSTAMP:{}", utc(self.stamp)));
        line(format!("DTSTART:{}", utc(self.start)));
        line(format!("DTEND:{}", utc(self.end)));
        line(format!("SUMMARY:{}", escape_text(self.summary)));
        line(format!("LOCATION:{}", escape_text(self.location)));
        if let Some(description) = self.description {
            line(format!("DESCRIPTION:{}", escape_text(description)));
        }
        if let Some(url) = self.url {
            line(format!("URL:{}", url.replace(['\r', '\n'], "")));
        }
        line(format!("STATUS:{}", self.status.as_str()));
        line(format!("SEQUENCE:{}", self.sequence));
        // A cancelled booking no longer takes the member's time.
        let transparency = if self.status == Status::Cancelled {
            "TRANSPARENT"
        } else {
            "OPAQUE"
        };
        line(format!("TRANSP:{transparency}"));
        line("END:VEVENT".to_owned());
    }
}

/// A whole `VCALENDAR`.
#[derive(Debug, Clone, Default)]
pub struct Calendar<'a> {
    /// `METHOD:PUBLISH` for a file sent by mail (an event to put in the calendar, no reply
    /// expected); none for a download or a subscribed feed (RFC 5545 §3.7.2).
    pub method: Option<&'static str>,
    /// The calendar's display name (`NAME`, RFC 7986, and `X-WR-CALNAME`, which older clients
    /// read), for a subscribed feed.
    pub name: Option<&'a str>,
    /// How often a subscribing client should fetch it again, in minutes (`REFRESH-INTERVAL`,
    /// RFC 7986, and `X-PUBLISHED-TTL`).
    pub refresh_minutes: Option<u32>,
    pub events: Vec<Event<'a>>,
}

impl Calendar<'_> {
    /// The calendar as iCalendar text: CRLF lines, each folded at 75 octets.
    pub fn to_ics(&self) -> String {
        let mut out = String::new();
        let mut line = |text: String| out.push_str(&fold(&text));
        line("BEGIN:VCALENDAR".to_owned());
        line("VERSION:2.0".to_owned());
        line(format!("PRODID:{PRODID}"));
        line("CALSCALE:GREGORIAN".to_owned());
        if let Some(method) = self.method {
            line(format!("METHOD:{method}"));
        }
        if let Some(name) = self.name {
            line(format!("NAME:{}", escape_text(name)));
            line(format!("X-WR-CALNAME:{}", escape_text(name)));
        }
        if let Some(minutes) = self.refresh_minutes {
            line(format!("REFRESH-INTERVAL;VALUE=DURATION:PT{minutes}M"));
            line(format!("X-PUBLISHED-TTL:PT{minutes}M"));
        }
        for event in &self.events {
            event.write(&mut out);
        }
        out.push_str(&fold("END:VCALENDAR"));
        out
    }
}

/// A UTC `DATE-TIME`: `20250614T160000Z`.
pub fn utc(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%SZ").to_string()
}

/// Escapes a `TEXT` value (RFC 5545 §3.3.11): `\` `;` `,` get a backslash, a line break becomes
/// `\n` (CRLF and lone CR count as one break); other control characters, which a `TEXT` value may
/// not hold, are dropped.
pub fn escape_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\\n");
            }
            c if c.is_control() && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// One content line, folded into pieces of at most 75 octets, each ending in CRLF; every piece
/// after the first starts with the space that marks a continuation (and counts toward its 75).
pub fn fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + line.len() / 70 * 3 + 2);
    let mut used = 0;
    for c in line.chars() {
        let width = c.len_utf8();
        if used + width > MAX_LINE_OCTETS {
            out.push_str("\r\n ");
            used = 1;
        }
        out.push(c);
        used += width;
    }
    out.push_str("\r\n");
    out
}

/// Undoes [`fold`] and returns the (still escaped) value of the first `name` property, for tests
/// and readers of what was sent.
pub fn property(calendar: &str, name: &str) -> Option<String> {
    let unfolded = calendar.replace("\r\n ", "");
    let prefix = format!("{name}:");
    unfolded
        .split("\r\n")
        .find_map(|line| line.strip_prefix(&prefix).map(str::to_owned))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

    use chrono::TimeZone;

    use super::*;

    fn event<'a>(summary: &'a str, description: &'a str) -> Event<'a> {
        Event {
            uid: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
            stamp: Utc.with_ymd_and_hms(2025, 6, 1, 9, 30, 0).unwrap(),
            start: Utc.with_ymd_and_hms(2025, 6, 14, 16, 0, 0).unwrap(),
            end: Utc.with_ymd_and_hms(2025, 6, 14, 17, 30, 0).unwrap(),
            summary,
            location: "Club Náutico, Sur; \"B\"",
            description: Some(description),
            url: Some("https://club.example/bookings/0190a1b2"),
            status: Status::Confirmed,
            sequence: 0,
        }
    }

    fn one(event: Event<'_>) -> String {
        Calendar {
            method: Some("PUBLISH"),
            events: vec![event],
            ..Calendar::default()
        }
        .to_ics()
    }

    #[test]
    fn text_values_escape_backslash_semicolon_comma_and_newlines() {
        assert_eq!(escape_text(r"a\b;c,d"), r"a\\b\;c\,d");
        assert_eq!(
            escape_text("one\ntwo\r\nthree\rfour"),
            r"one\ntwo\nthree\nfour"
        );
        assert_eq!(escape_text("Pádel: \"1\""), "Pádel: \"1\"");
        assert_eq!(escape_text("bell\u{7}\u{0}end"), "bellend");
    }

    #[test]
    fn short_lines_are_not_folded() {
        assert_eq!(fold("SUMMARY:x"), "SUMMARY:x\r\n");
        let exactly = "A".repeat(75);
        assert_eq!(fold(&exactly), format!("{exactly}\r\n"));
    }

    #[test]
    fn long_lines_fold_at_75_octets_with_a_leading_space() {
        let line = format!("DESCRIPTION:{}", "x".repeat(200));
        let folded = fold(&line);
        let pieces: Vec<&str> = folded.strip_suffix("\r\n").unwrap().split("\r\n").collect();
        assert_eq!(pieces[0].len(), 75);
        for piece in &pieces[1..] {
            assert!(piece.starts_with(' '));
            assert!(piece.len() <= 75);
        }
        assert_eq!(folded.replace("\r\n ", ""), format!("{line}\r\n"));
    }

    #[test]
    fn folding_never_splits_a_multi_byte_character() {
        // "é" is 2 octets, "€" 3, "🎾" 4: place them across every possible fold offset.
        for prefix in 0..8 {
            let line = format!("SUMMARY:{}{}", "a".repeat(prefix), "é€🎾".repeat(30));
            let folded = fold(&line);
            for piece in folded.split("\r\n").filter(|p| !p.is_empty()) {
                assert!(piece.len() <= 75, "{} octets: {piece:?}", piece.len());
            }
            for piece in folded.as_bytes().split(|b| *b == b'\n') {
                assert!(std::str::from_utf8(piece).is_ok());
            }
            assert_eq!(folded.replace("\r\n ", ""), format!("{line}\r\n"));
        }
    }

    #[test]
    fn a_calendar_has_crlf_lines_utc_times_and_escaped_text() {
        let ics = one(event("Court 1 – Club Náutico, Sur", "Booking 1;\nSee you"));
        assert!(ics.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"));
        assert!(ics.ends_with("END:VEVENT\r\nEND:VCALENDAR\r\n"));
        assert!(
            !ics.replace("\r\n", "").contains('\n'),
            "bare LF in {ics:?}"
        );
        assert!(ics.contains("METHOD:PUBLISH\r\n"));
        assert!(ics.contains("UID:0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b\r\n"));
        assert!(ics.contains("DTSTAMP:20250601T093000Z\r\n"));
        assert!(ics.contains("DTSTART:20250614T160000Z\r\n"));
        assert!(ics.contains("DTEND:20250614T173000Z\r\n"));
        assert!(ics.contains("STATUS:CONFIRMED\r\n"));
        assert_eq!(
            property(&ics, "SUMMARY").unwrap(),
            r"Court 1 – Club Náutico\, Sur"
        );
        assert_eq!(
            property(&ics, "LOCATION").unwrap(),
            r#"Club Náutico\, Sur\; "B""#
        );
        assert_eq!(
            property(&ics, "DESCRIPTION").unwrap(),
            r"Booking 1\;\nSee you"
        );
        for line in ics.split("\r\n") {
            assert!(line.len() <= 75, "{line:?}");
        }
    }

    #[test]
    fn a_long_description_is_folded_inside_the_calendar() {
        let long = "Línea con acentos, comas; y más. ".repeat(10);
        let ics = one(event("S", &long));
        assert!(ics.contains("\r\n "));
        assert_eq!(property(&ics, "DESCRIPTION").unwrap(), escape_text(&long));
    }

    #[test]
    fn a_feed_has_a_name_a_refresh_interval_and_every_event() {
        let mut cancelled = event("B", "d");
        cancelled.uid = "second";
        cancelled.status = Status::Cancelled;
        cancelled.sequence = 1;
        let ics = Calendar {
            method: None,
            name: Some("Club Pulse, my bookings"),
            refresh_minutes: Some(60),
            events: vec![event("A", "d"), cancelled],
        }
        .to_ics();
        assert!(!ics.contains("METHOD:"));
        assert!(ics.contains("X-WR-CALNAME:Club Pulse\\, my bookings\r\n"));
        assert!(ics.contains("REFRESH-INTERVAL;VALUE=DURATION:PT60M\r\n"));
        assert_eq!(ics.matches("BEGIN:VEVENT").count(), 2);
        assert!(ics.contains("UID:second\r\n"));
        assert!(ics.contains("STATUS:CANCELLED\r\nSEQUENCE:1\r\nTRANSP:TRANSPARENT\r\n"));
    }
}
