//! The door of a room: the one admission decision for every way in. The signaling WebSocket,
//! WHIP, WHEP and the REST call that hands out join tokens all ask [`check`], so a cancelled,
//! locked, sign-in-only or lobby meeting refuses a person the same way whichever door they try.

use axum::http::StatusCode;
use stoa_proto::{Grants, RoomName};
use stoa_sfu::MeetingRef;
use stoa_store::Meeting;

use crate::auth::identity_user;
use crate::error::{ApiError, ApiErrorCode};
use crate::http::AppState;

/// What the door decided for someone it did not refuse.
#[derive(Debug)]
pub enum Entry {
    /// Straight in; the room's stored meeting, if it has one.
    Enter(Option<Meeting>),
    /// The meeting has a lobby and this person is not a host: a host must let them in.
    Lobby(Meeting),
}

/// Decides whether `identity` (with the token's `grants`) may enter `room` now.
/// A room with no stored meeting is an ad-hoc or integration room: its token is the rule.
pub async fn check(
    state: &AppState,
    room: &RoomName,
    identity: &str,
    grants: &Grants,
) -> Result<Entry, ApiError> {
    let meeting = state
        .store
        .meeting_by_room(room.as_str())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot load the meeting of a room");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ApiErrorCode::Unavailable,
                "The server cannot load this meeting now. Try again in a moment.",
            )
        })?;
    check_meeting(meeting, identity, grants)
}

/// [`check`] for a meeting already loaded (`None`: the room has no stored meeting).
pub fn check_meeting(
    meeting: Option<Meeting>,
    identity: &str,
    grants: &Grants,
) -> Result<Entry, ApiError> {
    let Some(m) = meeting else {
        return Ok(Entry::Enter(None));
    };
    let host = grants.room_admin;
    admits(&m, identity_user(identity).is_some(), host)?;
    if m.draft.lobby && !host {
        return Ok(Entry::Lobby(m));
    }
    Ok(Entry::Enter(Some(m)))
}

/// Whether a stored meeting lets this person in right now, lobby aside.
pub fn admits(meeting: &Meeting, signed_in: bool, host: bool) -> Result<(), ApiError> {
    if meeting.cancelled {
        return Err(ApiError::new(
            StatusCode::GONE,
            ApiErrorCode::MeetingCancelled,
            "This meeting was cancelled.",
        ));
    }
    if meeting.draft.require_sign_in && !signed_in {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            ApiErrorCode::SignInRequired,
            "The host requires participants to sign in.",
        ));
    }
    if meeting.locked && !host {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ApiErrorCode::MeetingLocked,
            "The host locked this meeting.",
        ));
    }
    Ok(())
}

/// WHIP and WHEP cannot wait in a lobby: a meeting with one takes them from hosts only.
pub fn no_lobby_for_http(entry: Entry) -> Result<Option<Meeting>, ApiError> {
    match entry {
        Entry::Enter(m) => Ok(m),
        Entry::Lobby(_) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ApiErrorCode::Lobby,
            "This meeting has a lobby, and WHIP/WHEP cannot wait in it: use a host's (room-admin) token.",
        )),
    }
}

/// The meeting as the media core keeps it for the room (its lock).
pub fn meeting_ref(meeting: &Meeting) -> MeetingRef {
    MeetingRef {
        id: meeting.id.clone(),
        locked: meeting.locked,
    }
}
