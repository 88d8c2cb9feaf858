//! Accounts: who a member is and what they may do.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::validation::{FieldError, invalid};

/// A syntactically valid e-mail address, trimmed and lower-cased so that one mailbox is one account.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for Email {
    type Error = FieldError;

    fn try_from(raw: &str) -> Result<Self, Self::Error> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err(invalid("must not be empty"));
        }
        if email.len() > Self::MAX_LEN {
            return Err(invalid(format!("must be at most {} bytes", Self::MAX_LEN)));
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("must not contain spaces or control characters"));
        }
        let Some((local, domain)) = email.rsplit_once('@') else {
            return Err(invalid("must contain an @"));
        };
        let domain_ok = domain.len() >= 3
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && !domain.contains('@');
        if local.is_empty() || local.len() > 64 || local.contains('@') || !domain_ok {
            return Err(invalid("is not a valid e-mail address"));
        }
        Ok(Self(email))
    }
}

impl TryFrom<String> for Email {
    type Error = FieldError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::try_from(raw.as_str())
    }
}

/// Never print whole addresses into logs by accident: `Debug` shows the domain only.
impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let domain = self.0.rsplit_once('@').map_or("", |(_, d)| d);
        write!(f, "Email(***@{domain})")
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new password that meets the policy: 8 to 128 characters (NIST SP 800-63B: length, not
/// composition rules). Its `Debug` never shows it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 128;

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Password {
    type Error = FieldError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        let chars = raw.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(invalid(format!(
                "must be at least {} characters",
                Self::MIN_CHARS
            )));
        }
        if chars > Self::MAX_CHARS {
            return Err(invalid(format!(
                "must be at most {} characters",
                Self::MAX_CHARS
            )));
        }
        if raw.chars().any(char::is_control) {
            return Err(invalid("must not contain control characters"));
        }
        Ok(Self(raw))
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A person's name as shown to staff and other members: trimmed, 1 to 100 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for DisplayName {
    type Error = FieldError;

    fn try_from(raw: &str) -> Result<Self, Self::Error> {
        text(raw, 100).map(Self)
    }
}

/// Trims `raw` and checks it is a non-empty single line of at most `max` characters.
pub(crate) fn text(raw: &str, max: usize) -> Result<String, FieldError> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if value.chars().count() > max {
        return Err(invalid(format!("must be at most {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid("must not contain control characters"));
    }
    Ok(value.to_owned())
}

/// What an account may do. Ordered: every staff right is also an admin's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Member,
    Staff,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Staff => "staff",
            Self::Admin => "admin",
        }
    }

    /// Whether this role has every right of `required`.
    pub fn includes(self, required: Role) -> bool {
        self >= required
    }
}

impl FromStr for Role {
    type Err = FieldError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "member" => Ok(Self::Member),
            "staff" => Ok(Self::Staff),
            "admin" => Ok(Self::Admin),
            _ => Err(invalid("must be one of member, staff, admin")),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_is_trimmed_and_lower_cased() {
        let email = Email::try_from("  Ana.Garcia@Club.ES ").unwrap();
        assert_eq!(email.as_str(), "ana.garcia@club.es");
    }

    #[test]
    fn malformed_emails_are_refused() {
        for raw in [
            "",
            "ana",
            "@club.es",
            "ana@",
            "ana@club",
            "ana@.es",
            "ana@club..es",
            "a na@club.es",
            "ana@club.es.",
            "ana\n@club.es",
        ] {
            assert!(Email::try_from(raw).is_err(), "{raw:?} was accepted");
        }
    }

    #[test]
    fn email_debug_hides_the_mailbox() {
        let email = Email::try_from("ana@club.es").unwrap();
        assert_eq!(format!("{email:?}"), "Email(***@club.es)");
    }

    #[test]
    fn passwords_are_checked_by_length_in_characters() {
        assert!(Password::try_from("short".to_owned()).is_err());
        assert!(Password::try_from("ñandú-ñandú".to_owned()).is_ok());
        assert!(Password::try_from("x".repeat(129)).is_err());
        assert_eq!(
            format!(
                "{:?}",
                Password::try_from("long enough".to_owned()).unwrap()
            ),
            "Password(<redacted>)"
        );
    }

    #[test]
    fn admin_includes_staff_and_member_rights() {
        assert!(Role::Admin.includes(Role::Staff));
        assert!(Role::Staff.includes(Role::Member));
        assert!(!Role::Member.includes(Role::Staff));
        assert_eq!("staff".parse::<Role>().unwrap(), Role::Staff);
        assert!("root".parse::<Role>().is_err());
    }
}
