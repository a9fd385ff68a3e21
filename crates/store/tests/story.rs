//! The store's behaviour told as one story that runs on each backend (a fresh SQLite file
//! and a fresh PostgreSQL database), plus checks of atomic writes and of reopening a
//! SQLite file as a restarted server does.
//!
//! The PostgreSQL test needs a server: `STOA_TEST_POSTGRES_URL`, by default
//! `postgres://postgres@127.0.0.1:5432/postgres`. It fails when none answers.

use std::path::PathBuf;

use sqlx::migrate::MigrateDatabase;
use stoa_store::{
    connect, Conflict, MeetingDraft, Millis, NewUser, Page, Recurrence, RequestOutcome, Session,
    Store, StoreError, User, UserSummary,
};

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The story's clock: every time is an offset from here.
const T0: Millis = 1_700_000_000_000;

const ALL: Page = Page {
    limit: 100,
    offset: 0,
};

/// Asserts that `$result` is an `Err` matching `$pattern`, showing it otherwise.
macro_rules! assert_err {
    ($result:expr, $pattern:pat) => {
        match $result {
            Err($pattern) => {}
            other => panic!("expected {}, got {other:?}", stringify!($pattern)),
        }
    };
}

// ---- the tests

#[tokio::test]
async fn story_on_sqlite() {
    let dir = TempDir::new();
    let store = connect(&dir.sqlite_url()).await.expect("open SQLite");
    assert_eq!(store.backend(), "sqlite");
    let url = dir.sqlite_url();
    let path = url
        .trim_start_matches("sqlite://")
        .split('?')
        .next()
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode, 0o600,
        "the database file is readable by its owner only"
    );
    story(&store).await;
    store.close().await;
}

#[tokio::test]
async fn story_on_postgres() {
    sqlx::any::install_default_drivers();
    let server =
        std::env::var("STOA_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
    let url = with_database(&server, &format!("stoa_test_{}", random_hex()));
    sqlx::Any::create_database(&url).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is needed for this test and could not create a database: {e}. \
             Start a server or point STOA_TEST_POSTGRES_URL at one (default \
             {DEFAULT_POSTGRES_URL})"
        )
    });
    // Run in a task so that a failure still reaches the clean-up below.
    let run = tokio::spawn({
        let url = url.clone();
        async move {
            let store = connect(&url).await.expect("open PostgreSQL");
            assert_eq!(store.backend(), "postgres");
            story(&store).await;
            failed_writes_change_nothing(&store).await;
            store.close().await;
        }
    })
    .await;
    sqlx::Any::force_drop_database(&url)
        .await
        .expect("drop the test database");
    if let Err(e) = run {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test]
async fn failed_writes_change_nothing_on_sqlite() {
    let dir = TempDir::new();
    let store = connect(&dir.sqlite_url()).await.expect("open SQLite");
    failed_writes_change_nothing(&store).await;
    store.close().await;
}

#[tokio::test]
async fn sqlite_file_survives_a_restart() {
    let dir = TempDir::new();
    let first = connect(&dir.sqlite_url()).await.expect("create the file");
    let ann = new_user(&first, "ann@restart.test", "Ann").await;
    let meeting = first
        .create_meeting(&ann.id, "restart-room", draft("Stand-up", None), &[], T0)
        .await
        .unwrap();
    assert!(
        dir.path.join("stoa.db-wal").exists(),
        "SQLite runs in WAL mode"
    );
    first.close().await;

    // Migrations are already applied; the other URL form names the same file.
    let second = connect(&format!("sqlite:{}", dir.db_path().display()))
        .await
        .expect("reopen the file");
    assert_eq!(second.user(&ann.id).await.unwrap(), Some(ann));
    assert_eq!(
        second.meeting_by_room("restart-room").await.unwrap(),
        Some(meeting)
    );
    second.close().await;
}

#[tokio::test]
async fn rejects_an_unknown_url_scheme() {
    assert_err!(
        connect("mysql://localhost/stoa").await,
        StoreError::UnsupportedUrl(_)
    );
}

// ---- the story

async fn story(store: &dyn Store) {
    users_and_sessions(store).await;
    search(store).await;
    meetings(store).await;
    recurrence_ends_and_skips(store).await;
    attendance(store).await;
    contacts(store).await;
    blocks(store).await;
    account_deletion(store).await;
}

