//! [`Email`]: a rendered message, ready for [`Mailer::send`](crate::Mailer::send) but not tied to a
//! transport, so templates are tested without one.

use std::fmt;

use lettre::{
    Address,
    message::{Mailbox, header::ContentType},
};

use crate::MailError;

/// A message to one recipient: subject, a plain-text body and its HTML alternative, attachments.
///
/// `Debug` leaves out the address and the bodies (a password-reset body holds a token).
#[derive(Clone)]
pub struct Email {
    to: Mailbox,
    message_id: MessageId,
    subject: String,
    text: String,
    html: String,
    attachments: Vec<Attachment>,
}

impl Email {
    /// Builds a message. `to` is a bare address (`ana@example.com`); `to_name`, when given, is the
    /// display name shown beside it. `message_id` is the caller's stable key for this message (see
    /// [`MessageId`]).
    pub fn new(
        to: &str,
        to_name: Option<&str>,
        message_id: &str,
        subject: impl Into<String>,
        text: impl Into<String>,
        html: impl Into<String>,
    ) -> Result<Self, MailError> {
        let address: Address = to.trim().parse().map_err(|_| MailError::InvalidRecipient)?;
        let name = to_name
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        Ok(Self {
            to: Mailbox::new(name, address),
            message_id: MessageId::new(message_id)?,
            subject: subject.into(),
            text: text.into(),
            html: html.into(),
            attachments: Vec::new(),
        })
    }

    /// Adds an attachment after the text and HTML bodies.
    #[must_use]
    pub fn with_attachment(mut self, attachment: Attachment) -> Self {
        self.attachments.push(attachment);
        self
    }

    /// The recipient's address, without the display name.
    pub fn to(&self) -> &str {
        self.to.email.as_ref()
    }

    pub(crate) fn mailbox(&self) -> &Mailbox {
        &self.to
    }

    /// The caller's key the `Message-ID` header is made from.
    pub fn message_id(&self) -> &MessageId {
        &self.message_id
    }

    /// The subject line, unencoded.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The plain-text body.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The HTML body, shown instead of the text by clients that can.
    pub fn html(&self) -> &str {
        &self.html
    }

    /// The attachments, in order.
    pub fn attachments(&self) -> &[Attachment] {
        &self.attachments
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Email")
            .field("message_id", &self.message_id)
            .field("subject", &self.subject)
            .field("to", &"<redacted>")
            .field("text_bytes", &self.text.len())
            .field("html_bytes", &self.html.len())
            .field("attachments", &self.attachments)
            .finish()
    }
}

/// A file sent with a message.
#[derive(Clone)]
pub struct Attachment {
    filename: String,
    /// As given, for display; `parsed` is what goes on the wire.
    content_type: String,
    parsed: ContentType,
    content: Vec<u8>,
}

impl Attachment {
    /// An attachment named `filename` of MIME type `content_type` (parameters allowed:
    /// `text/calendar; method=PUBLISH; charset=UTF-8`). The content is sent base64-encoded, so its
    /// bytes (CRLF line ends included) arrive unchanged.
    pub fn new(
        filename: impl Into<String>,
        content_type: &str,
        content: impl Into<Vec<u8>>,
    ) -> Result<Self, MailError> {
        let parsed = ContentType::parse(content_type).map_err(|_| {
            MailError::InvalidMessage(format!("invalid attachment content type {content_type:?}"))
        })?;
        Ok(Self {
            filename: filename.into(),
            content_type: content_type.to_owned(),
            parsed,
            content: content.into(),
        })
    }

    /// The file name the recipient sees.
    pub fn filename(&self) -> &str {
        &self.filename
    }

    /// The MIME type with its parameters, as sent in `Content-Type`.
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    pub(crate) fn lettre_content_type(&self) -> &ContentType {
        &self.parsed
    }

    /// The raw bytes.
    pub fn content(&self) -> &[u8] {
        &self.content
    }
}

impl fmt::Debug for Attachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attachment")
            .field("filename", &self.filename)
            .field("content_type", &self.content_type)
            .field("bytes", &self.content.len())
            .finish()
    }
}

