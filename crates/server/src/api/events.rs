//! `GET /api/v1/events`: a signed-in user's WebSocket feed of presence changes, rings and
//! contact changes. Holding it open is what makes the user "online".

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use stoa_store::Page;
use tokio::sync::mpsc;

use super::accounts::Authed;
use crate::http::AppState;
use crate::listener::ConnectionSlot;
use crate::presence::UserEvent;

/// A feed that sends nothing (not even a pong) this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// An event the client has not taken within this time ends the feed: it stopped reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn upgrade(
    State(state): State<AppState>,
    auth: Authed,
    slot: Option<Extension<ConnectionSlot>>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.max_message_size(4096)
        .on_upgrade(move |socket| async move {
            feed(socket, state, auth.user.id).await;
            drop(slot);
        })
}

async fn feed(mut socket: WebSocket, state: AppState, user_id: String) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (key, changed) = state.presence.open_feed(&user_id, tx.clone());
    if changed {
        state
            .presence
            .announce(state.store.clone(), user_id.clone());
    }
    send_contacts_presence(&state, &user_id, &tx).await;
    let mut ping = tokio::time::interval(Duration::from_secs(20));
    let mut last_heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            event = rx.recv() => {
                let Some(event) = event else { break };
                let json = serde_json::to_string(&event).expect("events serialize");
                let sent = tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(json.into()))).await;
                if !matches!(sent, Ok(Ok(()))) {
                    break;
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => last_heard = tokio::time::Instant::now(),
            },
            _ = ping.tick() => {
                let ping = tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Ping(Vec::new().into())));
                if last_heard.elapsed() > IDLE_TIMEOUT || !matches!(ping.await, Ok(Ok(()))) {
                    break;
                }
            }
        }
    }
    if state.presence.close_feed(&user_id, key) {
        state.presence.announce(state.store.clone(), user_id);
    }
}

/// The first messages of a feed: every contact's presence now.
async fn send_contacts_presence(
    state: &AppState,
    user_id: &str,
    tx: &mpsc::UnboundedSender<UserEvent>,
) {
    let page = Page {
        limit: 1000,
        offset: 0,
    };
    match state.store.contacts(user_id, page).await {
        Ok(contacts) => {
            for c in contacts {
                let _ = tx.send(UserEvent::Presence {
                    presence: state.presence.state(&c.id),
                    user_id: c.id,
                });
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot load contacts for the event feed"),
    }
}