async fn users_and_sessions(store: &dyn Store) {
    let ann = store
        .create_user(
            NewUser {
                email: "Ann@Users.Test".into(),
                display_name: "Ann".into(),
                password_hash: "hash-1".into(),
            },
            T0,
        )
        .await
        .unwrap();
    assert_eq!(ann.email, "ann@users.test");
    assert_eq!(ann.created_at, T0);
    assert_eq!(ann.id.len(), 32);
    let bob = new_user(store, "bob@users.test", "Bob").await;
    assert_ne!(ann.id, bob.id);
    assert_err!(
        store
            .create_user(
                NewUser {
                    email: "ANN@users.TEST".into(),
                    display_name: "Other Ann".into(),
                    password_hash: "x".into(),
                },
                T0,
            )
            .await,
        StoreError::Conflict(Conflict::EmailTaken)
    );

    assert_eq!(store.user(&ann.id).await.unwrap(), Some(ann.clone()));
    assert_eq!(store.user("no-such-id").await.unwrap(), None);
    assert_eq!(
        store.user_by_email("ANN@USERS.test").await.unwrap(),
        Some(ann.clone())
    );
    assert_eq!(
        store.user_by_email("nobody@users.test").await.unwrap(),
        None
    );

    // Sessions live until `expires_at`.
    for (token, user, expires_at) in [
        ("ann-1", &ann, T0 + 1_000),
        ("ann-2", &ann, T0 + 1_000),
        ("ann-3", &ann, T0 + 10),
        ("bob-1", &bob, T0 + 1_000),
        ("bob-old", &bob, T0 + 5),
    ] {
        store
            .create_session(session(token, user, expires_at))
            .await
            .unwrap();
    }
    assert_eq!(
        store.session("ann-1", T0).await.unwrap(),
        Some(session("ann-1", &ann, T0 + 1_000))
    );
    assert!(store.session("ann-3", T0 + 9).await.unwrap().is_some());
    assert_eq!(store.session("ann-3", T0 + 10).await.unwrap(), None);
    assert_eq!(store.session("nothing", T0).await.unwrap(), None);
    assert_err!(
        store.create_session(session("ann-1", &ann, T0)).await,
        StoreError::Conflict(Conflict::SessionExists)
    );
    assert_err!(
        store
            .create_session(Session {
                token_hash: "ghost".into(),
                user_id: "no-such-user".into(),
                created_at: T0,
                expires_at: T0 + 1,
            })
            .await,
        StoreError::NotFound
    );

    // A new password keeps only the session it was set from.
    store
        .set_password(&ann.id, "hash-2", "ann-1")
        .await
        .unwrap();
    assert_eq!(
        store.user(&ann.id).await.unwrap().unwrap().password_hash,
        "hash-2"
    );
    assert!(store.session("ann-1", T0).await.unwrap().is_some());
    assert_eq!(store.session("ann-2", T0).await.unwrap(), None);
    assert_eq!(store.session("ann-3", T0).await.unwrap(), None);
    assert!(store.session("bob-1", T0).await.unwrap().is_some());
    assert_err!(
        store.set_password("no-such-user", "h", "ann-1").await,
        StoreError::NotFound
    );

    store.delete_session("ann-1").await.unwrap();
    assert_eq!(store.session("ann-1", T0).await.unwrap(), None);
    store.delete_session("ann-1").await.unwrap();

    assert_eq!(store.purge_sessions(T0 + 50).await.unwrap(), 1, "bob-old");
    assert!(store.session("bob-1", T0).await.unwrap().is_some());
    assert_eq!(store.purge_sessions(T0 + 50).await.unwrap(), 0);
}

async fn search(store: &dyn Store) {
    let viewer = new_user(store, "viewer@search.test", "Viewer Percent").await;
    let percent = new_user(store, "percy@search.test", "Percy 100% Real").await;
    let underscore = new_user(store, "under@search.test", "Under_Score").await;
    let backslash = new_user(store, "back@search.test", r"Back\Slash").await;
    let plain = new_user(store, "plain@search.test", "plain person").await;
    let blocker = new_user(store, "blocker@search.test", "Blocker Percent").await;
    let blocked_by_viewer = new_user(store, "shunned@search.test", "Shunned").await;
    store.block(&blocker.id, &viewer.id, T0).await.unwrap();
    store
        .block(&viewer.id, &blocked_by_viewer.id, T0)
        .await
        .unwrap();
    let find = |query: &'static str, page: Page| {
        let viewer = viewer.id.clone();
        async move { store.search_users(&viewer, query, page).await.unwrap() }
    };

    // Strangers are found by their exact address only, never by a fragment.
    assert!(find("search.test", ALL).await.is_empty());
    assert!(find("Plain", ALL).await.is_empty());
    assert_eq!(find(" Plain@Search.TEST ", ALL).await, [summary(&plain)]);
    // People the viewer shares a meeting with are found by a fragment too.
    let known = [&percent, &underscore, &backslash, &blocker].map(|u| u.id.clone());
    store
        .create_meeting(&viewer.id, "search-room", draft("Search", None), &known, T0)
        .await
        .unwrap();
    // Wildcards in the query are taken literally.
    assert_eq!(find("%", ALL).await, [summary(&percent)]);
    assert_eq!(find("_", ALL).await, [summary(&underscore)]);
    assert_eq!(find("\\", ALL).await, [summary(&backslash)]);
    // Display name and email, either case; never the viewer or whoever blocked them.
    assert!(find("PERCEN", ALL).await.is_empty());
    assert_eq!(find("PERC", ALL).await, [summary(&percent)]);
    let known = [&backslash, &percent, &underscore].map(summary);
    assert_eq!(find("search.test", ALL).await, known);
    let second_page = Page {
        limit: 2,
        offset: 1,
    };
    assert_eq!(find("search.test", second_page).await, known[1..3]);
    assert_eq!(
        store
            .search_users(&blocker.id, "viewer", ALL)
            .await
            .unwrap(),
        [summary(&viewer)],
        "a blocker still finds whom they blocked (they share a meeting)"
    );
    assert_eq!(
        store
            .search_users(&plain.id, "shunned@search.test", ALL)
            .await
            .unwrap(),
        [summary(&blocked_by_viewer)],
        "an exact address finds anyone who did not block the viewer"
    );
}

