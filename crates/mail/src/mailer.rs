//! [`Mailer`]: turns an [`Email`] into MIME and hands it to an SMTP relay.
//!
//! Each send opens its own connection and closes it (no pool): mail here is a trickle of
//! transactional messages sent from background jobs, and a fresh connection per attempt means a
//! relay that restarted never answers through a dead socket.

use std::{fmt, time::Duration};

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{
        Attachment as MimeAttachment, Body, Mailbox, MultiPart, SinglePart,
        header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue},
    },
};

use crate::{Email, MailError};

/// Timeouts for one send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailerOptions {
    /// How long to wait for the TCP connection (and TLS handshake) to the relay. Default 10 s.
    pub connect_timeout: Duration,
    /// The most one whole send may take, from connecting to the relay's last reply. lettre bounds
    /// only the connect itself, so this is what stops a relay that accepts and then goes silent.
    /// Default 20 s.
    pub send_timeout: Duration,
}

impl Default for MailerOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(20),
        }
    }
}

/// Sends [`Email`]s through one SMTP relay from one sender address. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The right-hand side of every `Message-ID`: the sender's domain.
    id_domain: String,
    /// The relay URL without credentials, for `Debug`.
    relay: String,
    options: MailerOptions,
}

impl Mailer {
    /// A mailer for `smtp_url` sending as `from` (`noreply@club.example` or
    /// `Club Pulse <noreply@club.example>`), with the default [`MailerOptions`].
    ///
    /// The URL is one of:
    ///
    /// - `smtp://host:port`: plain SMTP, for a relay on the same host or network, and tests;
    /// - `smtp://user:pass@host:port`: plain SMTP with `AUTH` (user and password percent-encoded);
    /// - `smtp://user:pass@host:587?tls=required`: STARTTLS, refusing to go on without it;
    /// - `smtps://user:pass@host:465`: TLS from the first byte.
    ///
    /// TLS is rustls, checked against the bundled Mozilla roots. Without a port, `smtp` uses 25 (587
    /// with `tls=`) and `smtps` 465. A path (`smtp://host/ehlo.name`) sets the `EHLO` name.
    pub fn from_url(smtp_url: &str, from: &str) -> Result<Self, MailError> {
        Self::from_url_with(smtp_url, from, MailerOptions::default())
    }

    /// [`from_url`](Self::from_url) with explicit timeouts.
    pub fn from_url_with(
        smtp_url: &str,
        from: &str,
        options: MailerOptions,
    ) -> Result<Self, MailError> {
        let relay = redact_url(smtp_url);
        let scheme = smtp_url.split("://").next().unwrap_or_default();
        if !matches!(scheme, "smtp" | "smtps") {
            return Err(MailError::Config(format!(
                "the SMTP URL {relay} must start with smtp:// or smtps://"
            )));
        }
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)
            .map_err(|e| MailError::Config(format!("the SMTP URL {relay} is invalid: {e}")))?
            .timeout(Some(options.connect_timeout))
            .build();
        let from: Mailbox = from
            .trim()
            .parse()
            .map_err(|_| MailError::Config("the sender address is invalid".to_owned()))?;
        let id_domain = from.email.domain().to_owned();
        Ok(Self {
            transport,
            from,
            id_domain,
            relay,
            options,
        })
    }

    /// Sends `email`, once. On failure, [`MailError::is_transient`] says whether a later attempt
    /// may succeed; a retry should resend the same [`Email`] (same message id), so a receiver that
    /// got the first attempt after all can recognise the duplicate.
    pub async fn send(&self, email: &Email) -> Result<(), MailError> {
        let message = self.message(email)?;
        match tokio::time::timeout(self.options.send_timeout, self.transport.send(message)).await {
            Err(_elapsed) => Err(MailError::timed_out(self.options.send_timeout)),
            Ok(Err(error)) => Err(MailError::from_smtp(&error)),
            Ok(Ok(_response)) => Ok(()),
        }
    }

    /// The `Message-ID` header value `email` is sent with.
    pub fn message_id_of(&self, email: &Email) -> String {
        email.message_id().header_value(&self.id_domain)
    }

    /// The MIME message: `multipart/alternative` (text, then HTML), wrapped in `multipart/mixed`
    /// when there are attachments.
    pub(crate) fn message(&self, email: &Email) -> Result<Message, MailError> {
        let alternative = MultiPart::alternative()
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(text_body(email.text())),
            )
            .singlepart(SinglePart::html(email.html().to_owned()));
        let body = if email.attachments().is_empty() {
            alternative
        } else {
            email.attachments().iter().fold(
                MultiPart::mixed().multipart(alternative),
                |mixed, attachment| {
                    mixed.singlepart(MimeAttachment::new(attachment.filename().to_owned()).body(
                        // Bytes, so base64: CRLFs and line folding arrive exactly as made.
                        Body::new(attachment.content().to_vec()),
                        attachment.lettre_content_type().clone(),
                    ))
                },
            )
        };
        Message::builder()
            .from(self.from.clone())
            .to(email.mailbox().clone())
            .subject(email.subject())
            .message_id(Some(self.message_id_of(email)))
            // RFC 3834: no vacation replies or other auto-answers to a machine-sent message.
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".to_owned(),
            ))
            .multipart(body)
            .map_err(|e| MailError::InvalidMessage(e.to_string()))
    }
}

