//! Input rules for accounts, channels and videos. Each normaliser returns the canonical form (trimmed,
//! lowercased where identity is case-insensitive) or a 422 naming the field.

use crate::error::ApiError;

pub const USERNAME_LEN: (usize, usize) = (3, 32);
pub const SLUG_LEN: (usize, usize) = (3, 48);
pub const PASSWORD_MIN_CHARS: usize = 8;
/// Caps the work one login can ask of argon2.
pub const PASSWORD_MAX_BYTES: usize = 1024;
pub const EMAIL_MAX_BYTES: usize = 254;
pub const TITLE_MAX_CHARS: usize = 120;
pub const DESCRIPTION_MAX_CHARS: usize = 5000;
pub const TOKEN_NAME_MAX_CHARS: usize = 80;

fn charset_and_length(
    field: &str,
    value: &str,
    (min, max): (usize, usize),
    allowed: impl Fn(u8) -> bool,
    charset: &str,
) -> Result<(), ApiError> {
    if value.len() < min || value.len() > max {
        return Err(ApiError::validation(field, format!("must be {min} to {max} characters long")));
    }
    if !value.bytes().all(allowed) {
        return Err(ApiError::validation(field, format!("may only contain {charset}")));
    }
    Ok(())
}

pub fn username(raw: &str) -> Result<String, ApiError> {
    let value = raw.trim().to_lowercase();
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-';
    charset_and_length("username", &value, USERNAME_LEN, allowed, "letters, digits, '_' and '-'")?;
    Ok(value)
}

pub fn email(raw: &str) -> Result<String, ApiError> {
    let value = raw.trim().to_lowercase();
    let well_formed = match value.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.') && !domain.contains('@')
        }
        None => false,
    };
    if !well_formed || value.len() > EMAIL_MAX_BYTES || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::validation("email", "must be an email address like name@example.com"));
    }
    Ok(value)
}

pub fn password(raw: &str) -> Result<(), ApiError> {
    password_in(raw, "password")
}

/// A password chosen to replace the current one (the errors name the `new_password` field).
pub fn new_password(raw: &str) -> Result<(), ApiError> {
    password_in(raw, "new_password")
}

fn password_in(raw: &str, field: &str) -> Result<(), ApiError> {
    if raw.chars().count() < PASSWORD_MIN_CHARS {
        return Err(ApiError::validation(field, format!("must be at least {PASSWORD_MIN_CHARS} characters long")));
    }
    if raw.len() > PASSWORD_MAX_BYTES {
        return Err(ApiError::validation(field, format!("must be at most {PASSWORD_MAX_BYTES} bytes long")));
    }
    if is_common_password(raw) {
        return Err(ApiError::validation(field, "is one of the most common passwords; choose another"));
    }
    Ok(())
}

/// Whether `raw` is on the shipped list of the most common passwords (compared lowercase).
fn is_common_password(raw: &str) -> bool {
    const LIST: &str = include_str!("common_passwords.txt");
    let lower = raw.to_lowercase();
    LIST.lines().filter(|l| !l.starts_with('#')).any(|l| l.trim() == lower)
}

pub fn slug(raw: &str) -> Result<String, ApiError> {
    let value = raw.trim().to_lowercase();
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-';
    charset_and_length("slug", &value, SLUG_LEN, allowed, "letters, digits and '-'")?;
    Ok(value)
}

/// Control characters have no place in text a person types; NUL in particular is refused by
/// Postgres (a 500 there) and stored by SQLite, so both engines refuse it here alike.
fn no_control_characters(field: &str, value: &str, newlines: bool) -> Result<(), ApiError> {
    if value.chars().any(|c| c.is_control() && !(newlines && (c == '\n' || c == '\r' || c == '\t'))) {
        return Err(ApiError::validation(field, "must not contain control characters"));
    }
    Ok(())
}

pub fn title(raw: &str) -> Result<String, ApiError> {
    one_line("title", raw, TITLE_MAX_CHARS)
}

/// What a personal access token is called.
pub fn token_name(raw: &str) -> Result<String, ApiError> {
    one_line("name", raw, TOKEN_NAME_MAX_CHARS)
}

/// A required single line of 1 to `max_chars` characters, trimmed.
fn one_line(field: &str, raw: &str, max_chars: usize) -> Result<String, ApiError> {
    let value = raw.trim();
    no_control_characters(field, value, false)?;
    let chars = value.chars().count();
    if chars == 0 || chars > max_chars {
        return Err(ApiError::validation(field, format!("must be 1 to {max_chars} characters long")));
    }
    Ok(value.to_string())
}

pub fn description(raw: &str) -> Result<String, ApiError> {
    let value = raw.trim();
    no_control_characters("description", value, true)?;
    if value.chars().count() > DESCRIPTION_MAX_CHARS {
        return Err(ApiError::validation("description", format!("must be at most {DESCRIPTION_MAX_CHARS} characters long")));
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lowercased_and_checked() {
        assert_eq!(username(" Alice_01 ").ok().as_deref(), Some("alice_01"));
        assert!(username("ab").is_err());
        assert!(username(&"a".repeat(33)).is_err());
        assert!(username("al ice").is_err());
        assert!(username("álice").is_err());
    }

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        assert_eq!(email("Keerti@Example.COM").ok().as_deref(), Some("keerti@example.com"));
        for bad in ["keerti", "@example.com", "k@localhost", "k@.com", "k@@example.com", "k l@example.com"] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_and_slugs() {
        assert!(password("1234567").is_err());
        assert!(password("kq8!vz3m").is_ok());
        for common in ["12345678", "Password123", "QWERTY123", "iloveyou"] {
            assert!(password(common).is_err(), "{common} is on the common list");
        }
        assert!(password(&"x".repeat(PASSWORD_MAX_BYTES + 1)).is_err());
        assert_eq!(slug("My-Show").ok().as_deref(), Some("my-show"));
        assert!(slug("my_show").is_err());
        assert!(title("   ").is_err());
    }

    #[test]
    fn nul_and_other_control_characters_are_refused() {
        assert!(title("a\0b").is_err());
        assert!(title("tab\there").is_err());
        assert!(description("line one\nline two\ttabbed").is_ok());
        assert!(description("nul\0").is_err());
        assert!(email("k\0@example.com").is_err());
    }
}
