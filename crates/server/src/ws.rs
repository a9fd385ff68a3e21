//! One WebSocket signaling session: authenticate with `join`, pass the meeting's door
//! (cancelled, locked, sign-in, whether to wait in the lobby), then relay typed messages
//! between the client and the room in the media core until either side ends it. The room
//! decides everything in the call, the lobby included (`stoa_sfu`'s `room.rs`); attendance
//! and presence are recorded from the moment the person is in the call.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use stoa_proto::{ClientMessage, ErrorCode, ServerMessage};
use stoa_sfu::{JoinRequest, ParticipantKind};
use stoa_store::Meeting;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::auth::identity_user;
use crate::clock::unix_ms;
use crate::door::{self, Entry};
use crate::http::AppState;
use crate::listener::ConnectionSlot;

/// A client must send `join` this soon after connecting.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// A client silent this long (no message, no ping) is gone.
const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
const MAX_MESSAGE: usize = 256 * 1024;
/// A message the client has not taken within this time ends the session: it stopped reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Signaling messages queued for one client before it counts as not reading (see the worker).
const EVENT_QUEUE: usize = 512;
/// How long a closing session waits for the client's half of the closing handshake.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn upgrade(
    State(state): State<AppState>,
    slot: Option<Extension<ConnectionSlot>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    ws.max_message_size(MAX_MESSAGE)
        .on_upgrade(move |socket| async move {
            session(socket, state, host).await;
            drop(slot);
        })
}

async fn session(mut socket: WebSocket, state: AppState, host: Option<String>) {
    let Some(mut req) = authenticate(&mut socket, &state, host.as_deref()).await else {
        return;
    };
    let Some(meeting) = pass_door(&mut socket, &state, &mut req).await else {
        return;
    };
    let room = req.room.to_string();
    let identity = req.identity.clone();
    let mut is_host = req.grants.room_admin;
    let (events_tx, mut events) = mpsc::channel(EVENT_QUEUE);
    let Some(id) = state.media.join(req, events_tx).await else {
        return;
    };
    tracing::info!(participant = %id, "signaling session started");
    let mut in_call: Option<InCall> = None;
    let mut last_heard = Instant::now();
    let mut idle_check = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let Some(Ok(msg)) = incoming else { break };
                last_heard = Instant::now();
                let text = match msg {
                    Message::Text(t) => t,
                    Message::Close(_) => break,
                    Message::Binary(_) => {
                        send(&mut socket, &ServerMessage::error(ErrorCode::BadMessage, "binary messages are not supported")).await;
                        continue;
                    }
                    _ => continue,
                };
                match serde_json::from_str::<ClientMessage>(&text) {
                    Ok(ClientMessage::Leave) => break,
                    Ok(ClientMessage::Join { .. }) => {
                        send(&mut socket, &ServerMessage::error(ErrorCode::OutOfOrder, "already joined")).await;
                    }
                    Ok(message) => {
                        // The room checks host rights and refuses others; record what hosts asked.
                        if is_host && is_moderation(&message) {
                            audit(&identity, &room, audit_action(&message));
                        }
                        state.media.message(id, message);
                    }
                    Err(e) => {
                        send(&mut socket, &ServerMessage::error(ErrorCode::BadMessage, format!("unreadable message: {e}"))).await;
                    }
                }
            }
            event = events.recv() => match event {
                Some(message) => {
                    let fatal = matches!(message, ServerMessage::Error { fatal: true, .. });
                    match &message {
                        // In the call (at once, or once a host let them in from the lobby).
                        ServerMessage::Joined { you, .. } if in_call.is_none() => {
                            in_call = Some(InCall::begin(&state, meeting.as_ref(), &you.identity, &you.name).await);
                        }
                        ServerMessage::Grants { grants } => is_host |= grants.room_admin,
                        _ => {}
                    }
                    if !send(&mut socket, &message).await || fatal {
                        break;
                    }
                }
                // The media worker removed this participant.
                None => break,
            },
            _ = idle_check.tick() => {
                if last_heard.elapsed() > IDLE_TIMEOUT {
                    tracing::info!(participant = %id, "signaling idle; closing");
                    break;
                }
            }
        }
    }
    state.media.leave(id);
    if let Some(call) = in_call {
        call.end(&state).await;
    }
    close(&mut socket, 1000, "bye").await;
    tracing::info!(participant = %id, "signaling session ended");
}

