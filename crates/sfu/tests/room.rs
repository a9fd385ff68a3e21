//! A room's lobby, lock and end, decided in the core: who waits, whether a host is there,
//! admitting and denying, locking a stored meeting, and ending it for everyone. Only hosts
//! (`room_admin`) may decide, whoever asks and however they joined.

use std::time::Duration;

use stoa_proto::{ClientMessage, ErrorCode, ServerMessage};
use stoa_sfu::MeetingRef;
use stoa_testkit::SfuSim;

fn last_lobby(sim: &SfuSim, i: usize) -> Option<Vec<String>> {
    sim.messages(i).iter().rev().find_map(|m| match m {
        ServerMessage::LobbyUpdate { waiting } => {
            Some(waiting.iter().map(|w| w.name.clone()).collect())
        }
        _ => None,
    })
}

fn host_present(sim: &SfuSim, i: usize) -> Option<bool> {
    sim.messages(i).iter().rev().find_map(|m| match m {
        ServerMessage::LobbyHost { present } => Some(*present),
        _ => None,
    })
}

fn error(sim: &SfuSim, i: usize) -> Option<(ErrorCode, bool)> {
    sim.messages(i).iter().rev().find_map(|m| match m {
        ServerMessage::Error { code, fatal, .. } => Some((*code, *fatal)),
        _ => None,
    })
}

fn joined(sim: &SfuSim, i: usize) -> bool {
    sim.messages(i)
        .iter()
        .any(|m| matches!(m, ServerMessage::Joined { .. }))
}

#[test]
fn hosts_admit_and_deny_those_waiting_and_the_lobby_hears_whether_a_host_is_there() {
    let mut sim = SfuSim::new();
    let ann = sim.add_lobby_guest("room", "ann");
    assert!(matches!(
        sim.messages(ann).first(),
        Some(ServerMessage::Lobby)
    ));
    assert_eq!(host_present(&sim, ann), Some(false));
    assert!(!joined(&sim, ann));
    // Nothing but pings and leaving from the lobby.
    sim.client_message(ann, ClientMessage::Chat { text: "hi".into() });
    assert_eq!(error(&sim, ann), Some((ErrorCode::OutOfOrder, false)));

    let host = sim.add_host("room", "host");
    assert_eq!(last_lobby(&sim, host), Some(vec!["ann".to_string()]));
    assert_eq!(host_present(&sim, ann), Some(true));

    // A guest in the call cannot decide.
    let guest = sim.add_publisher("room", "guest");
    let ann_id = sim.id(ann).to_string();
    sim.client_message(guest, ClientMessage::Admit { id: ann_id.clone() });
    assert_eq!(error(&sim, guest), Some((ErrorCode::Forbidden, false)));
    assert!(!joined(&sim, ann));

    sim.client_message(host, ClientMessage::Admit { id: ann_id });
    assert!(joined(&sim, ann), "admitted: in the call");
    assert_eq!(last_lobby(&sim, host), Some(vec![]));

    let bob = sim.add_lobby_guest("room", "bob");
    assert_eq!(last_lobby(&sim, host), Some(vec!["bob".to_string()]));
    let bob_id = sim.id(bob).to_string();
    sim.client_message(host, ClientMessage::Deny { id: bob_id.clone() });
    assert_eq!(error(&sim, bob), Some((ErrorCode::Denied, true)));
    assert!(!joined(&sim, bob));
    sim.client_message(host, ClientMessage::Admit { id: bob_id });
    assert_eq!(
        error(&sim, host),
        Some((ErrorCode::BadMessage, false)),
        "decided once"
    );

    // Someone who gives up waiting leaves the hosts' list.
    let cat = sim.add_lobby_guest("room", "cat");
    assert_eq!(last_lobby(&sim, host), Some(vec!["cat".to_string()]));
    sim.client_message(cat, ClientMessage::Leave);
    assert_eq!(last_lobby(&sim, host), Some(vec![]));

    // The only host leaves: those waiting hear so; a participant made host brings word back.
    let dan = sim.add_lobby_guest("room", "dan");
    sim.leave(host);
    assert_eq!(host_present(&sim, dan), Some(false));
    let now_host = sim.add_host("room", "second-host");
    sim.run(Duration::from_millis(100));
    let guest_id = sim.id(guest);
    sim.client_message(
        now_host,
        ClientMessage::MakeHost {
            participant: guest_id,
        },
    );
    assert_eq!(last_lobby(&sim, guest), Some(vec!["dan".to_string()]));
    assert_eq!(host_present(&sim, dan), Some(true));
}

