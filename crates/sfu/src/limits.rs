//! Bitrate limits and priorities that layer selection obeys, in the manner of Kurento's
//! `maxVideoSendBandwidth`/`minVideoSendBandwidth`: per room, a ceiling and a floor for each
//! forwarded video track; per publisher, a ceiling for its tracks and a priority among a
//! subscriber's tracks. A room's limits start from [`SfuConfig::room_limits`](crate::SfuConfig)
//! and return to it when the room empties. [`crate::simulcast::allocate`] applies them.

use stoa_proto::{ParticipantId, RoomName};

use crate::{Sfu, SfuError};

/// Video bitrate limits of a room, per forwarded video track, in bits/s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoomLimits {
    /// No subscriber gets a layer of a track costing more than this (the lowest layer is
    /// always allowed). `None`: unlimited.
    pub max_video_bitrate_bps: Option<u64>,
    /// When bandwidth is short, each track is first raised to the lowest layer costing at
    /// least this (if the budget allows) before any track is raised further. `None`: no floor.
    pub min_video_bitrate_bps: Option<u64>,
}

/// Limits of one participant as a publisher.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParticipantLimits {
    /// Ceiling for the layers of its video tracks that anyone receives, bits/s.
    pub max_video_bitrate_bps: Option<u64>,
    /// Its tracks are raised before those of lower priority (after screen shares).
    pub priority: u8,
}

/// The lower of two optional ceilings.
pub(crate) fn tighter(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        _ => a.or(b),
    }
}

impl Sfu {
    /// Sets a room's limits; they apply from the next allocation on.
    pub fn set_room_limits(&mut self, room: &RoomName, limits: RoomLimits) -> Result<(), SfuError> {
        if !self.rooms.contains_key(room) {
            return Err(SfuError::UnknownRoom);
        }
        self.room_limits.insert(room.clone(), limits);
        Ok(())
    }

    /// A room's limits, `None` if nobody is in it.
    pub fn room_limits(&self, room: &RoomName) -> Option<RoomLimits> {
        self.rooms.contains_key(room).then(|| {
            self.room_limits
                .get(room)
                .copied()
                .unwrap_or(self.config.room_limits)
        })
    }

    /// Sets the limits, as a publisher, of participant `id` of `room`.
    pub fn set_participant_limits(
        &mut self,
        room: &RoomName,
        id: ParticipantId,
        limits: ParticipantLimits,
    ) -> Result<(), SfuError> {
        let p = self
            .participants
            .get_mut(&id)
            .filter(|p| p.room == *room)
            .ok_or(SfuError::UnknownParticipant)?;
        p.limits = limits;
        Ok(())
    }

    /// A participant's limits as a publisher.
    pub fn participant_limits(&self, id: ParticipantId) -> Option<ParticipantLimits> {
        self.participants.get(&id).map(|p| p.limits)
    }
}
