//! [`MailError`]: what went wrong, sorted by what a job runner should do about it.
//!
//! A background job that sends mail needs one answer from a failure: try again later, or give up.
//! [`MailError::is_transient`] gives it. Transient: the relay could not be reached, a timeout, a 4xx
//! reply, a dropped connection, a failed TLS handshake. Permanent: a 5xx reply, an address or a
//! message that can never be sent, a configuration that cannot work.
//!
//! Messages never carry an address, a token or the relay's reply text (which often quotes the
//! recipient), so an error can be logged as it is.

use std::time::Duration;

/// Why an e-mail was not sent, or could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MailError {
    /// The SMTP URL or the sender address cannot be used. Permanent: nothing changes until the
    /// configuration does.
    #[error("invalid mail configuration: {0}")]
    Config(String),
    /// The recipient is not a valid e-mail address. Permanent.
    #[error("invalid recipient address")]
    InvalidRecipient,
    /// The message could not be assembled (an empty message id, a malformed attachment type).
    /// Permanent.
    #[error("invalid message: {0}")]
    InvalidMessage(String),
    /// Delivery failed but may succeed later: the relay is unreachable or slow, answered 4xx, or
    /// dropped the connection.
    #[error("transient mail failure: {detail}")]
    Transient {
        /// The SMTP reply code when the relay answered one (4xx), else `None`.
        code: Option<u16>,
        /// What happened, without addresses or the relay's reply text.
        detail: String,
    },
    /// The relay refused the message for good (5xx), or the client cannot talk to it as configured
    /// (no authentication mechanism in common, STARTTLS required but not offered).
    #[error("permanent mail failure: {detail}")]
    Permanent {
        /// The SMTP reply code when the relay answered one (5xx), else `None`.
        code: Option<u16>,
        /// What happened, without addresses or the relay's reply text.
        detail: String,
    },
}

impl MailError {
    /// Whether sending the same message later may succeed. A job runner retries these with back-off
    /// and gives up on everything else.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }

    /// The opposite of [`is_transient`](Self::is_transient): retrying cannot help.
    pub fn is_permanent(&self) -> bool {
        !self.is_transient()
    }

    /// The SMTP reply code behind the failure, when the relay answered with one.
    pub fn smtp_code(&self) -> Option<u16> {
        match self {
            Self::Transient { code, .. } | Self::Permanent { code, .. } => *code,
            _ => None,
        }
    }

    pub(crate) fn timed_out(after: Duration) -> Self {
        Self::Transient {
            code: None,
            detail: format!(
                "no answer from the SMTP relay within {} ms",
                after.as_millis()
            ),
        }
    }

    /// Sorts a lettre SMTP error. The reply text is dropped on purpose (see the module docs).
    pub(crate) fn from_smtp(error: &lettre::transport::smtp::Error) -> Self {
        let code = error.status().map(u16::from);
        if error.is_permanent() {
            return Self::Permanent {
                code,
                detail: format!("the SMTP relay refused the message ({})", fmt_code(code)),
            };
        }
        if error.is_transient() {
            return Self::Transient {
                code,
                detail: format!("the SMTP relay deferred the message ({})", fmt_code(code)),
            };
        }
        if error.is_timeout() {
            return Self::Transient {
                code: None,
                detail: "timed out talking to the SMTP relay".to_owned(),
            };
        }
        if error.is_client() {
            // Raised before anything is sent: no authentication mechanism in common, a command
            // lettre refuses to write. The same message and configuration fail the same way again.
            // lettre's client errors are fixed sentences ("STARTTLS is not supported by this
            // server"), safe to keep.
            let cause =
                std::error::Error::source(error).map_or_else(String::new, |c| c.to_string());
            return Self::Permanent {
                code: None,
                detail: format!("the SMTP client cannot go on: {cause}"),
            };
        }
        // A refused or reset connection, a garbled reply, a TLS handshake failure. The TLS case
        // may be a misconfiguration, but it is also what a relay mid-certificate-rotation looks
        // like; the runner's bounded retries cover both.
        let what = if error.is_tls() {
            "TLS with the SMTP relay failed"
        } else if error.is_response() {
            "the SMTP relay sent an unreadable reply"
        } else {
            "could not reach the SMTP relay"
        };
        let detail = match io_cause(error) {
            Some(cause) => format!("{what}: {cause}"),
            None => what.to_owned(),
        };
        Self::Transient { code: None, detail }
    }
}

fn fmt_code(code: Option<u16>) -> String {
    code.map_or_else(|| "no code".to_owned(), |c| c.to_string())
}

/// The innermost I/O error's text ("Connection refused (os error 111)"): useful, and free of
/// addresses.
fn io_cause(error: &lettre::transport::smtp::Error) -> Option<String> {
    let mut source = std::error::Error::source(error);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io.to_string());
        }
        source = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_failures_are_retryable() {
        let transient = MailError::Transient {
            code: Some(451),
            detail: String::new(),
        };
        let permanent = MailError::Permanent {
            code: Some(550),
            detail: String::new(),
        };
        assert!(transient.is_transient() && !transient.is_permanent());
        assert!(permanent.is_permanent() && !permanent.is_transient());
        assert!(MailError::InvalidRecipient.is_permanent());
        assert!(MailError::Config("x".into()).is_permanent());
        assert!(MailError::timed_out(Duration::from_secs(1)).is_transient());
        assert_eq!(transient.smtp_code(), Some(451));
        assert_eq!(MailError::InvalidRecipient.smtp_code(), None);
    }
}