#[test]
fn a_host_locks_a_stored_meeting_and_ends_it_for_everyone() {
    let mut sim = SfuSim::new();
    let host = sim.add_host("ad-hoc", "host");
    sim.client_message(host, ClientMessage::Lock { locked: true });
    assert_eq!(
        error(&sim, host),
        Some((ErrorCode::BadMessage, false)),
        "no stored meeting"
    );

    sim.meeting = Some(MeetingRef {
        id: "m1".into(),
        locked: false,
    });
    let host = sim.add_host("meeting", "host2");
    let guest = sim.add_publisher("meeting", "guest");
    sim.client_message(guest, ClientMessage::Lock { locked: true });
    assert_eq!(error(&sim, guest), Some((ErrorCode::Forbidden, false)));
    sim.client_message(host, ClientMessage::Lock { locked: true });
    assert_eq!(sim.locks, vec![("m1".to_string(), true)]);
    for i in [host, guest] {
        assert!(sim
            .messages(i)
            .contains(&ServerMessage::Locked { locked: true }));
    }
    // Joining a locked meeting (a host may): told at once.
    let late = sim.add_host("meeting", "late-host");
    assert!(sim
        .messages(late)
        .contains(&ServerMessage::Locked { locked: true }));

    let waiting = sim.add_lobby_guest("meeting", "waiting");
    sim.client_message(guest, ClientMessage::EndMeeting);
    assert_eq!(error(&sim, guest), Some((ErrorCode::Forbidden, false)));
    sim.client_message(host, ClientMessage::EndMeeting);
    for i in [host, guest, late, waiting] {
        assert_eq!(
            error(&sim, i),
            Some((ErrorCode::Ended, true)),
            "participant {i}"
        );
    }
}

#[test]
fn hands_go_up_and_down_and_reactions_reach_everyone() {
    let mut sim = SfuSim::new();
    let host = sim.add_host("room", "host");
    let ann = sim.add_publisher("room", "ann");
    let ann_id = sim.id(ann);
    sim.client_message(ann, ClientMessage::RaiseHand { raised: true });
    let raised = ServerMessage::HandRaised {
        participant: ann_id,
        raised: true,
    };
    for i in [host, ann] {
        assert!(sim.messages(i).contains(&raised), "participant {i}");
    }
    // Someone joining later sees the hand in the participant list.
    let late = sim.add_publisher("room", "late");
    let listed = sim.messages(late).iter().find_map(|m| match m {
        ServerMessage::Joined { participants, .. } => participants
            .iter()
            .find(|p| p.id == ann_id)
            .map(|p| p.hand_raised),
        _ => None,
    });
    assert_eq!(listed, Some(true));

    // Only a host lowers someone else's hand.
    sim.client_message(
        late,
        ClientMessage::LowerHand {
            participant: ann_id,
        },
    );
    assert_eq!(error(&sim, late), Some((ErrorCode::Forbidden, false)));
    sim.client_message(
        host,
        ClientMessage::LowerHand {
            participant: ann_id,
        },
    );
    let lowered = ServerMessage::HandRaised {
        participant: ann_id,
        raised: false,
    };
    assert!(sim.messages(ann).contains(&lowered));

    sim.client_message(
        ann,
        ClientMessage::React {
            emoji: "👏".into()
        },
    );
    let clap = ServerMessage::Reaction {
        participant: ann_id,
        emoji: "👏".into(),
    };
    for i in [host, ann, late] {
        assert!(sim.messages(i).contains(&clap), "participant {i}");
    }
    sim.client_message(
        ann,
        ClientMessage::React {
            emoji: "👍".into()
        },
    );
    assert_eq!(
        error(&sim, ann),
        Some((ErrorCode::BadMessage, false)),
        "too fast"
    );
    sim.run(Duration::from_millis(300));
    sim.client_message(
        ann,
        ClientMessage::React {
            emoji: "<script>".into(),
        },
    );
    assert_eq!(
        error(&sim, ann),
        Some((ErrorCode::BadMessage, false)),
        "not a reaction"
    );
    sim.client_message(
        ann,
        ClientMessage::React {
            emoji: "👍".into()
        },
    );
    assert!(sim.messages(host).contains(&ServerMessage::Reaction {
        participant: ann_id,
        emoji: "👍".into(),
    }));
}
