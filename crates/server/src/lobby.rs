//! The door of live meetings: who waits in a meeting's lobby, which call sessions are
//! hosts (they see the lobby and decide), and room-wide notices such as a lock, the end of
//! the meeting for everyone, or (to those waiting) whether a host is there.
//!
//! Call sessions register here with their own notice channel, separate from the media
//! worker's, so that a session still ends when the media worker drops it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use stoa_proto::{LobbyEntry, ServerMessage};
use tokio::sync::{mpsc, oneshot};

type Notices = mpsc::UnboundedSender<ServerMessage>;

struct Waiter {
    entry: LobbyEntry,
    decide: oneshot::Sender<bool>,
    notices: Notices,
}

#[derive(Default)]
struct Door {
    /// Call sessions in the room: key, notice channel, whether a host.
    members: Vec<(u64, Notices, bool)>,
    waiting: Vec<Waiter>,
}

impl Door {
    fn waiting_list(&self) -> ServerMessage {
        ServerMessage::LobbyUpdate {
            waiting: self.waiting.iter().map(|w| w.entry.clone()).collect(),
        }
    }

    fn tell_hosts(&self) {
        let update = self.waiting_list();
        for (_, notices, _) in self.members.iter().filter(|m| m.2) {
            let _ = notices.send(update.clone());
        }
    }

    fn has_host(&self) -> bool {
        self.members.iter().any(|m| m.2)
    }

    /// Tells everyone waiting whether a host is there to let them in.
    fn tell_waiters(&self) {
        let present = self.has_host();
        for w in &self.waiting {
            let _ = w.notices.send(ServerMessage::LobbyHost { present });
        }
    }

    fn is_empty(&self) -> bool {
        self.members.is_empty() && self.waiting.is_empty()
    }
}

#[derive(Default)]
pub struct Lobbies {
    rooms: Mutex<HashMap<String, Door>>,
    next: AtomicU64,
}

impl Lobbies {
    fn with_door<R>(&self, room: &str, f: impl FnOnce(&mut Door) -> R) -> R {
        let mut rooms = self.rooms.lock().expect("lobby lock");
        let door = rooms.entry(room.to_string()).or_default();
        let result = f(door);
        if door.is_empty() {
            rooms.remove(room);
        }
        result
    }

    /// Puts someone in the lobby; the receiver says whether a host admitted them. `notices`
    /// hears at once, and on every change, whether a host is there (`lobby_host`), and a
    /// meeting ended for everyone.
    pub fn wait(
        &self,
        room: &str,
        name: &str,
        notices: Notices,
    ) -> (String, oneshot::Receiver<bool>) {
        let id = format!("l{}", self.next.fetch_add(1, Ordering::Relaxed));
        let (decide, decision) = oneshot::channel();
        let entry = LobbyEntry {
            id: id.clone(),
            name: name.to_string(),
        };
        self.with_door(room, |door| {
            let _ = notices.send(ServerMessage::LobbyHost {
                present: door.has_host(),
            });
            door.waiting.push(Waiter {
                entry,
                decide,
                notices,
            });
            door.tell_hosts();
        });
        (id, decision)
    }

    /// Someone left the lobby without a decision.
    pub fn stop_waiting(&self, room: &str, id: &str) {
        self.with_door(room, |door| {
            let before = door.waiting.len();
            door.waiting.retain(|w| w.entry.id != id);
            if door.waiting.len() != before {
                door.tell_hosts();
            }
        });
    }

    /// A host admits (`true`) or denies someone waiting; `false` if nobody has that id.
    pub fn decide(&self, room: &str, id: &str, admit: bool) -> bool {
        self.with_door(room, |door| {
            let Some(i) = door.waiting.iter().position(|w| w.entry.id == id) else {
                return false;
            };
            let waiter = door.waiting.remove(i);
            let _ = waiter.decide.send(admit);
            door.tell_hosts();
            true
        })
    }

    /// Registers a call session; hosts get the lobby list at once. Returns its key.
    pub fn attend(&self, room: &str, notices: Notices, host: bool) -> u64 {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        self.with_door(room, |door| {
            let first_host = host && !door.has_host();
            if host {
                let _ = notices.send(door.waiting_list());
            }
            door.members.push((key, notices, host));
            if first_host {
                door.tell_waiters();
            }
        });
        key
    }

    /// A call session became a host during the call: it gets the lobby list, and those
    /// waiting hear that a host is there if none was.
    pub fn make_host(&self, room: &str, key: u64) {
        self.with_door(room, |door| {
            let first_host = !door.has_host();
            let list = door.waiting_list();
            let Some(member) = door.members.iter_mut().find(|m| m.0 == key) else {
                return;
            };
            member.2 = true;
            let _ = member.1.send(list);
            if first_host {
                door.tell_waiters();
            }
        });
    }

    pub fn depart(&self, room: &str, key: u64) {
        self.with_door(room, |door| {
            let had_host = door.has_host();
            door.members.retain(|m| m.0 != key);
            if had_host && !door.has_host() {
                door.tell_waiters();
            }
        });
    }