/// Attendance and presence of someone in a call, from joining to leaving.
struct InCall {
    attendance: Option<String>,
    user_id: Option<String>,
}

impl InCall {
    async fn begin(
        state: &AppState,
        meeting: Option<&Meeting>,
        identity: &str,
        name: &str,
    ) -> Self {
        let user_id = identity_user(identity).map(String::from);
        let attendance = record_join(state, meeting, user_id.as_deref(), name).await;
        if let Some(user) = &user_id {
            if state.presence.call_joined(user) {
                state.presence.announce(state.store.clone(), user.clone());
            }
        }
        Self {
            attendance,
            user_id,
        }
    }

    async fn end(self, state: &AppState) {
        if let Some(attendance) = self.attendance {
            if let Err(e) = state.store.record_leave(&attendance, unix_ms()).await {
                tracing::warn!(error = %e, "cannot record leaving the meeting");
            }
        }
        if let Some(user) = &self.user_id {
            if state.presence.call_left(user) {
                state.presence.announce(state.store.clone(), user.clone());
            }
        }
    }
}

/// Asks the room's door ([`door::check`]); marks `req` for the lobby when the door says so.
/// `None` when the session must end (the client was told why); otherwise the meeting.
async fn pass_door(
    socket: &mut WebSocket,
    state: &AppState,
    req: &mut JoinRequest,
) -> Option<Option<Meeting>> {
    let meeting = match door::check(state, &req.room, &req.identity, &req.grants).await {
        Ok(Entry::Enter(meeting)) => meeting,
        Ok(Entry::Lobby(meeting)) => {
            req.lobby = true;
            Some(meeting)
        }
        Err(e) => {
            let code = match (e.status, e.body.error.as_str()) {
                (StatusCode::SERVICE_UNAVAILABLE, _) => ErrorCode::Closed,
                (_, "meeting_locked") => ErrorCode::MeetingLocked,
                (_, "meeting_cancelled") => ErrorCode::MeetingCancelled,
                (_, "sign_in_required") => ErrorCode::SignInRequired,
                _ => ErrorCode::NotAdmitted,
            };
            fail(socket, code, &e.body.message).await;
            return None;
        }
    };
    req.meeting = meeting.as_ref().map(door::meeting_ref);
    Some(meeting)
}

/// Whether a message is a host's action on others or the room.
fn is_moderation(message: &ClientMessage) -> bool {
    matches!(
        message,
        ClientMessage::Admit { .. }
            | ClientMessage::Deny { .. }
            | ClientMessage::Lock { .. }
            | ClientMessage::EndMeeting
            | ClientMessage::MuteParticipant { .. }
            | ClientMessage::RemoveParticipant { .. }
            | ClientMessage::MakeHost { .. }
            | ClientMessage::LowerHand { .. }
    )
}

/// What a host's moderation message does, for the audit log.
fn audit_action(message: &ClientMessage) -> String {
    match message {
        ClientMessage::Admit { id } => format!("admit lobby entry {id}"),
        ClientMessage::Deny { id } => format!("deny lobby entry {id}"),
        ClientMessage::Lock { locked: true } => "lock the meeting".into(),
        ClientMessage::Lock { locked: false } => "unlock the meeting".into(),
        ClientMessage::EndMeeting => "end the meeting for everyone".into(),
        ClientMessage::MuteParticipant { .. } => format!("mute: {}", compact(message)),
        ClientMessage::RemoveParticipant { .. } => format!("remove: {}", compact(message)),
        ClientMessage::MakeHost { .. } => format!("make host: {}", compact(message)),
        ClientMessage::LowerHand { .. } => format!("lower hand: {}", compact(message)),
        _ => compact(message),
    }
}

