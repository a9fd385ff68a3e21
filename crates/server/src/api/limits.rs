//! `GET`/`PUT /api/v1/rooms/{room}/limits` and
//! `PUT /api/v1/rooms/{room}/participants/{participant}/limits`: a call's video bitrate limits
//! and its publishers' priorities, for its hosts (see `docs/api.md`). The SFU's layer
//! selection obeys them (`stoa_sfu::RoomLimits`, `stoa_sfu::ParticipantLimits`).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use stoa_proto::ParticipantId;
use stoa_sfu::{ParticipantLimits, RoomLimits};
use utoipa::ToSchema;

use super::{ErrorBody, JsonBody};
use crate::error::{ApiError, ApiErrorCode};
use crate::http::{require_room_admin, AppState};

/// Highest bitrate a limit may be, bits/s.
const MAX_BITRATE: u64 = 100_000_000;
/// Highest publisher priority.
const MAX_PRIORITY: i64 = 10;

/// A room's video bitrate limits, per forwarded video track.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoomLimitsBody {
    /// No subscriber receives a layer of a track above this, bits/s (the lowest layer is
    /// always allowed); `null`: unlimited.
    #[serde(default, deserialize_with = "super::whole_number")]
    #[schema(minimum = 1, maximum = 100000000)]
    pub max_video_bitrate: Option<i64>,
    /// When bandwidth is short, each track first gets the lowest layer reaching this, bits/s,
    /// before any is raised further; `null`: no floor.
    #[serde(default, deserialize_with = "super::whole_number")]
    #[schema(minimum = 1, maximum = 100000000)]
    pub min_video_bitrate: Option<i64>,
}

/// One participant's limits as a publisher.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ParticipantLimitsBody {
    /// Ceiling for the layers of its video tracks that anyone receives, bits/s; `null`: none.
    #[serde(default, deserialize_with = "super::whole_number")]
    #[schema(minimum = 1, maximum = 100000000)]
    pub max_video_bitrate: Option<i64>,
    /// Its tracks are raised before those of lower priority (screen shares still come
    /// first), e.g. a presenter's. Default 0.
    #[serde(default, deserialize_with = "super::whole_number_required")]
    #[schema(minimum = 0, maximum = 10)]
    pub priority: i64,
}

impl From<RoomLimits> for RoomLimitsBody {
    fn from(l: RoomLimits) -> Self {
        Self {
            max_video_bitrate: l.max_video_bitrate_bps.map(|b| b as i64),
            min_video_bitrate: l.min_video_bitrate_bps.map(|b| b as i64),
        }
    }
}

impl From<ParticipantLimits> for ParticipantLimitsBody {
    fn from(l: ParticipantLimits) -> Self {
        Self {
            max_video_bitrate: l.max_video_bitrate_bps.map(|b| b as i64),
            priority: l.priority.into(),
        }
    }
}

/// Checks a bitrate field: positive and at most [`MAX_BITRATE`].
fn check_bitrate(field: &'static str, bps: Option<u64>) -> Result<(), (&'static str, String)> {
    match bps {
        Some(b) if b == 0 || b > MAX_BITRATE => Err((
            field,
            format!("{field} must be 1 to {MAX_BITRATE} bits/s, or null"),
        )),
        _ => Ok(()),
    }
}

/// Checks room limits (also the configured defaults): each bitrate in range, min ≤ max.
/// Errors name the field.
pub fn check_room(l: &RoomLimits) -> Result<(), (&'static str, String)> {
    check_bitrate("max_video_bitrate", l.max_video_bitrate_bps)?;
    check_bitrate("min_video_bitrate", l.min_video_bitrate_bps)?;
    match (l.min_video_bitrate_bps, l.max_video_bitrate_bps) {
        (Some(min), Some(max)) if min > max => Err((
            "min_video_bitrate",
            "min_video_bitrate must not exceed max_video_bitrate".into(),
        )),
        _ => Ok(()),
    }
}

/// A JSON bitrate as bits/s; a negative one becomes 0, which the checks refuse.
fn bps(value: Option<i64>) -> Option<u64> {
    value.map(|v| u64::try_from(v).unwrap_or(0))
}

fn field_error((field, message): (&'static str, String)) -> ApiError {
    ApiError::field(field, message)
}

impl RoomLimitsBody {
    fn to_limits(&self) -> Result<RoomLimits, ApiError> {
        let limits = RoomLimits {
            max_video_bitrate_bps: bps(self.max_video_bitrate),
            min_video_bitrate_bps: bps(self.min_video_bitrate),
        };
        check_room(&limits).map_err(field_error)?;
        Ok(limits)
    }
}

impl ParticipantLimitsBody {
    fn to_limits(&self) -> Result<ParticipantLimits, ApiError> {
        let max = bps(self.max_video_bitrate);
        check_bitrate("max_video_bitrate", max).map_err(field_error)?;
        let priority = u8::try_from(self.priority)
            .ok()
            .filter(|p| i64::from(*p) <= MAX_PRIORITY)
            .ok_or_else(|| {
                ApiError::field("priority", format!("priority must be 0 to {MAX_PRIORITY}"))
            })?;
        Ok(ParticipantLimits {
            max_video_bitrate_bps: max,
            priority,
        })
    }
}

/// A participant id as the stats API shows it (`7`) or as signaling does (`p7`).
fn participant_id(raw: &str) -> Option<ParticipantId> {
    raw.parse()
        .ok()
        .or_else(|| raw.parse().ok().map(ParticipantId))
}

fn empty_room() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ApiErrorCode::NotFound,
        "nobody is in this room",
    )
}