/// The text body, kept readable on the wire: 7bit when it is ASCII, else 8bit (every relay in use
/// today takes it), quoted-printable only for a line past SMTP's 998-octet limit. lettre's own
/// choice switches to quoted-printable at 76 characters, which writes `token=abc` as `token=3Dabc`
/// and breaks a long link across lines, so a reader (or a test) could no longer copy the link out
/// of the raw message.
fn text_body(text: &str) -> Body {
    let crlf = text
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\n', "\r\n");
    let fits = crlf.split("\r\n").all(|line| line.len() <= 998) && !crlf.contains('\0');
    if !fits {
        return Body::new(text.to_owned());
    }
    let encoding = if crlf.is_ascii() {
        ContentTransferEncoding::SevenBit
    } else {
        ContentTransferEncoding::EightBit
    };
    Body::dangerous_pre_encoded(crlf.into_bytes(), encoding)
}

/// `scheme://user:pass@host:port/x` without `user:pass@`.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(not a URL)".to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}{tail}")
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("relay", &self.relay)
            .field("id_domain", &self.id_domain)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Attachment;

    fn mailer() -> Mailer {
        Mailer::from_url("smtp://127.0.0.1:2525", "Club Pulse <noreply@club.example>").unwrap()
    }

    #[test]
    fn accepted_urls_build_a_mailer() {
        for url in [
            "smtp://127.0.0.1:2525",
            "smtp://user:p%40ss@relay.example:2525",
            "smtp://user:pass@relay.example:587?tls=required",
            "smtp://relay.example?tls=opportunistic",
            "smtps://user:pass@relay.example:465",
        ] {
            assert!(
                Mailer::from_url(url, "noreply@club.example").is_ok(),
                "{url}"
            );
        }
    }

    #[test]
    fn bad_urls_and_senders_are_configuration_errors() {
        for url in [
            "http://relay.example",
            "relay.example:25",
            "smtp://",
            "smtp://h?tls=maybe",
        ] {
            let err = Mailer::from_url(url, "noreply@club.example").unwrap_err();
            assert!(matches!(err, MailError::Config(_)), "{url}: {err:?}");
            assert!(err.is_permanent());
        }
        let err = Mailer::from_url("smtp://127.0.0.1:25", "not an address").unwrap_err();
        assert!(matches!(err, MailError::Config(_)));
    }

    #[test]
    fn credentials_never_show_in_debug_or_errors() {
        let mailer =
            Mailer::from_url("smtps://ana:hunter2@relay.example:465", "a@b.example").unwrap();
        let debug = format!("{mailer:?}");
        assert!(debug.contains("smtps://relay.example:465"), "{debug}");
        assert!(!debug.contains("hunter2"));
        let err = Mailer::from_url("smtpx://ana:hunter2@relay.example", "a@b.example").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn the_message_id_is_the_callers_key_at_the_sender_domain() {
        let email = Email::new(
            "ana@example.com",
            None,
            "job-42",
            "Hi",
            "text",
            "<p>html</p>",
        )
        .unwrap();
        let raw = String::from_utf8(mailer().message(&email).unwrap().formatted()).unwrap();
        assert!(
            raw.contains("Message-ID: <job-42@club.example>\r\n"),
            "{raw}"
        );
        assert!(raw.contains("Auto-Submitted: auto-generated\r\n"));
        assert!(raw.contains("multipart/alternative"));
        assert!(!raw.contains("multipart/mixed"));
    }

    #[test]
    fn a_long_link_in_non_ascii_text_stays_on_one_unencoded_line() {
        let link = format!(
            "https://club.example/reset-password?token={}",
            "x".repeat(90)
        );
        let text = format!("Hola José,\n\n{link}\n");
        let email =
            Email::new("ana@example.com", Some("José"), "k", "Hi", text, "<p>x</p>").unwrap();
        let raw = String::from_utf8(mailer().message(&email).unwrap().formatted()).unwrap();
        assert!(raw.contains(&format!("\r\n{link}\r\n")), "{raw}");
        assert!(raw.contains("Content-Transfer-Encoding: 8bit"));
    }

    #[test]
    fn a_long_ascii_line_is_sent_as_7bit_not_quoted_printable() {
        let text = format!("token={}\n", "y".repeat(120));
        let email = Email::new("ana@example.com", None, "k", "Hi", text.clone(), "h").unwrap();
        let raw = String::from_utf8(mailer().message(&email).unwrap().formatted()).unwrap();
        assert!(raw.contains(&text.replace('\n', "\r\n")), "{raw}");
        assert!(raw.contains("Content-Transfer-Encoding: 7bit"));
    }

    #[test]
    fn attachments_go_in_a_mixed_part_after_the_alternative() {
        let ics = Attachment::new(
            "booking.ics",
            "text/calendar; method=PUBLISH; charset=UTF-8",
            b"BEGIN:VCALENDAR\r\n".to_vec(),
        )
        .unwrap();
        let email = Email::new("ana@example.com", None, "k", "Hi", "t", "h")
            .unwrap()
            .with_attachment(ics);
        let raw = String::from_utf8(mailer().message(&email).unwrap().formatted()).unwrap();
        let mixed = raw.find("multipart/mixed").unwrap();
        let alternative = raw.find("multipart/alternative").unwrap();
        let calendar = raw.find("text/calendar").unwrap();
        assert!(mixed < alternative && alternative < calendar, "{raw}");
        assert!(raw.contains("filename=\"booking.ics\""), "{raw}");
    }
}