fn compact(message: &ClientMessage) -> String {
    serde_json::to_string(message).unwrap_or_default()
}

/// One line of the audit log (target `stoa::audit`): who did what in which room.
pub fn audit(actor: &str, room: &str, action: impl std::fmt::Display) {
    tracing::info!(target: "stoa::audit", actor, room, %action, "moderation");
}

async fn record_join(
    state: &AppState,
    meeting: Option<&Meeting>,
    user_id: Option<&str>,
    name: &str,
) -> Option<String> {
    let m = meeting?;
    match state
        .store
        .record_join(&m.id, user_id, name, unix_ms())
        .await
    {
        Ok(id) => Some(id),
        Err(e) => {
            tracing::warn!(error = %e, "cannot record joining the meeting");
            None
        }
    }
}

/// Waits for a valid `join`; answers anything else with a fatal error.
async fn authenticate(
    socket: &mut WebSocket,
    state: &AppState,
    host: Option<&str>,
) -> Option<JoinRequest> {
    let token = match first_join_token(socket).await {
        Ok(token) => token,
        Err((code, message)) => {
            fail(socket, code, &message).await;
            return None;
        }
    };
    let claims = match state.keys.verify(&token, None) {
        Ok(c) => c,
        Err(e) => {
            fail(socket, ErrorCode::Unauthorized, &e.to_string()).await;
            return None;
        }
    };
    let room = stoa_proto::RoomName::new(claims.room).ok()?;
    let ice_servers = state.ice.servers(host, &claims.sub);
    Some(JoinRequest {
        room,
        identity: claims.sub,
        name: claims.name,
        grants: claims.grants,
        kind: ParticipantKind::Interactive,
        ice_servers,
        lobby: false,
        meeting: None,
    })
}

/// The token of the first message, which must be a `join` sent within the join timeout.
async fn first_join_token(socket: &mut WebSocket) -> Result<String, (ErrorCode, String)> {
    let not_join = || {
        (
            ErrorCode::Unauthorized,
            "the first message must be join".to_string(),
        )
    };
    let text = match tokio::time::timeout(JOIN_TIMEOUT, socket.recv()).await {
        Ok(Some(Ok(Message::Text(t)))) => t,
        _ => return Err(not_join()),
    };
    match serde_json::from_str::<ClientMessage>(&text) {
        Ok(ClientMessage::Join { token }) => Ok(token),
        Ok(_) => Err(not_join()),
        Err(e) => Err((ErrorCode::BadMessage, format!("unreadable message: {e}"))),
    }
}

async fn fail(socket: &mut WebSocket, code: ErrorCode, message: &str) {
    let msg = ServerMessage::Error {
        code,
        message: message.into(),
        fatal: true,
    };
    send(socket, &msg).await;
    close(socket, 4001, message).await;
}

/// Ends the WebSocket with a closing handshake: sends Close, then reads (and drops) what the
/// client still sends until its Close arrives. Dropping the socket with the client's last
/// frames unread would make the kernel reset the connection, which browsers report as an
/// interrupted connection rather than a closed one.
async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.to_string().into(),
    };
    if !matches!(
        tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Close(Some(frame)))).await,
        Ok(Ok(()))
    ) {
        return;
    }
    let drain = async {
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, drain).await;
}

/// Sends one message; `false` if the connection failed or the client stopped reading.
async fn send(socket: &mut WebSocket, message: &ServerMessage) -> bool {
    let json = serde_json::to_string(message).expect("server messages always serialize");
    match tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(json.into()))).await {
        Ok(result) => result.is_ok(),
        Err(_) => {
            tracing::info!("signaling client does not read; closing");
            false
        }
    }
}
