//! Signaling messages exchanged over the WebSocket at `/ws` (protocol version 1).
//!
//! Every message is one JSON object with a `type` field. `docs/signaling.md` describes the
//! conversation; the types here are its single source of truth.

use serde::{Deserialize, Serialize};

use crate::ParticipantId;

/// Bumped when a change would break existing clients.
pub const PROTOCOL_VERSION: u32 = 1;

/// The reactions a participant may send (`react`).
pub const REACTIONS: [&str; 6] = ["👍", "👏", "😂", "❤️", "🎉", "😮"];

/// What an access token allows its holder to do in its room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grants {
    /// Send audio/video into the room.
    pub publish: bool,
    /// Receive the room's audio/video.
    pub subscribe: bool,
    /// Send chat messages.
    pub publish_data: bool,
    /// Moderate the room and read its statistics.
    pub room_admin: bool,
}

impl Default for Grants {
    fn default() -> Self {
        Self {
            publish: true,
            subscribe: true,
            publish_data: true,
            room_admin: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackKind {
    Audio,
    Video,
}

/// Where a published track comes from, so clients can lay it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TrackSource {
    Microphone,
    Camera,
    Screen,
    #[default]
    Unknown,
}

/// A track published into the room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackInfo {
    /// Server-assigned id, also the MediaStreamTrack id (msid) subscribers see.
    pub id: String,
    pub participant: ParticipantId,
    pub kind: TrackKind,
    pub source: TrackSource,
    pub muted: bool,
}

/// A participant as other participants see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantInfo {
    pub id: ParticipantId,
    pub identity: String,
    pub name: String,
    pub tracks: Vec<TrackInfo>,
    /// Whether its hand is raised (absent from older servers: not raised).
    #[serde(default)]
    pub hand_raised: bool,
}

/// A STUN/TURN server a client may use (the shape of `RTCIceServer`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// A chat message as delivered to the room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub from: ParticipantId,
    pub name: String,
    pub text: String,
    /// Server receive time, milliseconds since the Unix epoch.
    pub ts: u64,
}

/// Client to server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// The first message on a connection.
    Join {
        token: String,
    },
    /// An SDP offer (the client's first offer, or a renegotiation / ICE restart).
    Offer {
        sdp: String,
    },
    /// The answer to a server offer.
    Answer {
        sdp: String,
    },
    /// A trickled ICE candidate (`candidate:` line); an empty string ends gathering.
    Candidate {
        candidate: String,
    },
    /// Declares what each of the client's sending transceivers carries, by mid.
    Publish {
        tracks: Vec<PublishedTrack>,
    },
    /// Mutes or unmutes one of the client's published tracks.
    Mute {
        mid: String,
        muted: bool,
    },
    Chat {
        text: String,
    },
    /// Changes the name others see for this participant (1 to 64 characters, one line).
    Rename {
        name: String,
    },
    /// Raises or lowers this participant's hand.
    RaiseHand {
        raised: bool,
    },
    /// Host (room-admin): lowers another participant's raised hand.
    LowerHand {
        participant: ParticipantId,
    },
    /// A passing reaction, one of [`REACTIONS`], shown to everyone for a moment.
    React {
        emoji: String,
    },
    /// Host (room-admin): makes another participant a host too, for this call.
    MakeHost {
        participant: ParticipantId,
    },
    /// Host (room-admin): mutes another participant's microphone. They may unmute.
    MuteParticipant {
        participant: ParticipantId,
    },
    /// Host (room-admin): removes another participant from the call.
    RemoveParticipant {
        participant: ParticipantId,
    },
    /// Host (room-admin): lets someone waiting in the lobby in.
    Admit {
        id: String,
    },
    /// Host (room-admin): turns someone waiting in the lobby away.
    Deny {
        id: String,
    },
    /// Host (room-admin): locks the meeting (nobody new may join) or unlocks it.
    Lock {
        locked: bool,
    },
    /// Host (room-admin): ends the meeting for everyone in it and in its lobby.
    EndMeeting,
    /// The size at which the client displays a received video track, in CSS pixels; the
    /// server picks the simulcast layer that covers it. 0×0 means not visible: nothing is
    /// forwarded for the track until a visible size arrives.
    VideoSize {
        /// The track id from `track_published`.
        track: String,
        width: u32,
        height: u32,
    },
    /// Keeps the connection alive; answered by `pong`.
    Ping,
    Leave,
}

/// Someone waiting in a meeting's lobby, as its hosts see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LobbyEntry {
    pub id: String,
    pub name: String,
}

/// One sending transceiver as the client describes it in `publish`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedTrack {
    pub mid: String,
    pub source: TrackSource,
    #[serde(default)]
    pub muted: bool,
}