async fn meetings(store: &dyn Store) {
    let host = new_user(store, "host@meetings.test", "Host").await;
    let guest1 = new_user(store, "guest1@meetings.test", "Guest One").await;
    let guest2 = new_user(store, "guest2@meetings.test", "Guest Two").await;
    let outsider = new_user(store, "outsider@meetings.test", "Outsider").await;

    let scheduled = MeetingDraft {
        title: "Planning".into(),
        description: "Quarterly planning".into(),
        start_at: Some(T0 + 5_000),
        time_zone: "Europe/Berlin".into(),
        duration_min: 45,
        recurrence: Recurrence::Weekly,
        recurrence_count: Some(4),
        recurrence_until: None,
        skipped_occurrences: Vec::new(),
        require_sign_in: true,
        lobby: false,
    };
    let m1 = store
        .create_meeting(
            &host.id,
            "room-1",
            scheduled.clone(),
            &[guest1.id.clone(), guest1.id.clone()],
            T0,
        )
        .await
        .unwrap();
    assert_eq!(m1.room, "room-1");
    assert_eq!(m1.host_id, host.id);
    assert_eq!(m1.draft, scheduled);
    assert!(!m1.locked && !m1.cancelled);
    assert_eq!((m1.created_at, m1.updated_at), (T0, T0));
    assert_eq!(store.meeting(&m1.id).await.unwrap(), Some(m1.clone()));
    assert_eq!(
        store.meeting_by_room("room-1").await.unwrap(),
        Some(m1.clone())
    );
    assert_eq!(store.meeting("no-such-meeting").await.unwrap(), None);
    assert_eq!(store.meeting_by_room("no-such-room").await.unwrap(), None);
    assert_eq!(store.invitees(&m1.id).await.unwrap(), [summary(&guest1)]);
    assert!(store.is_invited(&m1.id, &guest1.id).await.unwrap());
    assert!(!store.is_invited(&m1.id, &guest2.id).await.unwrap());
    assert_err!(
        store
            .create_meeting(&outsider.id, "room-1", draft("Copy", None), &[], T0)
            .await,
        StoreError::Conflict(Conflict::RoomTaken)
    );
    assert_err!(
        store
            .create_meeting("no-such-user", "room-x", draft("Ghost", None), &[], T0)
            .await,
        StoreError::NotFound
    );

    // An instant meeting sorts by its creation time, a scheduled one by its start.
    let instant = store
        .create_meeting(
            &host.id,
            "room-2",
            draft("Quick call", None),
            &[],
            T0 + 6_000,
        )
        .await
        .unwrap();
    assert_eq!(instant.draft.start_at, None);
    assert_eq!(instant.draft.recurrence_count, None);
    let early = store
        .create_meeting(
            &host.id,
            "room-3",
            draft("Early", Some(T0 + 1_000)),
            std::slice::from_ref(&guest2.id),
            T0 + 2_000,
        )
        .await
        .unwrap();
    let ids = |meetings: Vec<stoa_store::Meeting>| -> Vec<String> {
        meetings.into_iter().map(|m| m.id).collect()
    };
    assert_eq!(
        ids(store.meetings_for(&host.id, ALL).await.unwrap()),
        [instant.id.as_str(), &m1.id, &early.id]
    );
    let middle = Page {
        limit: 1,
        offset: 1,
    };
    assert_eq!(
        ids(store.meetings_for(&host.id, middle).await.unwrap()),
        [m1.id.as_str()]
    );
    assert_eq!(
        ids(store.meetings_for(&guest1.id, ALL).await.unwrap()),
        [m1.id.as_str()]
    );
    assert_eq!(
        ids(store.meetings_for(&guest2.id, ALL).await.unwrap()),
        [early.id.as_str()]
    );
    assert!(store
        .meetings_for(&outsider.id, ALL)
        .await
        .unwrap()
        .is_empty());

    // Updating replaces the draft, and the invitations only when given.
    let revised = MeetingDraft {
        title: "Planning (moved)".into(),
        start_at: Some(T0 + 8_000),
        recurrence: Recurrence::Daily,
        recurrence_count: None,
        require_sign_in: false,
        lobby: true,
        ..scheduled
    };
    let invitees = [guest2.id.clone(), guest1.id.clone()];
    let updated = store
        .update_meeting(&m1.id, revised.clone(), Some(&invitees[..]), T0 + 7_000)
        .await
        .unwrap();
    assert_eq!(updated.draft, revised);
    assert_eq!((updated.created_at, updated.updated_at), (T0, T0 + 7_000));
    assert_eq!(store.meeting(&m1.id).await.unwrap(), Some(updated.clone()));
    assert_eq!(
        store.invitees(&m1.id).await.unwrap(),
        [summary(&guest1), summary(&guest2)]
    );
    store
        .update_meeting(
            &m1.id,
            revised.clone(),
            Some(std::slice::from_ref(&guest2.id)),
            T0 + 7_000,
        )
        .await
        .unwrap();
    assert_eq!(store.invitees(&m1.id).await.unwrap(), [summary(&guest2)]);
    store
        .update_meeting(&m1.id, revised.clone(), None, T0 + 7_500)
        .await
        .unwrap();
    assert_eq!(store.invitees(&m1.id).await.unwrap(), [summary(&guest2)]);
    assert!(!store.is_invited(&m1.id, &guest1.id).await.unwrap());
    assert_err!(
        store
            .update_meeting("no-such-meeting", revised, None, T0)
            .await,
        StoreError::NotFound
    );

    store.set_locked(&m1.id, true, T0 + 9_000).await.unwrap();
    let locked = store.meeting(&m1.id).await.unwrap().unwrap();
    assert!(locked.locked);
    assert_eq!(locked.updated_at, T0 + 9_000);
    store.set_locked(&m1.id, false, T0 + 9_100).await.unwrap();
    assert!(!store.meeting(&m1.id).await.unwrap().unwrap().locked);
    assert_err!(
        store.set_locked("no-such-meeting", true, T0).await,
        StoreError::NotFound
    );

    // A cancelled meeting is still listed.
    store.cancel_meeting(&early.id, T0 + 9_500).await.unwrap();
    let cancelled = store.meeting(&early.id).await.unwrap().unwrap();
    assert!(cancelled.cancelled);
    assert_eq!(cancelled.updated_at, T0 + 9_500);
    assert_eq!(
        ids(store.meetings_for(&guest2.id, ALL).await.unwrap()),
        [m1.id.as_str(), &early.id]
    );
    assert_err!(
        store.cancel_meeting("no-such-meeting", T0).await,
        StoreError::NotFound
    );
}

