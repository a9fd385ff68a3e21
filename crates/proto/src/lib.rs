//! Wire types shared by the Stoa server, its SFU core and its clients.
//!
//! This crate owns the signaling protocol (see `docs/signaling.md`), the identifiers that
//! cross crate boundaries, access-token grants and the JSON error body. It depends on serde
//! only (utoipa too with the `openapi` feature), so every other crate (and test clients) can
//! use it.

mod ids;
mod signal;

pub mod clock;

pub use ids::{
    display_name, DisplayNameError, ParticipantId, RoomName, RoomNameError, DISPLAY_NAME_MAX,
};
pub use signal::{
    ChatMessage, ClientMessage, ErrorCode, Grants, IceServer, LobbyEntry, ParticipantInfo,
    PublishedTrack, ServerMessage, TrackInfo, TrackKind, TrackSource, PROTOCOL_VERSION, REACTIONS,
};

use serde::{Deserialize, Serialize};

/// The one JSON error shape every HTTP endpoint answers with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// Machine-readable code, e.g. `token_expired`.
    pub error: String,
    /// Human-readable explanation.
    pub message: String,
    /// The request field that was wrong, for validation errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}
