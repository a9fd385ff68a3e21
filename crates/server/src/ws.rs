//! One WebSocket signaling session: authenticate with `join`, then relay typed messages
//! between the client and the media worker until either side ends it.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use stoa_proto::{ClientMessage, ErrorCode, ServerMessage};
use stoa_sfu::{JoinRequest, ParticipantKind};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::http::AppState;
use crate::media::Command;

/// A client must send `join` this soon after connecting.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// A client silent this long (no message, no ping) is gone.
const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
const MAX_MESSAGE: usize = 256 * 1024;

pub async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    ws.max_message_size(MAX_MESSAGE)
        .on_upgrade(move |socket| session(socket, state, host))
}

async fn session(mut socket: WebSocket, state: AppState, host: Option<String>) {
    let Some(req) = authenticate(&mut socket, &state, host.as_deref()).await else {
        return;
    };
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let Some(id) = state.media.join(req, events_tx).await else {
        return;
    };
    tracing::info!(participant = %id, "signaling session started");
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
                    Ok(message) => state.media.send(Command::Message { id, message }),
                    Err(e) => {
                        send(&mut socket, &ServerMessage::error(ErrorCode::BadMessage, format!("unreadable message: {e}"))).await;
                    }
                }
            }
            event = events.recv() => match event {
                Some(message) => {
                    let fatal = matches!(message, ServerMessage::Error { fatal: true, .. });
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
    state.media.send(Command::Leave { id });
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: 1000,
            reason: "bye".into(),
        })))
        .await;
    tracing::info!(participant = %id, "signaling session ended");
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
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: 4001,
            reason: message.to_string().into(),
        })))
        .await;
}

async fn send(socket: &mut WebSocket, message: &ServerMessage) -> bool {
    let json = serde_json::to_string(message).expect("server messages always serialize");
    socket.send(Message::Text(json.into())).await.is_ok()
}