async fn recurrence_ends_and_skips(store: &dyn Store) {
    let host = new_user(store, "host@recurrence.test", "Host").await;
    let guest = new_user(store, "guest@recurrence.test", "Guest").await;
    let day = 86_400_000;
    let monthly = MeetingDraft {
        recurrence: Recurrence::Monthly,
        recurrence_until: Some("2027-03-31".into()),
        skipped_occurrences: vec![T0 + 60 * day, T0 + 30 * day, T0 + 60 * day],
        ..draft("Monthly review", Some(T0))
    };
    let m = store
        .create_meeting(
            &host.id,
            "monthly-room",
            monthly.clone(),
            std::slice::from_ref(&guest.id),
            T0,
        )
        .await
        .unwrap();
    let kept = MeetingDraft {
        skipped_occurrences: vec![T0 + 30 * day, T0 + 60 * day],
        ..monthly
    };
    assert_eq!(m.draft, kept, "skips are kept sorted, without duplicates");
    assert_eq!(store.meeting(&m.id).await.unwrap(), Some(m.clone()));
    assert_eq!(
        store.meeting_by_room("monthly-room").await.unwrap(),
        Some(m.clone())
    );
    let listed = store.meetings_for(&guest.id, ALL).await.unwrap();
    assert_eq!(
        listed,
        std::slice::from_ref(&m),
        "lists carry the skips too"
    );

    // Updating replaces the skips; an empty list clears them.
    let fewer = MeetingDraft {
        recurrence_until: None,
        recurrence_count: Some(12),
        skipped_occurrences: vec![T0 + 90 * day],
        ..kept.clone()
    };
    let updated = store
        .update_meeting(&m.id, fewer.clone(), None, T0 + 1)
        .await
        .unwrap();
    assert_eq!(updated.draft, fewer);
    assert_eq!(store.meeting(&m.id).await.unwrap(), Some(updated));
    let none = MeetingDraft {
        skipped_occurrences: Vec::new(),
        ..fewer
    };
    store
        .update_meeting(&m.id, none.clone(), None, T0 + 2)
        .await
        .unwrap();
    assert_eq!(store.meeting(&m.id).await.unwrap().unwrap().draft, none);

    // History shows a meeting's skips as well.
    store
        .update_meeting(&m.id, kept.clone(), None, T0 + 3)
        .await
        .unwrap();
    let stay = store
        .record_join(&m.id, Some(&guest.id), "Guest", T0 + 4)
        .await
        .unwrap();
    store.record_leave(&stay, T0 + 5).await.unwrap();
    let past = store.history(&guest.id, ALL).await.unwrap();
    assert_eq!(past[0].meeting.draft, kept);
}

