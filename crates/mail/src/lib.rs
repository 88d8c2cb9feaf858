//! Club Pulse e-mail: typed templates rendered to text, HTML and iCalendar, sent over SMTP.
//!
//! A background job carries a [`Template`] (serde, tagged), renders it with
//! [`Template::render`] into an [`Email`], and hands that to [`Mailer::send`]. A failure says
//! whether to retry ([`MailError::is_transient`]); every attempt for the same job passes the same
//! message id key, so the `Message-ID` header repeats and receivers can drop duplicates.
//!
//! ```no_run
//! # async fn example() -> Result<(), clubpulse_mail::MailError> {
//! use clubpulse_mail::{Mailer, PasswordReset, Template};
//!
//! let mailer = Mailer::from_url("smtp://127.0.0.1:2525", "Club Pulse <noreply@club.example>")?;
//! let template = Template::PasswordReset(PasswordReset {
//!     display_name: "Ana".into(),
//!     token: "tok_123".into(),
//!     expires_in_minutes: 30,
//! });
//! let email = template.render("ana@example.com", "job-42", "https://club.example")?;
//! mailer.send(&email).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - [`template`]: [`Template`] and its data ([`PasswordReset`], [`BookingDetails`],
//!   [`Cancellation`], [`WaitlistOffer`]); rendering, local times and amounts.
//! - [`email`]: [`Email`], [`Attachment`], [`MessageId`]: a rendered message, transport-free.
//! - [`mailer`]: [`Mailer`] and [`MailerOptions`]: SMTP (plain, STARTTLS, TLS; rustls) with
//!   timeouts.
//! - [`error`]: [`MailError`], sorted into transient and permanent failures.
//! - `html`: escaping and the shared page layout.
//! - `sink` (feature `test-sink`): a real SMTP server for tests, `scripts/smtp_sink.py`, started
//!   and read from Rust.

pub mod email;
pub mod error;
mod html;
pub mod mailer;
#[cfg(feature = "test-sink")]
pub mod sink;
pub mod template;

pub use email::{Attachment, Email, MessageId};
pub use error::MailError;
pub use mailer::{Mailer, MailerOptions};
pub use template::{BookingDetails, Cancellation, PasswordReset, Template, WaitlistOffer};
