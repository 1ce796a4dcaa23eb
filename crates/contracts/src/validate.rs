//! Input rules more than one service applies: required text and postal addresses. Errors
//! name the GraphQL input field that was wrong.

use crate::ApiError;
use crate::users::Address;

/// Trimmed text of bounded length that must not be empty.
pub fn required_text(raw: &str, field: &str, max: usize) -> Result<String, ApiError> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(ApiError::bad_input(
            field,
            format!("{field}: must not be empty"),
        ));
    }
    if value.chars().count() > max {
        return Err(ApiError::bad_input(
            field,
            format!("{field}: must be at most {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::bad_input(
            field,
            format!("{field}: must not contain control characters"),
        ));
    }
    Ok(value.to_owned())
}

/// A postal address with every required part present.
pub fn address(raw: &Address, field: &str) -> Result<Address, ApiError> {
    let line2 = match raw.line2.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(l) => Some(required_text(l, &format!("{field}.line2"), 200)?),
    };
    Ok(Address {
        line1: required_text(&raw.line1, &format!("{field}.line1"), 200)?,
        line2,
        city: required_text(&raw.city, &format!("{field}.city"), 100)?,
        postal_code: required_text(&raw.postal_code, &format!("{field}.postalCode"), 20)?,
        country: required_text(&raw.country, &format!("{field}.country"), 60)?,
    })
}