async fn attendance(store: &dyn Store) {
    let host = new_user(store, "host@attendance.test", "Host").await;
    let member = new_user(store, "member@attendance.test", "Member").await;
    let other = new_user(store, "other@attendance.test", "Other").await;
    let hosted = store
        .create_meeting(&host.id, "att-hosted", draft("Hosted", None), &[], T0)
        .await
        .unwrap();
    let invited = store
        .create_meeting(
            &other.id,
            "att-invited",
            draft("Invited", None),
            std::slice::from_ref(&member.id),
            T0 + 10,
        )
        .await
        .unwrap();
    let attended = store
        .create_meeting(&other.id, "att-attended", draft("Attended", None), &[], T0)
        .await
        .unwrap();
    let unrelated = store
        .create_meeting(
            &other.id,
            "att-unrelated",
            draft("Unrelated", None),
            &[],
            T0,
        )
        .await
        .unwrap();
    let invited_never_held = store
        .create_meeting(
            &other.id,
            "att-empty",
            draft("Never held", None),
            &[member.id.clone(), host.id.clone()],
            T0,
        )
        .await
        .unwrap();

    let host_stay = store
        .record_join(&hosted.id, Some(&host.id), "Host", T0 + 100)
        .await
        .unwrap();
    let guest_stay = store
        .record_join(&hosted.id, None, "A guest", T0 + 200)
        .await
        .unwrap();
    store.record_leave(&guest_stay, T0 + 300).await.unwrap();
    store.record_leave(&guest_stay, T0 + 400).await.unwrap();
    let invited_stay = store
        .record_join(&invited.id, Some(&other.id), "Other", T0 + 500)
        .await
        .unwrap();
    let member_stay = store
        .record_join(&attended.id, Some(&member.id), "Member", T0 + 600)
        .await
        .unwrap();
    store
        .record_join(&unrelated.id, Some(&other.id), "Other", T0 + 700)
        .await
        .unwrap();
    assert_ne!(host_stay, guest_stay);
    assert_err!(
        store.record_leave("no-such-stay", T0).await,
        StoreError::NotFound
    );
    assert_err!(
        store
            .record_join("no-such-meeting", None, "Ghost", T0)
            .await,
        StoreError::NotFound
    );
    assert_err!(
        store
            .record_join(&hosted.id, Some("no-such-user"), "Ghost", T0)
            .await,
        StoreError::NotFound
    );

    let host_history = store.history(&host.id, ALL).await.unwrap();
    assert_eq!(host_history.len(), 1, "{host_history:?}");
    assert_eq!(host_history[0].meeting, hosted);
    let stays: Vec<_> = host_history[0]
        .attendance
        .iter()
        .map(|a| {
            (
                a.id.as_str(),
                a.user_id.as_deref(),
                a.name.as_str(),
                a.joined_at,
                a.left_at,
            )
        })
        .collect();
    assert_eq!(
        stays,
        [
            (
                host_stay.as_str(),
                Some(host.id.as_str()),
                "Host",
                T0 + 100,
                None
            ),
            (
                guest_stay.as_str(),
                None,
                "A guest",
                T0 + 200,
                Some(T0 + 300)
            ),
        ]
    );
    assert!(host_history[0]
        .attendance
        .iter()
        .all(|a| a.meeting_id == hosted.id));

    // Attended, invited (held by others) — most recent first; never-held and unrelated
    // meetings do not count.
    let member_history = store.history(&member.id, ALL).await.unwrap();
    let meeting_ids: Vec<_> = member_history
        .iter()
        .map(|p| p.meeting.id.as_str())
        .collect();
    assert_eq!(meeting_ids, [attended.id.as_str(), invited.id.as_str()]);
    assert_eq!(member_history[1].attendance[0].id, invited_stay);
    let second = Page {
        limit: 1,
        offset: 1,
    };
    let paged = store.history(&member.id, second).await.unwrap();
    assert_eq!(paged.len(), 1);
    assert_eq!(paged[0].meeting, invited);
    assert!(!store
        .history(&member.id, ALL)
        .await
        .unwrap()
        .iter()
        .any(|p| p.meeting.id == invited_never_held.id));
    assert!(store.history("nobody", ALL).await.unwrap().is_empty());

    // After a crash: the open stays (host, invited, member, unrelated) are closed.
    assert_eq!(store.close_open_attendance(T0 + 900).await.unwrap(), 4);
    assert_eq!(store.close_open_attendance(T0 + 950).await.unwrap(), 0);
    let member_history = store.history(&member.id, ALL).await.unwrap();
    assert_eq!(member_history[0].attendance[0].id, member_stay);
    assert_eq!(member_history[0].attendance[0].left_at, Some(T0 + 900));
    let hosted_after = &store.history(&host.id, ALL).await.unwrap()[0].attendance;
    assert_eq!(hosted_after[0].left_at, Some(T0 + 900));
    assert_eq!(hosted_after[1].left_at, Some(T0 + 300), "already left");
}