fn unknown_participant() -> ApiError {
    ApiError::not_found("participant in this room")
}

/// The room's video bitrate limits.
#[utoipa::path(get, path = "/api/v1/rooms/{room}/limits", tag = "rooms",
    params(("room" = String, Path, description = "room name")),
    security(("bearer" = [])),
    responses((status = 200, body = RoomLimitsBody),
              (status = 400, description = "invalid_room", body = ErrorBody),
              (status = 401, description = "a missing, invalid or expired token", body = ErrorBody),
              (status = 403, description = "not a room-admin token for this room", body = ErrorBody),
              (status = 404, description = "nobody is in the room", body = ErrorBody)))]
pub async fn room_limits(
    State(state): State<AppState>,
    Path(room): Path<String>,
    headers: HeaderMap,
) -> Result<Json<RoomLimitsBody>, ApiError> {
    let room = require_room_admin(&state, &room, &headers)?;
    let limits = state.media.room_limits(room).await.ok_or_else(empty_room)?;
    Ok(Json(limits.into()))
}

/// Replaces the room's video bitrate limits until the room empties (then the server's
/// defaults apply again).
#[utoipa::path(put, path = "/api/v1/rooms/{room}/limits", tag = "rooms",
    params(("room" = String, Path, description = "room name")),
    request_body = RoomLimitsBody,
    security(("bearer" = [])),
    responses((status = 200, body = RoomLimitsBody),
              (status = 400, description = "invalid_room, invalid_body, invalid_field", body = ErrorBody),
              (status = 401, description = "a missing, invalid or expired token", body = ErrorBody),
              (status = 403, description = "not a room-admin token for this room", body = ErrorBody),
              (status = 404, description = "nobody is in the room", body = ErrorBody)))]
pub async fn set_room_limits(
    State(state): State<AppState>,
    Path(room): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<RoomLimitsBody>,
) -> Result<Json<RoomLimitsBody>, ApiError> {
    let room = require_room_admin(&state, &room, &headers)?;
    let limits = body.to_limits()?;
    state
        .media
        .set_room_limits(room.clone(), limits)
        .await
        .map_err(|_| empty_room())?;
    let actor = admin_identity(&state, &headers);
    crate::ws::audit(
        &actor,
        room.as_str(),
        format_args!("set the room's limits to {limits:?}"),
    );
    Ok(Json(limits.into()))
}

/// Replaces a participant's limits and priority as a publisher, for as long as it stays.
#[utoipa::path(put, path = "/api/v1/rooms/{room}/participants/{participant}/limits",
    tag = "rooms",
    params(("room" = String, Path, description = "room name"),
           ("participant" = String, Path, description = "participant id, `7` or `p7`")),
    request_body = ParticipantLimitsBody,
    security(("bearer" = [])),
    responses((status = 200, body = ParticipantLimitsBody),
              (status = 400, description = "invalid_room, invalid_body, invalid_field", body = ErrorBody),
              (status = 401, description = "a missing, invalid or expired token", body = ErrorBody),
              (status = 403, description = "not a room-admin token for this room", body = ErrorBody),
              (status = 404, description = "no such participant in the room", body = ErrorBody)))]
pub async fn set_participant_limits(
    State(state): State<AppState>,
    Path((room, participant)): Path<(String, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ParticipantLimitsBody>,
) -> Result<Json<ParticipantLimitsBody>, ApiError> {
    let room = require_room_admin(&state, &room, &headers)?;
    let id = participant_id(&participant).ok_or_else(unknown_participant)?;
    let limits = body.to_limits()?;
    state
        .media
        .set_participant_limits(room.clone(), id, limits)
        .await
        .map_err(|_| unknown_participant())?;
    let actor = admin_identity(&state, &headers);
    crate::ws::audit(
        &actor,
        room.as_str(),
        format_args!("set {id}'s limits to {limits:?}"),
    );
    Ok(Json(limits.into()))
}

/// Who a request already let through as a room admin is, for the audit log.
fn admin_identity(state: &AppState, headers: &HeaderMap) -> String {
    if state.operator.is_admin(headers) {
        return "operator (admin token)".into();
    }
    crate::http::bearer(headers)
        .ok()
        .and_then(|t| state.keys.verify(t, None).ok())
        .map_or_else(|| "unknown".into(), |c| c.sub)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn participant_ids_are_accepted_with_or_without_the_prefix() {
        assert_eq!(participant_id("7"), Some(ParticipantId(7)));
        assert_eq!(participant_id("p7"), Some(ParticipantId(7)));
        assert_eq!(participant_id("q7"), None);
        assert_eq!(participant_id("-7"), None);
    }
}
