//! `GET /api/v1/rooms/{room}/stats`: the server's view of a call's quality, for its hosts.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use stoa_sfu::RoomStats;

use super::ErrorBody;
use crate::error::ApiError;
use crate::http::{require_room_admin, AppState};

/// Statistics of every participant and track of a call (see `docs/api.md`). Rates cover the
/// last second; a room nobody is in has no participants.
#[utoipa::path(get, path = "/api/v1/rooms/{room}/stats", tag = "rooms",
    params(("room" = String, Path, description = "room name")),
    security(("bearer" = [])),
    responses((status = 200, body = RoomStats),
              (status = 400, description = "invalid_room", body = ErrorBody),
              (status = 401, description = "a missing, invalid or expired token", body = ErrorBody),
              (status = 403, description = "not a room-admin token for this room", body = ErrorBody)))]
pub async fn room_stats(
    State(state): State<AppState>,
    Path(room): Path<String>,
    headers: HeaderMap,
) -> Result<Json<RoomStats>, ApiError> {
    let room = require_room_admin(&state, &room, &headers)?;
    let stats = state.media.room_stats(room.clone()).await;
    Ok(Json(stats.unwrap_or_else(|| RoomStats {
        room: room.to_string(),
        participants: Vec::new(),
    })))
}
