//! Active-speaker detection with str0m peers that put RFC 6464 audio levels on their packets.

use std::time::Duration;

use stoa_proto::{ParticipantId, ServerMessage};
use stoa_testkit::SfuSim;

/// The participant of the last `active_speaker` message peer `i` received, if any came.
fn announced(sim: &SfuSim, i: usize) -> Option<Option<ParticipantId>> {
    sim.messages(i).iter().rev().find_map(|m| match m {
        ServerMessage::ActiveSpeaker { participant } => Some(*participant),
        _ => None,
    })
}

fn announcements(sim: &SfuSim, i: usize) -> usize {
    sim.messages(i)
        .iter()
        .filter(|m| matches!(m, ServerMessage::ActiveSpeaker { .. }))
        .count()
}

#[test]
fn the_loud_participant_is_announced_and_a_swap_moves_the_announcement() {
    let mut sim = SfuSim::new();
    let loud = sim.add_publisher("room", "loud");
    let quiet = sim.add_publisher("room", "quiet");
    sim.peer_mut(loud).audio_level = -20;
    sim.peer_mut(quiet).audio_level = -90;
    let loud_id = Some(sim.id(loud));
    let ok = sim.run_until(Duration::from_secs(5), |s| {
        announced(s, loud) == Some(loud_id) && announced(s, quiet) == Some(loud_id)
    });
    assert!(ok, "announced: {:?}", announced(&sim, quiet));

    // Steady levels: no flapping.
    let before = announcements(&sim, quiet);
    sim.run(Duration::from_secs(3));
    assert_eq!(announcements(&sim, quiet), before);

    // Swap: the other one speaks now.
    sim.peer_mut(loud).audio_level = -90;
    sim.peer_mut(quiet).audio_level = -25;
    let quiet_id = Some(sim.id(quiet));
    let ok = sim.run_until(Duration::from_secs(5), |s| {
        announced(s, loud) == Some(quiet_id) && announced(s, quiet) == Some(quiet_id)
    });
    assert!(ok, "announced: {:?}", announced(&sim, loud));

    // Silence is announced as nobody.
    sim.peer_mut(quiet).audio_level = -127;
    let ok = sim.run_until(Duration::from_secs(5), |s| announced(s, loud) == Some(None));
    assert!(ok, "announced: {:?}", announced(&sim, loud));
}

#[test]
fn a_slightly_louder_voice_does_not_take_over_and_a_latecomer_is_told() {
    let mut sim = SfuSim::new();
    let a = sim.add_publisher("room", "a");
    let b = sim.add_publisher("room", "b");
    sim.peer_mut(a).audio_level = -30;
    let a_id = Some(sim.id(a));
    assert!(sim.run_until(Duration::from_secs(5), |s| announced(s, b) == Some(a_id)));
    // Within the hysteresis margin, the current speaker keeps the floor.
    sim.peer_mut(b).audio_level = -27;
    sim.run(Duration::from_secs(3));
    assert_eq!(announced(&sim, b), Some(a_id));
    assert_eq!(announcements(&sim, b), 1);

    let late = sim.add_listener("room", "late");
    assert!(sim.run_until(Duration::from_secs(3), |s| announced(s, late) == Some(a_id)));
}