    /// A host ended the meeting: everyone in it and in its lobby gets a fatal `ended` error
    /// (their sessions end when they see it).
    pub fn end(&self, room: &str) {
        let ended = ServerMessage::Error {
            code: stoa_proto::ErrorCode::Ended,
            message: "the host ended the meeting for everyone".into(),
            fatal: true,
        };
        self.with_door(room, |door| {
            let members = door.members.iter().map(|m| &m.1);
            for notices in members.chain(door.waiting.iter().map(|w| &w.notices)) {
                let _ = notices.send(ended.clone());
            }
        });
    }

    /// Tells everyone in the room that it was locked or unlocked.
    pub fn announce_lock(&self, room: &str, locked: bool) {
        self.with_door(room, |door| {
            for (_, notices, _) in &door.members {
                let _ = notices.send(ServerMessage::Locked { locked });
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_see_the_lobby_and_decide() {
        let lobbies = Lobbies::default();
        let (host_tx, mut host_rx) = mpsc::unbounded_channel();
        let host = lobbies.attend("r", host_tx, true);
        assert_eq!(
            host_rx.try_recv().unwrap(),
            ServerMessage::LobbyUpdate { waiting: vec![] }
        );
        let (bob_tx, mut bob_rx) = mpsc::unbounded_channel();
        let (id, mut decision) = lobbies.wait("r", "Bob", bob_tx);
        assert_eq!(
            bob_rx.try_recv().unwrap(),
            ServerMessage::LobbyHost { present: true }
        );
        match host_rx.try_recv().unwrap() {
            ServerMessage::LobbyUpdate { waiting } => assert_eq!(waiting[0].name, "Bob"),
            other => panic!("{other:?}"),
        }
        assert!(!lobbies.decide("r", "l999", true));
        assert!(lobbies.decide("r", &id, true));
        assert_eq!(decision.try_recv(), Ok(true));
        let (guest_tx, mut guest_rx) = mpsc::unbounded_channel();
        let guest = lobbies.attend("r", guest_tx, false);
        lobbies.announce_lock("r", true);
        assert_eq!(
            guest_rx.try_recv().unwrap(),
            ServerMessage::Locked { locked: true }
        );
        lobbies.depart("r", host);
        lobbies.depart("r", guest);
        assert!(lobbies.rooms.lock().unwrap().is_empty());
    }

    #[test]
    fn a_participant_made_host_sees_the_lobby_and_the_lobby_hears_of_it() {
        let lobbies = Lobbies::default();
        let (guest_tx, mut guest_rx) = mpsc::unbounded_channel();
        let guest = lobbies.attend("r", guest_tx, false);
        let (ann_tx, mut ann_rx) = mpsc::unbounded_channel();
        let (id, mut decision) = lobbies.wait("r", "Ann", ann_tx);
        assert_eq!(
            ann_rx.try_recv(),
            Ok(ServerMessage::LobbyHost { present: false })
        );
        assert!(guest_rx.try_recv().is_err(), "not a host: no lobby list");
        lobbies.make_host("r", guest);
        match guest_rx.try_recv() {
            Ok(ServerMessage::LobbyUpdate { waiting }) => assert_eq!(waiting[0].name, "Ann"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            ann_rx.try_recv(),
            Ok(ServerMessage::LobbyHost { present: true })
        );
        assert!(lobbies.decide("r", &id, true));
        assert_eq!(decision.try_recv(), Ok(true));
        lobbies.depart("r", guest);
    }

    #[test]
    fn the_lobby_hears_when_the_host_leaves_and_when_the_meeting_ends() {
        let lobbies = Lobbies::default();
        let (host_tx, _host_rx) = mpsc::unbounded_channel();
        let host = lobbies.attend("r", host_tx, true);
        let (guest_tx, mut guest_rx) = mpsc::unbounded_channel();
        let guest = lobbies.attend("r", guest_tx, false);
        let (ann_tx, mut ann_rx) = mpsc::unbounded_channel();
        let (_id, _decision) = lobbies.wait("r", "Ann", ann_tx);
        assert_eq!(
            ann_rx.try_recv(),
            Ok(ServerMessage::LobbyHost { present: true })
        );
        lobbies.depart("r", host);
        assert_eq!(
            ann_rx.try_recv(),
            Ok(ServerMessage::LobbyHost { present: false })
        );
        let (again_tx, _again_rx) = mpsc::unbounded_channel();
        let host = lobbies.attend("r", again_tx, true);
        assert_eq!(
            ann_rx.try_recv(),
            Ok(ServerMessage::LobbyHost { present: true })
        );
        lobbies.end("r");
        for rx in [&mut ann_rx, &mut guest_rx] {
            match rx.try_recv() {
                Ok(ServerMessage::Error { code, fatal, .. }) => {
                    assert_eq!((code, fatal), (stoa_proto::ErrorCode::Ended, true))
                }
                other => panic!("{other:?}"),
            }
        }
        lobbies.depart("r", host);
        lobbies.depart("r", guest);
    }
}