/// Server to client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Sent once, after a valid `join`.
    Joined {
        version: u32,
        room: String,
        you: ParticipantInfo,
        grants: Grants,
        participants: Vec<ParticipantInfo>,
        ice_servers: Vec<IceServer>,
    },
    Offer {
        sdp: String,
    },
    Answer {
        sdp: String,
    },
    ParticipantJoined {
        participant: ParticipantInfo,
    },
    ParticipantLeft {
        id: ParticipantId,
    },
    /// A participant raised or lowered its hand, or a host lowered it (sent to everyone, the
    /// participant included).
    HandRaised {
        participant: ParticipantId,
        raised: bool,
    },
    /// A participant reacted (sent to everyone, the participant included).
    Reaction {
        participant: ParticipantId,
        emoji: String,
    },
    /// A participant changed its name (sent to everyone, the participant included).
    ParticipantRenamed {
        id: ParticipantId,
        name: String,
    },
    /// A track appeared or changed (mute state, source).
    TrackPublished {
        track: TrackInfo,
    },
    TrackUnpublished {
        id: String,
        participant: ParticipantId,
    },
    Chat {
        message: ChatMessage,
    },
    /// The meeting has a lobby: wait for a host to admit (`joined` follows) or deny
    /// (a fatal `denied` error follows).
    Lobby,
    /// To hosts: everyone waiting in the lobby now.
    LobbyUpdate {
        waiting: Vec<LobbyEntry>,
    },
    /// To someone in the lobby: whether a host is in the meeting to let them in. Sent on
    /// entering the lobby and whenever it changes.
    LobbyHost {
        present: bool,
    },
    /// A host muted this participant's microphone; the client should show it muted.
    MutedByHost {
        kind: TrackKind,
    },
    /// The room's active speaker changed (`null`: nobody speaks). Sent to everyone when it
    /// changes, and to a participant that joins while someone speaks.
    ActiveSpeaker {
        participant: Option<ParticipantId>,
    },
    /// This participant's grants changed during the call (a host made it a host too).
    Grants {
        grants: Grants,
    },
    /// The meeting was locked or unlocked by a host.
    Locked {
        locked: bool,
    },
    /// To a simulcast publisher: the layers (rids) of one of its tracks that subscribers
    /// currently need. The client should send only these (`RTCRtpEncodingParameters.active`)
    /// and resume a layer as soon as it is listed again.
    Layers {
        track: String,
        active: Vec<String>,
    },
    Pong,
    /// The request could not be handled; the connection stays usable unless `fatal`.
    Error {
        code: ErrorCode,
        message: String,
        fatal: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The message was not valid JSON or not a known message.
    BadMessage,
    /// The message is valid but not allowed now (e.g. an answer with no offer pending).
    OutOfOrder,
    /// The token is missing, malformed, expired, tampered with or for another room.
    Unauthorized,
    /// The token does not grant this action.
    Forbidden,
    /// An SDP could not be applied.
    BadSdp,
    /// The same identity joined the room elsewhere.
    Replaced,
    /// The server is shutting down or the room was closed.
    Closed,
    /// A host removed this participant.
    Removed,
    /// A host turned this participant away from the lobby.
    Denied,
    /// The meeting does not admit this person (a reason not listed below).
    NotAdmitted,
    /// The host locked the meeting: nobody new can join.
    MeetingLocked,
    /// The meeting was cancelled: its link admits nobody.
    MeetingCancelled,
    /// The host admits only people signed in with an account.
    SignInRequired,
    /// A host ended the meeting for everyone.
    Ended,
}

impl ServerMessage {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerMessage::Error {
            code,
            message: message.into(),
            fatal: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_use_a_type_tag() {
        let m: ClientMessage = serde_json::from_str(r#"{"type":"chat","text":"hi"}"#).unwrap();
        assert_eq!(m, ClientMessage::Chat { text: "hi".into() });
        let m: ClientMessage = serde_json::from_str(r#"{"type":"ping"}"#).unwrap();
        assert_eq!(m, ClientMessage::Ping);
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"nope"}"#).is_err());
        let m: ClientMessage =
            serde_json::from_str(r#"{"type":"video_size","track":"3-1","width":320,"height":180}"#)
                .unwrap();
        assert_eq!(
            m,
            ClientMessage::VideoSize {
                track: "3-1".into(),
                width: 320,
                height: 180
            }
        );
    }

    #[test]
    fn layers_lists_the_active_rids() {
        let json = serde_json::to_value(ServerMessage::Layers {
            track: "3-1".into(),
            active: vec!["q".into(), "h".into()],
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type":"layers","track":"3-1","active":["q","h"]})
        );
    }

    #[test]
    fn server_errors_serialize_flat() {
        let json = serde_json::to_value(ServerMessage::error(ErrorCode::BadSdp, "x")).unwrap();
        assert_eq!(json["type"], "error");
        assert_eq!(json["code"], "bad_sdp");
        assert_eq!(json["fatal"], false);
    }
}