/// The caller's stable key for a message, turned into the left part of its `Message-ID`
/// (`<left@sender-domain>`).
///
/// A job that retries passes the same key, so every attempt carries the same `Message-ID` and a
/// receiver that saw the first one can drop the rest. Any non-empty key up to 200 bytes is taken:
/// characters RFC 5322 does not allow there are written as `=XX` (hex of each UTF-8 byte), and `=`
/// itself as `=3D`, so distinct keys always give distinct ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageId(String);

impl MessageId {
    /// Longest key taken, in bytes; RFC 5322 lines stop at 998.
    pub const MAX_KEY_BYTES: usize = 200;

    /// Encodes `key`. Fails on an empty or over-long key.
    pub fn new(key: &str) -> Result<Self, MailError> {
        if key.is_empty() || key.len() > Self::MAX_KEY_BYTES {
            return Err(MailError::InvalidMessage(format!(
                "a message id key must be 1 to {} bytes",
                Self::MAX_KEY_BYTES
            )));
        }
        let bytes = key.as_bytes();
        let mut left = String::with_capacity(key.len());
        for (i, &b) in bytes.iter().enumerate() {
            // dot-atom-text: atext runs joined by single dots, no dot first or last.
            let dot_ok = b == b'.'
                && i > 0
                && i + 1 < bytes.len()
                && bytes.get(i + 1) != Some(&b'.')
                && bytes.get(i - 1) != Some(&b'.');
            if (is_atext(b) && b != b'=') || dot_ok {
                left.push(char::from(b));
            } else {
                left.push_str(&format!("={b:02X}"));
            }
        }
        Ok(Self(left))
    }

    /// The encoded left part, as it appears before the `@`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The whole header value for a sender domain: `<left@domain>`.
    pub fn header_value(&self, domain: &str) -> String {
        format!("<{}@{domain}>", self.0)
    }
}

/// RFC 5322 `atext`.
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_key_is_used_as_it_is() {
        let id = MessageId::new("booking-confirmed.0190a1b2-c3d4").unwrap();
        assert_eq!(id.as_str(), "booking-confirmed.0190a1b2-c3d4");
        assert_eq!(
            id.header_value("club.example"),
            "<booking-confirmed.0190a1b2-c3d4@club.example>"
        );
    }

    #[test]
    fn characters_not_allowed_in_a_message_id_are_encoded_without_collisions() {
        assert_eq!(MessageId::new("job:1 a").unwrap().as_str(), "job=3A1=20a");
        assert_eq!(MessageId::new("a=3A").unwrap().as_str(), "a=3D3A");
        assert_ne!(
            MessageId::new("a:").unwrap(),
            MessageId::new("a=3A").unwrap()
        );
        assert_eq!(MessageId::new(".a..b.").unwrap().as_str(), "=2Ea=2E=2Eb=2E");
        assert_eq!(MessageId::new("<x@y>").unwrap().as_str(), "=3Cx=40y=3E");
        assert_eq!(MessageId::new("é").unwrap().as_str(), "=C3=A9");
    }

    #[test]
    fn an_empty_or_huge_key_is_refused() {
        assert!(MessageId::new("").is_err());
        assert!(MessageId::new(&"a".repeat(201)).is_err());
        assert!(MessageId::new(&"a".repeat(200)).is_ok());
    }

    #[test]
    fn an_invalid_recipient_is_refused_and_debug_hides_address_and_bodies() {
        assert!(matches!(
            Email::new("not an address", None, "k", "s", "t", "h"),
            Err(MailError::InvalidRecipient)
        ));
        let email = Email::new(
            "ana@example.com",
            Some("Ana"),
            "k",
            "s",
            "secret-token",
            "h",
        )
        .unwrap();
        let debug = format!("{email:?}");
        assert!(!debug.contains("ana@example.com"));
        assert!(!debug.contains("secret-token"));
        assert_eq!(email.to(), "ana@example.com");
    }
}
