//! Field rules of the REST API. Each check names the field it refused, so clients can show
//! the message next to it.

use crate::error::ApiError;

pub fn email(raw: &str) -> Result<String, ApiError> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(email)
    } else {
        Err(ApiError::field(
            "email",
            "email must look like name@example.org (at most 254 characters)",
        ))
    }
}

pub fn password(field: &str, password: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if (8..=256).contains(&n) {
        Ok(())
    } else {
        Err(ApiError::field(
            field,
            format!("{field} must be 8 to 256 characters"),
        ))
    }
}

/// Trimmed text of `min..=max` characters (`max` also before trimming) without control
/// characters other than line breaks and tabs.
pub fn text(field: &str, raw: &str, min: usize, max: usize) -> Result<String, ApiError> {
    let value = raw.trim();
    let n = value.chars().count();
    if n < min || raw.chars().count() > max {
        return Err(ApiError::field(
            field,
            format!("{field} must be {min} to {max} characters"),
        ));
    }
    let allowed = |c: char| !c.is_control() || c == '\n' || c == '\t';
    if !value.chars().all(allowed) {
        return Err(ApiError::field(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(value.to_string())
}

/// Like [`text`], on one line: no line breaks or tabs either.
pub fn line(field: &str, raw: &str, min: usize, max: usize) -> Result<String, ApiError> {
    let value = text(field, raw, min, max)?;
    if value.contains('\n') || value.contains('\t') {
        return Err(ApiError::field(field, format!("{field} must be one line")));
    }
    Ok(value)
}

/// A display name by the rules of [`stoa_proto::display_name`], which calls share.
pub fn display_name(field: &str, raw: &str) -> Result<String, ApiError> {
    stoa_proto::display_name(raw).map_err(|e| ApiError::field(field, format!("{field} {e}")))
}

/// An id of ours: 1 to 64 URL-safe characters (anything else cannot exist).
pub fn id(field: &str, raw: &str) -> Result<String, ApiError> {
    let ok = (1..=64).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(raw.to_string())
    } else {
        Err(ApiError::field(field, format!("{field} is not a valid id")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(email("  Ann@Example.ORG ").unwrap(), "ann@example.org");
        for bad in [
            "",
            "ann",
            "@example.org",
            "ann@org",
            "ann@.org",
            "a nn@x.org",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn texts_and_names() {
        assert_eq!(text("title", "  Sync ", 1, 10).unwrap(), "Sync");
        assert!(text("title", "   ", 1, 10).is_err());
        assert!(text("title", "a\u{7}b", 1, 10).is_err());
        assert_eq!(
            text("title", &"é".repeat(10), 1, 10)
                .unwrap()
                .chars()
                .count(),
            10
        );
        assert!(display_name("name", "two\nlines").is_err());
        let e = password("new_password", "short").unwrap_err();
        assert_eq!(e.body.field.as_deref(), Some("new_password"));
    }
}