async fn contacts(store: &dyn Store) {
    let ann = new_user(store, "ann@contacts.test", "Ann").await;
    let bob = new_user(store, "bob@contacts.test", "Bob").await;
    let cid = new_user(store, "cid@contacts.test", "Cid").await;
    let dee = new_user(store, "dee@contacts.test", "Dee").await;

    assert_err!(
        store.request_contact(&ann.id, &ann.id, T0).await,
        StoreError::Conflict(Conflict::SelfRequest)
    );
    assert_err!(
        store.request_contact(&ann.id, "no-such-user", T0).await,
        StoreError::NotFound
    );

    // Request, then accept.
    assert_eq!(
        store.request_contact(&ann.id, &bob.id, T0).await.unwrap(),
        RequestOutcome::Pending
    );
    assert_err!(
        store.request_contact(&ann.id, &bob.id, T0).await,
        StoreError::Conflict(Conflict::AlreadyRequested)
    );
    assert_eq!(
        store
            .request_contact(&dee.id, &bob.id, T0 + 1)
            .await
            .unwrap(),
        RequestOutcome::Pending
    );
    let bobs = store.contact_requests(&bob.id).await.unwrap();
    assert_eq!(
        bobs.incoming,
        [summary(&dee), summary(&ann)],
        "newest first"
    );
    assert!(bobs.outgoing.is_empty());
    let anns = store.contact_requests(&ann.id).await.unwrap();
    assert!(anns.incoming.is_empty());
    assert_eq!(anns.outgoing, [summary(&bob)]);
    store.accept_contact(&bob.id, &ann.id, T0).await.unwrap();
    assert!(store.are_contacts(&ann.id, &bob.id).await.unwrap());
    assert!(store.are_contacts(&bob.id, &ann.id).await.unwrap());
    assert!(!store.are_contacts(&ann.id, &cid.id).await.unwrap());
    assert_eq!(
        store.contact_requests(&bob.id).await.unwrap().incoming,
        [summary(&dee)]
    );
    assert_err!(
        store.accept_contact(&bob.id, &ann.id, T0).await,
        StoreError::NotFound
    );
    assert_err!(
        store.request_contact(&bob.id, &ann.id, T0).await,
        StoreError::Conflict(Conflict::AlreadyContacts)
    );

    // Declining deletes the request.
    store
        .delete_contact_request(&dee.id, &bob.id)
        .await
        .unwrap();
    assert!(store
        .contact_requests(&bob.id)
        .await
        .unwrap()
        .incoming
        .is_empty());
    assert!(store
        .contact_requests(&dee.id)
        .await
        .unwrap()
        .outgoing
        .is_empty());
    assert_err!(
        store.delete_contact_request(&dee.id, &bob.id).await,
        StoreError::NotFound
    );

    // Asking someone who already asked you accepts at once.
    assert_eq!(
        store.request_contact(&cid.id, &ann.id, T0).await.unwrap(),
        RequestOutcome::Pending
    );
    assert_eq!(
        store.request_contact(&ann.id, &cid.id, T0).await.unwrap(),
        RequestOutcome::Accepted
    );
    assert!(store.are_contacts(&cid.id, &ann.id).await.unwrap());
    assert!(store
        .contact_requests(&ann.id)
        .await
        .unwrap()
        .incoming
        .is_empty());
    assert!(store
        .contact_requests(&cid.id)
        .await
        .unwrap()
        .outgoing
        .is_empty());

    assert_eq!(
        store.contacts(&ann.id, ALL).await.unwrap(),
        [summary(&bob), summary(&cid)]
    );
    let second = Page {
        limit: 1,
        offset: 1,
    };
    assert_eq!(
        store.contacts(&ann.id, second).await.unwrap(),
        [summary(&cid)]
    );
    assert_eq!(store.contacts(&bob.id, ALL).await.unwrap(), [summary(&ann)]);

    store.remove_contact(&bob.id, &ann.id).await.unwrap();
    assert!(!store.are_contacts(&ann.id, &bob.id).await.unwrap());
    assert!(!store.are_contacts(&bob.id, &ann.id).await.unwrap());
    assert_eq!(store.contacts(&ann.id, ALL).await.unwrap(), [summary(&cid)]);
    assert_err!(
        store.remove_contact(&ann.id, &bob.id).await,
        StoreError::NotFound
    );
}

