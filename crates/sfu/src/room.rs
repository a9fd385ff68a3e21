//! What belongs to a room rather than to one participant: its lobby (who waits to be let in,
//! and whether a host is there to do it), whether it is locked, ending it for everyone, and
//! what people show the room: raised hands and passing reactions.
//!
//! Host rights are the participants' `room_admin` grant, and every host action is checked
//! here or in `moderation.rs` against it: admitting, denying, locking and ending as muting,
//! removing and making hosts. Someone in the lobby has a participant id (their signaling
//! session is already attached) but no WebRTC session until a host admits them; then they
//! join like anyone else. Storing the lock is the driver's job ([`Output::LockChanged`]).

use std::time::{Duration, Instant};

use stoa_proto::{ErrorCode, LobbyEntry, ParticipantId, RoomName, ServerMessage};

use crate::{JoinRequest, Output, Sfu, SfuError};

/// The shortest time between two reactions of one participant.
const REACTION_INTERVAL: Duration = Duration::from_millis(250);

/// The room-wide state of one room, from the first person in it (or its lobby) to the last.
#[derive(Debug, Default)]
pub(crate) struct Room {
    /// People waiting to be let in, in order of arrival.
    waiting: Vec<Waiter>,
    /// The stored meeting the room belongs to, if any: only such a room can be locked.
    meeting_id: Option<String>,
    locked: bool,
}

#[derive(Debug)]
struct Waiter {
    id: ParticipantId,
    request: JoinRequest,
}

/// A stored meeting as the door saw it when someone entered its room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingRef {
    pub id: String,
    pub locked: bool,
}

impl Room {
    fn entries(&self) -> Vec<LobbyEntry> {
        self.waiting
            .iter()
            .map(|w| LobbyEntry {
                id: w.id.to_string(),
                name: w.request.name.clone(),
            })
            .collect()
    }

    fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

impl Sfu {
    /// Puts `req`'s person in the room's lobby under `id`: they hear at once whether a host is
    /// there, and the hosts see them.
    pub(crate) fn wait(&mut self, id: ParticipantId, req: JoinRequest) {
        let room = req.room.clone();
        self.note_meeting(&req);
        self.push_signal(id, ServerMessage::Lobby);
        let present = self.has_host(&room);
        self.push_signal(id, ServerMessage::LobbyHost { present });
        self.room_state(&room)
            .waiting
            .push(Waiter { id, request: req });
        self.tell_hosts(&room);
    }

    /// Remembers the stored meeting of the room from the first request that names it.
    pub(crate) fn note_meeting(&mut self, req: &JoinRequest) {
        let Some(meeting) = &req.meeting else {
            return;
        };
        let state = self.room_state(&req.room);
        if state.meeting_id.is_none() {
            state.meeting_id = Some(meeting.id.clone());
            state.locked = meeting.locked;
        }
    }

    /// Whether `id` waits in a lobby (a participant in a call never does).
    pub(crate) fn is_waiting(&self, id: ParticipantId) -> bool {
        !self.participants.contains_key(&id) && self.room_of_waiter(id).is_some()
    }

    /// Someone left the lobby without a decision.
    pub(crate) fn stop_waiting(&mut self, id: ParticipantId) {
        let Some(room) = self.room_of_waiter(id) else {
            return;
        };
        if let Some(state) = self.rooms_state.get_mut(&room) {
            state.waiting.retain(|w| w.id != id);
        }
        self.tell_hosts(&room);
        self.forget_if_unused(&room);
    }

    /// A message from someone in the lobby: only pings and leaving mean anything there.
    pub(crate) fn lobby_message(
        &mut self,
        now: Instant,
        id: ParticipantId,
        message: &stoa_proto::ClientMessage,
    ) -> Result<(), SfuError> {
        match message {
            stoa_proto::ClientMessage::Ping => {
                self.push_signal(id, ServerMessage::Pong);
                Ok(())
            }
            stoa_proto::ClientMessage::Leave => {
                self.leave(now, id);
                Ok(())
            }
            _ => Err(SfuError::OutOfOrder("waiting in the lobby")),
        }
    }

