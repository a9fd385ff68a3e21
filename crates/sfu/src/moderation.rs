//! Host powers over other participants: muting and removing them, lowering their hands, and
//! making them hosts.
//! Only a participant with `room_admin` may use them (the lobby, lock and ending the meeting
//! are in `room.rs`, checked the same way).

use std::time::Instant;

use stoa_proto::{ErrorCode, ParticipantId, ServerMessage, TrackKind};

use crate::participant::Participant;
use crate::{CloseReason, ParticipantKind, Sfu, SfuError};

impl Sfu {
    /// The room's participant `target`, if `by` may moderate it.
    fn moderated(
        &mut self,
        by: ParticipantId,
        target: ParticipantId,
    ) -> Result<&mut Participant, SfuError> {
        let host = self
            .participants
            .get(&by)
            .ok_or(SfuError::UnknownParticipant)?;
        if !host.grants.room_admin {
            return Err(SfuError::Forbidden("only a host can do this"));
        }
        let room = host.room.clone();
        match self.participants.get_mut(&target) {
            Some(t) if t.room == room => Ok(t),
            _ => Err(SfuError::BadRequest(format!(
                "{target} is not in this meeting"
            ))),
        }
    }

    /// Mutes every audio track of `target` and drops its audio until it unmutes itself.
    pub(crate) fn mute_by_host(
        &mut self,
        by: ParticipantId,
        target: ParticipantId,
    ) -> Result<(), SfuError> {
        let p = self.moderated(by, target)?;
        let mut changed = Vec::new();
        for track in p.up.iter_mut().filter(|t| t.kind == TrackKind::Audio) {
            track.host_muted = true;
            if !track.muted {
                track.muted = true;
                changed.push(track.info(target));
            }
        }
        let room = p.room.clone();
        tracing::info!(host = %by, participant = %target, "muted by host");
        for track in changed {
            self.broadcast(&room, None, ServerMessage::TrackPublished { track });
        }
        self.signal(
            target,
            ServerMessage::MutedByHost {
                kind: TrackKind::Audio,
            },
        );
        Ok(())
    }

    /// Lowers `target`'s raised hand.
    pub(crate) fn lower_hand_by_host(
        &mut self,
        by: ParticipantId,
        target: ParticipantId,
    ) -> Result<(), SfuError> {
        self.moderated(by, target)?;
        self.set_hand(target, false)
    }

    /// Gives `target` the host's powers (`room_admin`) for the rest of its session and tells it
    /// with `grants`.
    pub(crate) fn make_host(
        &mut self,
        by: ParticipantId,
        target: ParticipantId,
    ) -> Result<(), SfuError> {
        let p = self.moderated(by, target)?;
        if p.kind != ParticipantKind::Interactive {
            return Err(SfuError::BadRequest(
                "a WHIP or WHEP session cannot be a host".into(),
            ));
        }
        if p.grants.room_admin {
            return Ok(());
        }
        p.grants.room_admin = true;
        let grants = p.grants;
        let room = p.room.clone();
        tracing::info!(host = %by, participant = %target, "made a host");
        self.signal(target, ServerMessage::Grants { grants });
        self.after_made_host(target, &room);
        Ok(())
    }

    /// Tells `target` it was removed, then removes it from the room.
    pub(crate) fn remove_by_host(
        &mut self,
        now: Instant,
        by: ParticipantId,
        target: ParticipantId,
    ) -> Result<(), SfuError> {
        if by == target {
            return Err(SfuError::BadRequest(
                "leave the meeting instead of removing yourself".into(),
            ));
        }
        self.moderated(by, target)?;
        tracing::info!(host = %by, participant = %target, "removed by host");
        self.signal(
            target,
            ServerMessage::Error {
                code: ErrorCode::Removed,
                message: "a host removed you from the meeting".into(),
                fatal: true,
            },
        );
        self.remove(now, target, Some(CloseReason::Removed));
        Ok(())
    }
}
