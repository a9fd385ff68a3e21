//! Who is online and who is in a call, kept in memory per user, and the per-user event
//! feed (`/api/v1/events`) that carries presence changes, rings and contact changes.
//!
//! A user is online while any of their app pages holds the event feed open, and in a
//! meeting while any of their call sessions runs. Changes are pushed to their contacts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use stoa_store::{Page, Store};
use tokio::sync::mpsc;
use utoipa::ToSchema;

use crate::api::UserOut;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PresenceState {
    Offline,
    Online,
    InMeeting,
}

/// One message of the event feed.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum UserEvent {
    Presence {
        user_id: String,
        presence: PresenceState,
    },
    /// A contact is calling: join `url` to answer.
    Ring {
        from: UserOut,
        meeting_id: String,
        room: String,
        url: String,
    },
    /// Contacts or requests changed; reload them.
    ContactsChanged,
    /// Someone asked to become a contact (also followed by `ContactsChanged`).
    ContactRequest { from: UserOut },
    /// An invitee declined the call of meeting `meeting_id` (sent to its host).
    CallDeclined {
        by: UserOut,
        meeting_id: String,
        room: String,
    },
}

#[derive(Default)]
struct Entry {
    calls: usize,
    feeds: Vec<(u64, mpsc::UnboundedSender<UserEvent>)>,
}

impl Entry {
    fn state(&self) -> PresenceState {
        match (self.calls, self.feeds.len()) {
            (0, 0) => PresenceState::Offline,
            (0, _) => PresenceState::Online,
            _ => PresenceState::InMeeting,
        }
    }
}

/// Contacts notified of a change at most (a user with more sees the rest on reload).
const MAX_NOTIFIED_CONTACTS: i64 = 1000;

#[derive(Default)]
pub struct Presence {
    users: Mutex<HashMap<String, Entry>>,
    next_feed: AtomicU64,
}

impl Presence {
    pub fn state(&self, user_id: &str) -> PresenceState {
        self.users
            .lock()
            .expect("presence lock")
            .get(user_id)
            .map_or(PresenceState::Offline, Entry::state)
    }

    /// Sends an event to every open feed of a user.
    pub fn notify(&self, user_id: &str, event: UserEvent) {
        if let Some(entry) = self.users.lock().expect("presence lock").get(user_id) {
            for (_, feed) in &entry.feeds {
                let _ = feed.send(event.clone());
            }
        }
    }

    /// Opens a feed; returns its key for [`Presence::close_feed`].
    pub fn open_feed(&self, user_id: &str, feed: mpsc::UnboundedSender<UserEvent>) -> (u64, bool) {
        let key = self.next_feed.fetch_add(1, Ordering::Relaxed);
        let changed = self.update(user_id, |e| e.feeds.push((key, feed)));
        (key, changed)
    }

    pub fn close_feed(&self, user_id: &str, key: u64) -> bool {
        self.update(user_id, |e| e.feeds.retain(|(k, _)| *k != key))
    }

    pub fn call_joined(&self, user_id: &str) -> bool {
        self.update(user_id, |e| e.calls += 1)
    }

    pub fn call_left(&self, user_id: &str) -> bool {
        self.update(user_id, |e| e.calls = e.calls.saturating_sub(1))
    }

    /// Applies a change; returns whether the user's presence changed.
    fn update(&self, user_id: &str, change: impl FnOnce(&mut Entry)) -> bool {
        let mut users = self.users.lock().expect("presence lock");
        let entry = users.entry(user_id.to_string()).or_default();
        let before = entry.state();
        change(entry);
        let after = entry.state();
        if after == PresenceState::Offline {
            users.remove(user_id);
        }
        before != after
    }

    /// Tells the user's contacts their current presence (in the background).
    pub fn announce(self: &Arc<Self>, store: Arc<dyn Store>, user_id: String) {
        let presence = self.clone();
        tokio::spawn(async move {
            let page = Page {
                limit: MAX_NOTIFIED_CONTACTS,
                offset: 0,
            };
            let contacts = match store.contacts(&user_id, page).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot load contacts to announce presence");
                    return;
                }
            };
            let event = UserEvent::Presence {
                presence: presence.state(&user_id),
                user_id,
            };
            for c in contacts {
                presence.notify(&c.id, event.clone());
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_follows_feeds_and_calls() {
        let p = Presence::default();
        assert_eq!(p.state("u"), PresenceState::Offline);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (key, changed) = p.open_feed("u", tx);
        assert!(changed);
        assert_eq!(p.state("u"), PresenceState::Online);
        assert!(p.call_joined("u"));
        assert!(!p.call_joined("u"), "a second call changes nothing");
        assert_eq!(p.state("u"), PresenceState::InMeeting);
        p.notify("u", UserEvent::ContactsChanged);
        assert!(matches!(rx.try_recv(), Ok(UserEvent::ContactsChanged)));
        assert!(!p.call_left("u"));
        assert!(p.call_left("u"));
        assert!(p.close_feed("u", key));
        assert_eq!(p.state("u"), PresenceState::Offline);
        assert!(
            p.users.lock().unwrap().is_empty(),
            "no state kept for offline users"
        );
    }
}