    /// A host's decision about someone waiting: admitted, they join the room now; denied,
    /// they are told so (and their session ends).
    pub(crate) fn decide(
        &mut self,
        now: Instant,
        by: ParticipantId,
        waiter: &str,
        admit: bool,
    ) -> Result<(), SfuError> {
        let room = self.host_room(by)?;
        let state = self.room_state(&room);
        let Some(i) = state
            .waiting
            .iter()
            .position(|w| w.id.to_string() == waiter)
        else {
            return Err(SfuError::BadRequest("no such lobby entry".into()));
        };
        let Waiter { id, request } = state.waiting.remove(i);
        tracing::info!(host = %by, participant = %id, admit, "lobby decision");
        self.tell_hosts(&room);
        if admit {
            self.enter(now, id, request);
        } else {
            self.push_signal(
                id,
                ServerMessage::Error {
                    code: ErrorCode::Denied,
                    message: "the host did not let you in".into(),
                    fatal: true,
                },
            );
        }
        Ok(())
    }

    /// A host locks or unlocks the meeting: everyone in it hears so, and the driver stores it.
    pub(crate) fn lock_by_host(&mut self, by: ParticipantId, locked: bool) -> Result<(), SfuError> {
        let room = self.host_room(by)?;
        let Some(meeting_id) = self.room_state(&room).meeting_id.clone() else {
            return Err(SfuError::BadRequest(
                "only a scheduled or signed-in meeting can be locked".into(),
            ));
        };
        self.set_locked(&room, locked);
        self.outputs
            .push_back(Output::LockChanged { meeting_id, locked });
        Ok(())
    }

    /// The meeting was locked or unlocked (by a host in the call, or through the API).
    pub fn set_locked(&mut self, room: &RoomName, locked: bool) {
        let Some(state) = self.rooms_state.get_mut(room) else {
            return;
        };
        state.locked = locked;
        self.broadcast(room, None, ServerMessage::Locked { locked });
    }

    /// A host ends the meeting: everyone in it and in its lobby gets a fatal `ended` (their
    /// sessions end when they see it).
    pub(crate) fn end_by_host(&mut self, by: ParticipantId) -> Result<(), SfuError> {
        let room = self.host_room(by)?;
        tracing::info!(host = %by, %room, "meeting ended for everyone");
        let ended = ServerMessage::Error {
            code: ErrorCode::Ended,
            message: "the host ended the meeting for everyone".into(),
            fatal: true,
        };
        self.broadcast(&room, None, ended.clone());
        let waiting: Vec<ParticipantId> = self
            .room_state(&room)
            .waiting
            .iter()
            .map(|w| w.id)
            .collect();
        for id in waiting {
            self.push_signal(id, ended.clone());
        }
        Ok(())
    }

    /// Raises or lowers `id`'s hand; everyone in the room hears it.
    pub(crate) fn set_hand(&mut self, id: ParticipantId, raised: bool) -> Result<(), SfuError> {
        let p = self
            .participants
            .get_mut(&id)
            .ok_or(SfuError::UnknownParticipant)?;
        if p.hand_raised == raised {
            return Ok(());
        }
        p.hand_raised = raised;
        let room = p.room.clone();
        self.broadcast(
            &room,
            None,
            ServerMessage::HandRaised {
                participant: id,
                raised,
            },
        );
        Ok(())
    }

    /// A passing reaction from `id`, one of [`stoa_proto::REACTIONS`], at most one per 250 ms.
    pub(crate) fn react(
        &mut self,
        now: Instant,
        id: ParticipantId,
        emoji: &str,
    ) -> Result<(), SfuError> {
        if !stoa_proto::REACTIONS.contains(&emoji) {
            return Err(SfuError::BadRequest(format!(
                "a reaction is one of {}",
                stoa_proto::REACTIONS.join(" ")
            )));
        }
        let p = self
            .participants
            .get_mut(&id)
            .ok_or(SfuError::UnknownParticipant)?;
        if p.last_reaction.is_some_and(|t| now < t + REACTION_INTERVAL) {
            return Err(SfuError::BadRequest("reacting too fast".into()));
        }
        p.last_reaction = Some(now);
        let room = p.room.clone();
        let reaction = ServerMessage::Reaction {
            participant: id,
            emoji: emoji.to_string(),
        };
        self.broadcast(&room, None, reaction);
        Ok(())
    }