async fn blocks(store: &dyn Store) {
    let ann = new_user(store, "ann@blocks.test", "Ann").await;
    let cid = new_user(store, "cid@blocks.test", "Cid").await;
    let dee = new_user(store, "dee@blocks.test", "Dee").await;
    store.request_contact(&ann.id, &cid.id, T0).await.unwrap();
    store.accept_contact(&cid.id, &ann.id, T0).await.unwrap();
    store.request_contact(&dee.id, &ann.id, T0).await.unwrap();

    // Blocking ends the contact and the requests, either way round.
    store.block(&ann.id, &cid.id, T0).await.unwrap();
    store.block(&ann.id, &dee.id, T0).await.unwrap();
    store.block(&ann.id, &cid.id, T0).await.unwrap();
    assert!(!store.are_contacts(&ann.id, &cid.id).await.unwrap());
    assert!(!store.are_contacts(&cid.id, &ann.id).await.unwrap());
    assert!(store
        .contact_requests(&ann.id)
        .await
        .unwrap()
        .incoming
        .is_empty());
    assert!(store
        .contact_requests(&dee.id)
        .await
        .unwrap()
        .outgoing
        .is_empty());
    assert_eq!(
        store.blocked(&ann.id).await.unwrap(),
        [summary(&cid), summary(&dee)]
    );
    assert!(store.blocked(&cid.id).await.unwrap().is_empty());
    assert!(store.is_blocked_between(&ann.id, &cid.id).await.unwrap());
    assert!(store.is_blocked_between(&cid.id, &ann.id).await.unwrap());
    assert!(!store.is_blocked_between(&cid.id, &dee.id).await.unwrap());
    assert_err!(
        store.request_contact(&cid.id, &ann.id, T0).await,
        StoreError::Conflict(Conflict::Blocked)
    );
    assert_err!(
        store.request_contact(&ann.id, &cid.id, T0).await,
        StoreError::Conflict(Conflict::Blocked)
    );
    assert_err!(
        store.block(&ann.id, &ann.id, T0).await,
        StoreError::Conflict(Conflict::SelfRequest)
    );
    assert_err!(
        store.block(&ann.id, "no-such-user", T0).await,
        StoreError::NotFound
    );

    store.unblock(&ann.id, &cid.id).await.unwrap();
    store.unblock(&ann.id, &cid.id).await.unwrap();
    assert_eq!(store.blocked(&ann.id).await.unwrap(), [summary(&dee)]);
    assert!(!store.is_blocked_between(&cid.id, &ann.id).await.unwrap());
    assert_eq!(
        store.request_contact(&cid.id, &ann.id, T0).await.unwrap(),
        RequestOutcome::Pending
    );
}

/// A write that fails part-way leaves no trace: its transaction is rolled back.
async fn account_deletion(store: &dyn Store) {
    let zed = new_user(store, "zed@deletion.test", "Zed").await;
    let yan = new_user(store, "yan@deletion.test", "Yan").await;
    let xia = new_user(store, "xia@deletion.test", "Xia").await;
    store
        .create_session(session("zed-session", &zed, T0 + 1_000_000))
        .await
        .unwrap();
    let zeds = store
        .create_meeting(
            &zed.id,
            "del-zeds",
            draft("Zed's", None),
            std::slice::from_ref(&yan.id),
            T0,
        )
        .await
        .unwrap();
    let yans = store
        .create_meeting(
            &yan.id,
            "del-yans",
            draft("Yan's", None),
            std::slice::from_ref(&zed.id),
            T0,
        )
        .await
        .unwrap();
    store
        .record_join(&zeds.id, Some(&yan.id), "Yan", T0 + 1)
        .await
        .unwrap();
    store
        .record_join(&yans.id, Some(&zed.id), "Zed", T0 + 2)
        .await
        .unwrap();
    store.request_contact(&zed.id, &yan.id, T0).await.unwrap();
    store.accept_contact(&yan.id, &zed.id, T0).await.unwrap();
    store.request_contact(&zed.id, &xia.id, T0).await.unwrap();
    store.block(&xia.id, &zed.id, T0).await.unwrap();

    store.delete_user(&zed.id).await.unwrap();
    assert_eq!(store.user(&zed.id).await.unwrap(), None);
    assert_eq!(
        store.user_by_email("zed@deletion.test").await.unwrap(),
        None
    );
    assert_eq!(store.session("zed-session", T0).await.unwrap(), None);
    assert_eq!(
        store.meeting(&zeds.id).await.unwrap(),
        None,
        "the meetings Zed hosted go"
    );
    assert_eq!(store.meeting_by_room("del-zeds").await.unwrap(), None);
    assert!(store.invitees(&yans.id).await.unwrap().is_empty());
    assert!(store.contacts(&yan.id, ALL).await.unwrap().is_empty());
    assert!(store
        .contact_requests(&xia.id)
        .await
        .unwrap()
        .incoming
        .is_empty());
    assert!(store.blocked(&xia.id).await.unwrap().is_empty());
    let history = store.history(&yan.id, ALL).await.unwrap();
    assert_eq!(history.len(), 1, "Zed's meeting left Yan's history with it");
    let rows = &history[0].attendance;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].user_id.as_deref(), rows[0].name.as_str()),
        (None, "Deleted account")
    );
    assert_err!(store.delete_user(&zed.id).await, StoreError::NotFound);
    // The address is free again.
    new_user(store, "zed@deletion.test", "Zed again").await;
}

