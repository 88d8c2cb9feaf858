//! iCalendar (RFC 5545) for one event: what a booking confirmation attaches.
//!
//! The rules calendar clients are strict about: CRLF line ends; content lines folded at 75 octets
//! (a fold is CRLF plus one space, and never splits a UTF-8 character); `TEXT` values escape `\`,
//! `;`, `,` and newlines; times in UTC with a `Z`, so no `VTIMEZONE` is needed.

use chrono::{DateTime, Utc};

/// The `PRODID` of every calendar made here.
const PRODID: &str = "-//Club Pulse//Bookings//EN";

/// Longest content line, in octets, before folding (RFC 5545 §3.1).
const MAX_LINE_OCTETS: usize = 75;

/// One `VEVENT`.
#[derive(Debug, Clone)]
pub(crate) struct Event<'a> {
    /// Stable across updates of the same event: a later message with the same UID replaces it.
    pub uid: &'a str,
    /// When this version of the event was made.
    pub stamp: DateTime<Utc>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub summary: &'a str,
    pub location: &'a str,
    pub description: &'a str,
    /// A link to the event's page (`URL`, a URI value: not escaped).
    pub url: &'a str,
}

impl Event<'_> {
    /// A whole `VCALENDAR` with `METHOD:PUBLISH`: an event to put in the calendar, no reply
    /// expected (the booking already exists; this is not an invitation).
    pub(crate) fn to_calendar(&self) -> String {
        let lines = [
            "BEGIN:VCALENDAR".to_owned(),
            "VERSION:2.0".to_owned(),
            format!("PRODID:{PRODID}"),
            "CALSCALE:GREGORIAN".to_owned(),
            "METHOD:PUBLISH".to_owned(),
            "BEGIN:VEVENT".to_owned(),
            format!("UID:{}", escape_text(self.uid)),
            format!("DTSTAMP:{}", utc(self.stamp)),
            format!("DTSTART:{}", utc(self.start)),
            format!("DTEND:{}", utc(self.end)),
            format!("SUMMARY:{}", escape_text(self.summary)),
            format!("LOCATION:{}", escape_text(self.location)),
            format!("DESCRIPTION:{}", escape_text(self.description)),
            format!("URL:{}", self.url.replace(['\r', '\n'], "")),
            "STATUS:CONFIRMED".to_owned(),
            "SEQUENCE:0".to_owned(),
            "TRANSP:OPAQUE".to_owned(),
            "END:VEVENT".to_owned(),
            "END:VCALENDAR".to_owned(),
        ];
        lines.iter().map(|line| fold(line)).collect()
    }
}

/// A UTC `DATE-TIME`: `20250614T160000Z`.
pub(crate) fn utc(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%SZ").to_string()
}

/// Escapes a `TEXT` value (RFC 5545 §3.3.11): `\` `;` `,` get a backslash, a line break becomes
/// `\n` (CRLF and lone CR count as one break).
pub(crate) fn escape_text(value: &str) -> String {
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
            c => out.push(c),
        }
    }
    out
}

/// One content line, folded into pieces of at most 75 octets, each ending in CRLF; every piece
/// after the first starts with the space that marks a continuation (and counts toward its 75).
pub(crate) fn fold(line: &str) -> String {
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

/// Undoes [`fold`] and returns the value of the first `name` property. For tests and readers of
/// what was sent.
#[cfg(test)]
pub(crate) fn property(calendar: &str, name: &str) -> Option<String> {
    let unfolded = calendar.replace("\r\n ", "");
    let prefix = format!("{name}:");
    unfolded
        .split("\r\n")
        .find_map(|line| line.strip_prefix(&prefix).map(str::to_owned))
}

#[cfg(test)]
mod tests {
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
            description,
            url: "https://club.example/bookings/0190a1b2",
        }
    }

    #[test]
    fn text_values_escape_backslash_semicolon_comma_and_newlines() {
        assert_eq!(escape_text(r"a\b;c,d"), r"a\\b\;c\,d");
        assert_eq!(
            escape_text("one\ntwo\r\nthree\rfour"),
            r"one\ntwo\nthree\nfour"
        );
        assert_eq!(escape_text("Pádel: \"1\""), "Pádel: \"1\"");
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
            // Every piece is valid UTF-8 on its own (true by construction of &str; check the
            // byte view too).
            for piece in folded.as_bytes().split(|b| *b == b'\n') {
                assert!(std::str::from_utf8(piece).is_ok());
            }
            assert_eq!(folded.replace("\r\n ", ""), format!("{line}\r\n"));
        }
    }

    #[test]
    fn a_calendar_has_crlf_lines_utc_times_and_escaped_text() {
        let ics = event("Court 1 – Club Náutico, Sur", "Booking 1;\nSee you").to_calendar();
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
        let ics = event("S", &long).to_calendar();
        assert!(ics.contains("\r\n "));
        assert_eq!(property(&ics, "DESCRIPTION").unwrap(), escape_text(&long));
    }
}
