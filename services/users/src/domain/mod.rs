//! Account values parsed once at the edge: an `Email` is valid and normalised, a `Password`
//! long enough, and so on. Errors name the GraphQL input field that was wrong.

use bazaar_contracts::ApiError;
pub use bazaar_contracts::validate::{address, required_text};

/// A syntactically valid email address, lower-cased so comparisons ignore case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str, field: &str) -> Result<Email, ApiError> {
        let email = raw.trim().to_lowercase();
        let bad = |why: &str| ApiError::bad_input(field, format!("{field}: {why}"));
        if email.len() > 254 {
            return Err(bad("is longer than 254 characters"));
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err(bad("is not an email address (missing @)"));
        };
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
        if local.is_empty()
            || local.len() > 64
            || local.contains(char::is_whitespace)
            || local.contains('@')
        {
            return Err(bad("is not an email address"));
        }
        if !domain_ok {
            return Err(bad("has an invalid domain"));
        }
        Ok(Email(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password acceptable for a new account: 8 to 256 characters.
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str, field: &str) -> Result<Password, ApiError> {
        let n = raw.chars().count();
        if n < 8 {
            return Err(ApiError::bad_input(
                field,
                format!("{field}: must be at least 8 characters"),
            ));
        }
        if n > 256 {
            return Err(ApiError::bad_input(
                field,
                format!("{field}: must be at most 256 characters"),
            ));
        }
        Ok(Password(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A phone number: digits with optional `+`, spaces, dashes, dots and parentheses.
pub fn phone(raw: &str, field: &str) -> Result<String, ApiError> {
    let value = raw.trim();
    let digits = value.chars().filter(char::is_ascii_digit).count();
    let allowed = value
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    if !allowed || !(5..=20).contains(&digits) {
        return Err(ApiError::bad_input(
            field,
            format!("{field}: must be a phone number of 5 to 20 digits"),
        ));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Ann@Example.COM ", "input.email")
                .unwrap()
                .as_str(),
            "ann@example.com"
        );
        for bad in [
            "",
            "ann",
            "@example.com",
            "ann@",
            "ann@example",
            "a b@example.com",
            "ann@exa mple.com",
            "a@b@c.com",
        ] {
            let err = Email::parse(bad, "input.email").unwrap_err();
            assert_eq!(err.field.as_deref(), Some("input.email"), "{bad}");
        }
    }

    #[test]
    fn passwords_and_text_have_bounds() {
        assert!(Password::parse("1234567", "input.password").is_err());
        assert!(Password::parse("12345678", "input.password").is_ok());
        assert!(required_text("   ", "input.name", 10).is_err());
        assert!(required_text("x".repeat(11).as_str(), "input.name", 10).is_err());
        assert_eq!(required_text(" Ann ", "input.name", 10).unwrap(), "Ann");
        assert!(phone("+44 20 7946 0958", "input.phone").is_ok());
        assert!(phone("call me", "input.phone").is_err());
    }
}
