//! Identifiers and names: validated room names, participant ids and display names.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A participant's id within one server, unique for the server's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ParticipantId(pub u64);

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

impl std::str::FromStr for ParticipantId {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        s.strip_prefix('p')
            .and_then(|n| n.parse().ok())
            .map(ParticipantId)
            .ok_or(())
    }
}

/// A room name: 1 to 64 characters of `A-Z a-z 0-9 - _`.
///
/// Room names appear in URLs and tokens, so the alphabet is kept URL-safe.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RoomName(String);

/// Why a string is not a valid room name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomNameError {
    Empty,
    TooLong,
    BadCharacter(char),
}

impl fmt::Display for RoomNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "room name is empty"),
            Self::TooLong => write!(f, "room name is longer than 64 characters"),
            Self::BadCharacter(c) => write!(
                f,
                "room name contains {c:?}; only letters, digits, '-' and '_' are allowed"
            ),
        }
    }
}

impl std::error::Error for RoomNameError {}

impl RoomName {
    pub const MAX_LEN: usize = 64;

    pub fn new(s: impl Into<String>) -> Result<Self, RoomNameError> {
        let s = s.into();
        if s.is_empty() {
            return Err(RoomNameError::Empty);
        }
        if s.len() > Self::MAX_LEN {
            return Err(RoomNameError::TooLong);
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(RoomNameError::BadCharacter(c));
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RoomName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RoomName::new(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_are_validated() {
        assert!(RoomName::new("team-sync_1").is_ok());
        assert_eq!(RoomName::new(""), Err(RoomNameError::Empty));
        assert_eq!(RoomName::new("a".repeat(65)), Err(RoomNameError::TooLong));
        assert_eq!(RoomName::new("a/b"), Err(RoomNameError::BadCharacter('/')));
        assert!(serde_json::from_str::<RoomName>("\"../x\"").is_err());
    }

    #[test]
    fn participant_id_round_trips_through_text() {
        let id = ParticipantId(42);
        assert_eq!(id.to_string().parse::<ParticipantId>(), Ok(id));
        assert!("42".parse::<ParticipantId>().is_err());
    }
}

/// The most characters a display name may have.
pub const DISPLAY_NAME_MAX: usize = 64;

/// Why a string is not a valid display name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisplayNameError {
    /// Empty once trimmed, or longer than [`DISPLAY_NAME_MAX`] characters.
    Length,
    ControlCharacter,
    MoreThanOneLine,
}

impl fmt::Display for DisplayNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length => write!(f, "must be 1 to {DISPLAY_NAME_MAX} characters"),
            Self::ControlCharacter => write!(f, "must not contain control characters"),
            Self::MoreThanOneLine => write!(f, "must be one line"),
        }
    }
}

impl std::error::Error for DisplayNameError {}

/// A person's name as others see it in a call and in the app: trimmed, one line of 1 to
/// [`DISPLAY_NAME_MAX`] characters (counted before trimming too), no control characters.
pub fn display_name(raw: &str) -> Result<String, DisplayNameError> {
    let value = raw.trim();
    if value.is_empty() || raw.chars().count() > DISPLAY_NAME_MAX {
        return Err(DisplayNameError::Length);
    }
    if value.contains('\n') || value.contains('\t') {
        return Err(DisplayNameError::MoreThanOneLine);
    }
    if value.chars().any(char::is_control) {
        return Err(DisplayNameError::ControlCharacter);
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod display_name_tests {
    use super::*;

    #[test]
    fn display_names_are_one_trimmed_line() {
        assert_eq!(display_name("  Ann Archer "), Ok("Ann Archer".into()));
        assert_eq!(display_name(&"é".repeat(64)), Ok("é".repeat(64)));
        assert_eq!(display_name(&"é".repeat(65)), Err(DisplayNameError::Length));
        assert_eq!(display_name("   "), Err(DisplayNameError::Length));
        assert_eq!(
            display_name("Ann\nBob"),
            Err(DisplayNameError::MoreThanOneLine)
        );
        assert_eq!(
            display_name("Ann\u{7}"),
            Err(DisplayNameError::ControlCharacter)
        );
    }
}