async fn failed_writes_change_nothing(store: &dyn Store) {
    let host = new_user(store, "host@atomic.test", "Host").await;
    let guest = new_user(store, "guest@atomic.test", "Guest").await;
    let invitees = [guest.id.clone(), "no-such-user".to_owned()];

    // The meeting row is written before the invitation that fails.
    assert_err!(
        store
            .create_meeting(
                &host.id,
                "atomic-room",
                draft("Doomed", None),
                &invitees,
                T0
            )
            .await,
        StoreError::NotFound
    );
    assert_eq!(store.meeting_by_room("atomic-room").await.unwrap(), None);
    assert!(store.meetings_for(&host.id, ALL).await.unwrap().is_empty());
    assert!(store.meetings_for(&guest.id, ALL).await.unwrap().is_empty());

    // The room is free, and a failed update keeps the draft, its skipped occurrences and the
    // invitations.
    let kept = MeetingDraft {
        recurrence: Recurrence::Daily,
        skipped_occurrences: vec![T0 + 86_400_000],
        ..draft("Kept", Some(T0))
    };
    let meeting = store
        .create_meeting(
            &host.id,
            "atomic-room",
            kept,
            std::slice::from_ref(&guest.id),
            T0,
        )
        .await
        .unwrap();
    assert_err!(
        store
            .update_meeting(
                &meeting.id,
                draft("Lost", None),
                Some(&invitees[1..]),
                T0 + 1
            )
            .await,
        StoreError::NotFound
    );
    assert_eq!(
        store.meeting(&meeting.id).await.unwrap(),
        Some(meeting.clone())
    );
    assert_eq!(
        store.invitees(&meeting.id).await.unwrap(),
        [summary(&guest)]
    );
}

// ---- helpers

async fn new_user(store: &dyn Store, email: &str, name: &str) -> User {
    store
        .create_user(
            NewUser {
                email: email.into(),
                display_name: name.into(),
                password_hash: format!("hash of {name}"),
            },
            T0,
        )
        .await
        .unwrap()
}

fn summary(user: &User) -> UserSummary {
    UserSummary {
        id: user.id.clone(),
        email: user.email.clone(),
        display_name: user.display_name.clone(),
    }
}

fn session(token: &str, user: &User, expires_at: Millis) -> Session {
    Session {
        token_hash: token.into(),
        user_id: user.id.clone(),
        created_at: T0,
        expires_at,
    }
}

fn draft(title: &str, start_at: Option<Millis>) -> MeetingDraft {
    MeetingDraft {
        title: title.into(),
        description: String::new(),
        start_at,
        time_zone: "UTC".into(),
        duration_min: 30,
        recurrence: Recurrence::None,
        recurrence_count: None,
        recurrence_until: None,
        skipped_occurrences: Vec::new(),
        require_sign_in: false,
        lobby: false,
    }
}

fn random_hex() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// `server`'s URL naming the database `name` instead of its own.
fn with_database(server: &str, name: &str) -> String {
    let (base, params) = server.split_once('?').unwrap_or((server, ""));
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[host_start..]
        .find('/')
        .map_or(base.len(), |i| host_start + i);
    let params = if params.is_empty() {
        String::new()
    } else {
        format!("?{params}")
    };
    format!("{}/{name}{params}", &base[..host_end])
}

/// A fresh directory under the system's temp dir, removed on drop.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("stoa-store-{}", random_hex()));
        std::fs::create_dir(&path).expect("create a temp dir");
        TempDir { path }
    }

    fn db_path(&self) -> PathBuf {
        self.path.join("stoa.db")
    }

    fn sqlite_url(&self) -> String {
        format!("sqlite://{}", self.db_path().display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