    /// After a participant joined: a host sees the lobby, those waiting hear a host is there,
    /// and everyone joining a locked meeting hears it is locked.
    pub(crate) fn after_join(&mut self, id: ParticipantId, room: &RoomName, host: bool) {
        let (locked, entries) = {
            let state = self.room_state(room);
            (state.locked, state.entries())
        };
        if locked {
            self.push_signal(id, ServerMessage::Locked { locked });
        }
        if host {
            self.push_signal(id, ServerMessage::LobbyUpdate { waiting: entries });
            if self.host_count(room) == 1 {
                self.tell_waiters(room);
            }
        }
    }

    /// After a participant became a host during the call.
    pub(crate) fn after_made_host(&mut self, id: ParticipantId, room: &RoomName) {
        let entries = self.room_state(room).entries();
        self.push_signal(id, ServerMessage::LobbyUpdate { waiting: entries });
        if self.host_count(room) == 1 {
            self.tell_waiters(room);
        }
    }

    /// After a participant left: if it was the last host, those waiting hear so.
    pub(crate) fn after_leave(&mut self, room: &RoomName, was_host: bool) {
        if was_host && !self.has_host(room) {
            self.tell_waiters(room);
        }
        self.forget_if_unused(room);
    }

    fn room_state(&mut self, room: &RoomName) -> &mut Room {
        self.rooms_state.entry(room.clone()).or_default()
    }

    fn forget_if_unused(&mut self, room: &RoomName) {
        let lobby_empty = self.rooms_state.get(room).is_none_or(Room::is_empty);
        if lobby_empty && !self.rooms.contains_key(room) {
            self.rooms_state.remove(room);
        }
    }

    fn room_of_waiter(&self, id: ParticipantId) -> Option<RoomName> {
        self.rooms_state
            .iter()
            .find(|(_, s)| s.waiting.iter().any(|w| w.id == id))
            .map(|(room, _)| room.clone())
    }

    /// The room of `by`, if it is a host there.
    fn host_room(&self, by: ParticipantId) -> Result<RoomName, SfuError> {
        let p = self
            .participants
            .get(&by)
            .ok_or(SfuError::UnknownParticipant)?;
        if !p.grants.room_admin {
            return Err(SfuError::Forbidden("only a host can do this"));
        }
        Ok(p.room.clone())
    }

    fn host_count(&self, room: &RoomName) -> usize {
        self.room_members(room)
            .filter(|p| p.grants.room_admin)
            .count()
    }

    fn has_host(&self, room: &RoomName) -> bool {
        self.host_count(room) > 0
    }

    fn tell_hosts(&mut self, room: &RoomName) {
        let update = ServerMessage::LobbyUpdate {
            waiting: self.room_state(room).entries(),
        };
        let hosts: Vec<ParticipantId> = self
            .room_members(room)
            .filter(|p| p.grants.room_admin)
            .map(|p| p.id)
            .collect();
        for host in hosts {
            self.signal(host, update.clone());
        }
    }

    fn tell_waiters(&mut self, room: &RoomName) {
        let present = self.has_host(room);
        let waiting: Vec<ParticipantId> =
            self.room_state(room).waiting.iter().map(|w| w.id).collect();
        for id in waiting {
            self.push_signal(id, ServerMessage::LobbyHost { present });
        }
    }

    /// A signal to someone who may not be a participant yet (the lobby).
    fn push_signal(&mut self, to: ParticipantId, message: ServerMessage) {
        self.outputs.push_back(Output::Signal { to, message });
    }
}
