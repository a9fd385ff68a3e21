//! The server's view of a call, for its hosts: `GET /api/v1/rooms/{room}/stats` (quality)
//! and `GET /api/v1/rooms/{room}/counters` (packet counters, what tests and operators read).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Serialize;
use stoa_proto::ParticipantId;
use stoa_sfu::{ParticipantReport, RoomStats};
use utoipa::ToSchema;

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

/// Packet counters of a room's participants and of the whole media server.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoomCounters {
    pub room: String,
    pub participants: Vec<ParticipantCounters>,
    pub server: ServerCounters,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ParticipantCounters {
    #[schema(value_type = u64)]
    pub id: ParticipantId,
    pub identity: String,
    pub name: String,
    /// `interactive` (the web app), `whip` or `whep`.
    pub kind: String,
    /// ICE and DTLS are up.
    pub connected: bool,
    pub packets_in: u64,
    pub packets_out: u64,
    /// Packets received and not forwarded (unknown stream, muted by a host, malformed).
    pub dropped: u64,
    /// Packets not forwarded while a subscriber waited for a keyframe.
    pub awaiting_keyframe: u64,
}

/// Datagrams of the whole media server.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerCounters {
    pub datagrams_in: u64,
    /// Datagrams no participant claimed (garbage, strangers, late packets of departed peers).
    pub unroutable: u64,
}

impl From<ParticipantReport> for ParticipantCounters {
    fn from(p: ParticipantReport) -> Self {
        Self {
            id: p.id,
            identity: p.identity,
            name: p.name,
            kind: format!("{:?}", p.kind).to_lowercase(),
            connected: p.connected,
            packets_in: p.counters.packets_in,
            packets_out: p.counters.packets_out,
            dropped: p.counters.dropped,
            awaiting_keyframe: p.counters.awaiting_keyframe,
        }
    }
}

/// Packet counters of every participant of a call and of the media server.
#[utoipa::path(get, path = "/api/v1/rooms/{room}/counters", tag = "rooms",
    params(("room" = String, Path, description = "room name")),
    security(("bearer" = [])),
    responses((status = 200, body = RoomCounters),
              (status = 400, description = "invalid_room", body = ErrorBody),
              (status = 401, description = "a missing, invalid or expired token", body = ErrorBody),
              (status = 403, description = "not a room-admin token for this room", body = ErrorBody)))]
pub async fn room_counters(
    State(state): State<AppState>,
    Path(room): Path<String>,
    headers: HeaderMap,
) -> Result<Json<RoomCounters>, ApiError> {
    let room = require_room_admin(&state, &room, &headers)?;
    let (participants, server) = state.media.report(room.clone()).await;
    Ok(Json(RoomCounters {
        room: room.to_string(),
        participants: participants
            .unwrap_or_default()
            .into_iter()
            .map(Into::into)
            .collect(),
        server: ServerCounters {
            datagrams_in: server.datagrams_in,
            unroutable: server.unroutable,
        },
    }))
}
