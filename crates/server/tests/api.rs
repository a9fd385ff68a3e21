//! The REST API against a real server on loopback (SQLite): every endpoint, its validation
//! errors and its authorization failures, the event feed, and a restart that keeps
//! accounts, sessions, meetings and contacts.

mod common;

use futures_util::{SinkExt, StreamExt};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use sqlx::migrate::MigrateDatabase;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

struct Api {
    base: String,
    http: Client,
}

/// A signed-in user: id and session secret (sent as a bearer token).
#[derive(Clone)]
struct Account {
    id: String,
    token: String,
}

impl Api {
    fn new(running: &stoa::Running) -> Self {
        Self {
            base: format!("http://{}", running.http_addr),
            http: Client::new(),
        }
    }

    async fn call(
        &self,
        who: Option<&Account>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(a) = who {
            req = req.bearer_auth(&a.token);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn signup(&self, email: &str, name: &str) -> Account {
        let (status, body) = self
            .call(
                None,
                Method::POST,
                "/api/v1/auth/signup",
                Some(json!({"email": email, "password": "correct horse", "display_name": name})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        Account {
            id: body["user"]["id"].as_str().unwrap().into(),
            token: body["token"].as_str().unwrap().into(),
        }
    }

    async fn befriend(&self, a: &Account, b: &Account) {
        let (s, _) = self
            .call(
                Some(a),
                Method::POST,
                "/api/v1/contacts/requests",
                Some(json!({"user_id": b.id})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let (s, _) = self
            .call(
                Some(b),
                Method::POST,
                &format!("/api/v1/contacts/requests/{}/accept", a.id),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
    }
}

fn assert_error(status: StatusCode, body: &Value, want_status: u16, want_error: &str) {
    assert_eq!(status.as_u16(), want_status, "{body}");
    assert_eq!(body["error"], want_error, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn accounts_sessions_and_login_limits() {
    let server = common::start().await;
    let api = Api::new(&server);
    let signup = |body: Value| api.call(None, Method::POST, "/api/v1/auth/signup", Some(body));

    let (s, b) =
        signup(json!({"email": "not-an-email", "password": "long enough", "display_name": "A"}))
            .await;
    assert_error(s, &b, 400, "invalid_field");
    assert_eq!(b["field"], "email");
    let (s, b) =
        signup(json!({"email": "a@example.org", "password": "short", "display_name": "A"})).await;
    assert_eq!((s.as_u16(), b["field"].as_str()), (400, Some("password")));
    let (s, b) =
        signup(json!({"email": "a@example.org", "password": "long enough", "display_name": "  "}))
            .await;
    assert_eq!(
        (s.as_u16(), b["field"].as_str()),
        (400, Some("display_name"))
    );
    let (s, b) = signup(json!({"email": "a@example.org", "password": "long enough", "display_name": "A", "admin": true})).await;
    assert_error(s, &b, 400, "invalid_body");
    let res = api
        .http
        .post(format!("{}/api/v1/auth/signup", api.base))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_body");
    // A struct's fields as an array are no object.
    let (s, b) = signup(json!(["a@example.org", "long enough", "A"])).await;
    assert_error(s, &b, 400, "invalid_body");
    let (s, b) = api
        .call(
            None,
            Method::POST,
            "/api/v1/rooms/some-room/join",
            Some(json!([null])),
        )
        .await;
    assert_error(s, &b, 400, "invalid_body");
    // An optional body left out is fine; one of only whitespace is not JSON.
    for (body, want) in [("", 201), ("\t", 400), ("null", 201)] {
        let res = api
            .http
            .post(format!("{}/api/v1/meetings", api.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), want, "body {body:?}");
    }

    let ann = api.signup("Ann@Example.org", "Ann").await;
    let (s, b) = signup(
        json!({"email": "ann@example.ORG", "password": "whatever1", "display_name": "Ann 2"}),
    )
    .await;
    assert_error(s, &b, 409, "email_taken");

    // Bearer and cookie both identify the session.
    let (s, me) = api.call(Some(&ann), Method::GET, "/api/v1/me", None).await;
    assert_eq!(s, 200);
    assert_eq!(
        (me["email"].as_str(), me["display_name"].as_str()),
        (Some("ann@example.org"), Some("Ann"))
    );
    let res = api
        .http
        .get(format!("{}/api/v1/me", api.base))
        .header("cookie", format!("other=1; stoa_session={}", ann.token))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // An Authorization header decides alone: a wrong one is refused even beside a good cookie.
    for wrong in [
        "Bearer ss_0000",
        "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x",
        "Basic YTpi",
    ] {
        let res = api
            .http
            .get(format!("{}/api/v1/me", api.base))
            .header("cookie", format!("stoa_session={}", ann.token))
            .header("authorization", wrong)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{wrong}");
    }
    // Joining a room works signed out: a stale cookie leaves a guest, a stale bearer is refused.
    let (_, adhoc) = api.call(None, Method::POST, "/api/v1/meetings", None).await;
    let adhoc_room = adhoc["room"].as_str().unwrap().to_string();
    let join = |auth: (&'static str, &'static str)| {
        api.http
            .post(format!("{}/api/v1/rooms/{adhoc_room}/join", api.base))
            .header(auth.0, auth.1)
            .json(&json!({"name": "Guest"}))
            .send()
    };
    assert_eq!(
        join(("cookie", "stoa_session=ss_gone"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        join(("authorization", "Bearer ss_gone"))
            .await
            .unwrap()
            .status(),
        401
    );
    let (s, b) = api.call(None, Method::GET, "/api/v1/me", None).await;
    assert_error(s, &b, 401, "unauthorized");
    let forged = Account {
        id: ann.id.clone(),
        token: "ss_0000".into(),
    };
    assert_eq!(
        api.call(Some(&forged), Method::GET, "/api/v1/me", None)
            .await
            .0,
        401
    );
    // The signed-in state without a 401 for those who are not: signed out, a stale cookie, signed in.
    let (s, b) = api.call(None, Method::GET, "/api/v1/session", None).await;
    assert_eq!((s, b), (StatusCode::OK, json!({"user": null})));
    let res = api
        .http
        .get(format!("{}/api/v1/session", api.base))
        .header("cookie", "stoa_session=ss_gone")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"user": null}));
    let (s, b) = api
        .call(Some(&ann), Method::GET, "/api/v1/session", None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["user"]["id"], json!(ann.id));
    assert_eq!(b["user"]["display_name"], json!("Ann"));
    let (s, b) = api
        .call(Some(&forged), Method::GET, "/api/v1/session", None)
        .await;
    assert_error(s, &b, 401, "unauthorized");

    // Log-in sets a cookie and gives a second session.
    let res = api
        .http
        .post(format!("{}/api/v1/auth/login", api.base))
        .json(&json!({"email": "ANN@example.org", "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.starts_with("stoa_session=ss_")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let second = Account {
        id: ann.id.clone(),
        token: res.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .into(),
    };

    // Changing the password needs the current one and ends the other sessions.
    macro_rules! change {
        ($who:expr, $current:expr) => {
            api.call(Some($who), Method::PUT, "/api/v1/me/password", Some(json!({"current_password": $current, "new_password": "battery staple"})))
        };
    }
    let (s, b) = change!(&ann, "wrong password").await;
    assert_error(s, &b, 403, "wrong_password");
    assert_eq!(change!(&ann, "correct horse").await.0, 204);
    assert_eq!(
        api.call(Some(&ann), Method::GET, "/api/v1/me", None)
            .await
            .0,
        200
    );
    assert_eq!(
        api.call(Some(&second), Method::GET, "/api/v1/me", None)
            .await
            .0,
        401,
        "other sessions end"
    );

    // Log-out ends the session.
    assert_eq!(
        api.call(Some(&ann), Method::POST, "/api/v1/auth/logout", None)
            .await
            .0,
        204
    );
    assert_eq!(
        api.call(Some(&ann), Method::GET, "/api/v1/me", None)
            .await
            .0,
        401
    );
    assert_eq!(
        api.call(None, Method::POST, "/api/v1/auth/logout", None)
            .await
            .0,
        401
    );

    // Wrong passwords are refused alike for unknown and known accounts, then rate limited.
    let login = |email: &str, password: &str| {
        api.call(
            None,
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({"email": email, "password": password})),
        )
    };
    let (s, b) = login("nobody@example.org", "whatever1").await;
    assert_error(s, &b, 401, "invalid_credentials");
    for _ in 0..5 {
        assert_eq!(login("ann@example.org", "guess").await.0, 401);
    }
    let (s, b) = login("ann@example.org", "battery staple").await;
    assert_error(s, &b, 429, "rate_limited");
    assert_eq!(
        login("other@example.org", "guess").await.0,
        401,
        "the limit is per email"
    );
}

#[tokio::test]
async fn meetings_invitations_calendar_and_authorization() {
    let server = common::start().await;
    let api = Api::new(&server);
    let ann = api.signup("ann@example.org", "Ann").await;
    let bob = api.signup("bob@example.org", "Bob").await;
    let eve = api.signup("eve@example.org", "Eve").await;

    // Signed out: an ad-hoc link, nothing stored.
    let (s, b) = api.call(None, Method::POST, "/api/v1/meetings", None).await;
    assert_eq!(s, 201);
    assert!(
        b["url"].as_str().unwrap().starts_with("/m/") && b.get("id").is_none(),
        "{b}"
    );

    macro_rules! create {
        ($who:expr, $body:expr) => {
            api.call(Some($who), Method::POST, "/api/v1/meetings", Some($body))
        };
    }
    for (body, field) in [
        (json!({"title": ""}), "title"),
        (json!({"start_at": "tomorrow"}), "start_at"),
        (json!({"start_at": "1990-01-01T00:00:00Z"}), "start_at"),
        (json!({"time_zone": "Mars/Olympus"}), "time_zone"),
        (json!({"duration_minutes": 0}), "duration_minutes"),
        (json!({"recurrence": "weekly"}), "start_at"),
        (
            json!({"recurrence": "hourly", "start_at": "2026-12-01T10:00:00+01:00"}),
            "recurrence",
        ),
        (
            json!({"recurrence": "monthly", "start_at": "2026-12-01T10:00:00+01:00",
                   "recurrence_count": 3, "recurrence_until": "2027-03-31"}),
            "recurrence_until",
        ),
        (
            json!({"recurrence": "weekly", "start_at": "2026-12-01T10:00:00+01:00",
                   "time_zone": "Europe/Berlin", "recurrence_until": "2026-11-30"}),
            "recurrence_until",
        ),
        (
            json!({"recurrence": "weekly", "start_at": "2026-12-01T10:00:00+01:00",
                   "recurrence_until": "2027-02-30"}),
            "recurrence_until",
        ),
        (
            json!({"recurrence": "weekly", "start_at": "2026-12-01T10:00:00+01:00",
                   "skipped_occurrences": ["2026-12-02T10:00:00+01:00"]}),
            "skipped_occurrences",
        ),
        (
            json!({"start_at": "2026-12-01T10:00:00+01:00",
                   "skipped_occurrences": ["2026-12-01T10:00:00+01:00"]}),
            "skipped_occurrences",
        ),
        (
            json!({"recurrence": "daily", "start_at": "2026-12-01T10:00:00Z",
                   "skipped_occurrences": vec!["2026-12-02T10:00:00Z"; 101]}),
            "skipped_occurrences",
        ),
        (json!({"invitees": [bob.id]}), "invitees"),
        (json!({"invitees": ["../etc"]}), "invitees"),
    ] {
        let (s, b) = create!(&ann, body.clone()).await;
        assert_eq!(
            (s.as_u16(), b["field"].as_str()),
            (400, Some(field)),
            "{body} → {b}"
        );
    }

    api.befriend(&ann, &bob).await;
    let (s, m) = create!(&ann, json!({
        "title": "Weekly sync", "description": "Plans, risks", "start_at": "2026-12-01T10:00:00+01:00",
        "time_zone": "Europe/Berlin", "duration_minutes": 30, "recurrence": "weekly", "recurrence_count": 10,
        "invitees": [bob.id], "lobby": true,
    })).await;
    assert_eq!(s, 201, "{m}");
    assert_eq!(m["start_at"], "2026-12-01T09:00:00Z");
    assert_eq!(
        (m["is_host"].as_bool(), m["invitees"][0]["id"].as_str()),
        (Some(true), Some(bob.id.as_str()))
    );
    let id = m["id"].as_str().unwrap().to_string();
    let room = m["room"].as_str().unwrap().to_string();
    let path = format!("/api/v1/meetings/{id}");

    // Host and invitee see it; a stranger cannot tell it exists.
    for who in [&ann, &bob] {
        let (s, list) = api
            .call(Some(who), Method::GET, "/api/v1/meetings", None)
            .await;
        assert_eq!(s, 200);
        assert_eq!(list["items"][0]["id"], id.as_str());
        let (s, detail) = api.call(Some(who), Method::GET, &path, None).await;
        assert_eq!(s, 200);
        assert_eq!(detail["live"], json!([]));
    }
    let (_, list) = api
        .call(Some(&eve), Method::GET, "/api/v1/meetings", None)
        .await;
    assert_eq!(list["items"], json!([]));
    for (method, p) in [
        (Method::GET, path.clone()),
        (Method::PATCH, path.clone()),
        (Method::DELETE, path.clone()),
        (Method::GET, format!("{path}/calendar.ics")),
    ] {
        let body = (method == Method::PATCH).then(|| json!({"title": "mine now"}));
        let (s, b) = api.call(Some(&eve), method.clone(), &p, body).await;
        assert_error(s, &b, 404, "not_found");
        assert_eq!(api.call(None, method, &p, None).await.0, 401);
    }
    let (s, b) = api
        .call(
            Some(&bob),
            Method::PATCH,
            &path,
            Some(json!({"title": "Bob's"})),
        )
        .await;
    assert_error(s, &b, 403, "forbidden");
    assert_eq!(
        api.call(Some(&bob), Method::DELETE, &path, None).await.0,
        403
    );

    // The calendar file.
    let res = api
        .http
        .get(format!("{}{path}/calendar.ics", api.base))
        .bearer_auth(&bob.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/calendar"));
    let ics = res.text().await.unwrap().replace("\r\n ", "");
    for needle in [
        "BEGIN:VEVENT",
        "RRULE:FREQ=WEEKLY;COUNT=10",
        "DTSTART;TZID=Europe/Berlin:20261201T100000",
        "SUMMARY:Weekly sync",
        "mailto:bob@example.org",
        "BEGIN:VTIMEZONE",
    ] {
        assert!(ics.contains(needle), "{needle} missing in {ics}");
    }

    // Joining: signed-in host gets room-admin; a guest may join (no sign-in required).
    macro_rules! join {
        ($who:expr, $body:expr) => {
            api.call(
                $who,
                Method::POST,
                &format!("/api/v1/rooms/{room}/join"),
                Some($body),
            )
        };
    }
    let (s, host) = join!(Some(&ann), json!({})).await;
    assert_eq!(
        (s.as_u16(), host["host"].as_bool(), host["name"].as_str()),
        (200, Some(true), Some("Ann"))
    );
    let (s, invitee) = join!(Some(&bob), json!({"name": "Robert"})).await;
    assert_eq!(
        (
            s.as_u16(),
            invitee["host"].as_bool(),
            invitee["name"].as_str()
        ),
        (200, Some(false), Some("Robert"))
    );
    let (s, b) = join!(None, json!({})).await;
    assert_eq!((s.as_u16(), b["field"].as_str()), (400, Some("name")));
    assert_eq!(join!(None, json!({"name": "Guest"})).await.0, 200);

    // Edits: require sign-in and lock.
    let (s, m) = api
        .call(
            Some(&ann),
            Method::PATCH,
            &path,
            Some(json!({"require_sign_in": true, "locked": true, "title": "Weekly sync 2"})),
        )
        .await;
    assert_eq!(
        (s.as_u16(), m["locked"].as_bool(), m["title"].as_str()),
        (200, Some(true), Some("Weekly sync 2")),
        "{m}"
    );
    assert_eq!(m["recurrence"], "weekly", "untouched fields stay");
    let (s, b) = join!(None, json!({"name": "Guest"})).await;
    assert_error(s, &b, 401, "sign_in_required");
    let (s, b) = join!(Some(&bob), json!({})).await;
    assert_error(s, &b, 403, "meeting_locked");
    assert_eq!(
        join!(Some(&ann), json!({})).await.0,
        200,
        "the host may join a locked meeting"
    );

    // Cancelling.
    assert_eq!(
        api.call(Some(&ann), Method::DELETE, &path, None).await.0,
        204
    );
    let (s, b) = join!(Some(&ann), json!({})).await;
    assert_error(s, &b, 410, "meeting_cancelled");
    let (_, m) = api.call(Some(&bob), Method::GET, &path, None).await;
    assert_eq!(m["cancelled"], true);
    let (s, b) = api
        .call(
            Some(&ann),
            Method::PATCH,
            &path,
            Some(json!({"title": "again"})),
        )
        .await;
    assert_error(s, &b, 409, "meeting_cancelled");

    // Pagination.
    for n in 0..3 {
        assert_eq!(
            create!(&ann, json!({"title": format!("m{n}")})).await.0,
            201
        );
    }
    let (_, page) = api
        .call(Some(&ann), Method::GET, "/api/v1/meetings?limit=2", None)
        .await;
    assert_eq!(
        (
            page["items"].as_array().unwrap().len(),
            page["next_offset"].as_i64()
        ),
        (2, Some(2))
    );
    let (_, page) = api
        .call(
            Some(&ann),
            Method::GET,
            "/api/v1/meetings?limit=2&offset=2",
            None,
        )
        .await;
    assert_eq!(
        (
            page["items"].as_array().unwrap().len(),
            page["next_offset"].as_i64()
        ),
        (2, None)
    );
    for q in ["limit=0", "limit=101", "offset=-1", "limit=abc"] {
        let (s, _) = api
            .call(
                Some(&ann),
                Method::GET,
                &format!("/api/v1/meetings?{q}"),
                None,
            )
            .await;
        assert_eq!(s, 400, "{q}");
    }
}

#[tokio::test]
async fn monthly_meetings_with_an_end_date_and_skipped_occurrences() {
    let server = common::start().await;
    let api = Api::new(&server);
    let ann = api.signup("ann@example.org", "Ann").await;

    // On the 31st at 18:00 in Berlin until 31 August 2027: January, March, May, July, August.
    let (s, m) = api
        .call(
            Some(&ann),
            Method::POST,
            "/api/v1/meetings",
            Some(json!({
                "title": "Month end", "start_at": "2027-01-31T18:00:00.250+01:00",
                "time_zone": "Europe/Berlin", "recurrence": "monthly",
                "recurrence_until": "2027-08-31",
                "skipped_occurrences": ["2027-03-31T18:00:00+02:00", "2027-01-31T17:00:00Z",
                                        "2027-01-31T18:00:00+01:00"],
            })),
        )
        .await;
    assert_eq!(s, 201, "{m}");
    assert_eq!(
        (
            &m["recurrence"],
            &m["recurrence_until"],
            &m["recurrence_count"]
        ),
        (&json!("monthly"), &json!("2027-08-31"), &Value::Null)
    );
    assert_eq!(m["start_at"], "2027-01-31T17:00:00Z", "to the second");
    assert_eq!(
        m["skipped_occurrences"],
        json!(["2027-01-31T17:00:00Z", "2027-03-31T16:00:00Z"]),
        "sorted, in UTC, without duplicates"
    );
    let path = format!("/api/v1/meetings/{}", m["id"].as_str().unwrap());
    let patch = |body: Value| api.call(Some(&ann), Method::PATCH, &path, Some(body));

    // February has no 31st, and no occurrence there.
    let (s, b) = patch(json!({"skipped_occurrences": ["2027-02-28T18:00:00+01:00"]})).await;
    assert_eq!(
        (s.as_u16(), b["field"].as_str()),
        (400, Some("skipped_occurrences")),
        "{b}"
    );

    let res = api
        .http
        .get(format!("{}{path}/calendar.ics", api.base))
        .bearer_auth(&ann.token)
        .send()
        .await
        .unwrap();
    let ics = res.text().await.unwrap().replace("\r\n ", "");
    for needle in [
        "DTSTART;TZID=Europe/Berlin:20270131T180000\r\n",
        // The last second of 31 August in Berlin (CEST), in UTC.
        "RRULE:FREQ=MONTHLY;UNTIL=20270831T215959Z\r\n",
        "EXDATE;TZID=Europe/Berlin:20270131T180000\r\n",
        "EXDATE;TZID=Europe/Berlin:20270331T180000\r\n",
    ] {
        assert!(ics.contains(needle), "{needle} missing in {ics}");
    }

    // A count replaces the end date; both at once is refused.
    let (s, b) = patch(json!({"recurrence_count": 2, "recurrence_until": "2027-05-31"})).await;
    assert_eq!(
        (s.as_u16(), b["field"].as_str()),
        (400, Some("recurrence_until")),
        "{b}"
    );
    let (s, m) = patch(json!({"recurrence_count": 2})).await;
    assert_eq!(s, 200, "{m}");
    assert_eq!(
        (&m["recurrence_count"], &m["recurrence_until"]),
        (&json!(2), &Value::Null)
    );
    assert_eq!(m["skipped_occurrences"].as_array().unwrap().len(), 2);

    // Changing the series drops the skipped instants that are no longer occurrences.
    let (_, m) = patch(json!({"recurrence_count": 1})).await;
    assert_eq!(m["skipped_occurrences"], json!(["2027-01-31T17:00:00Z"]));
    let (_, m) = patch(json!({"start_at": "2027-02-01T18:00:00+01:00"})).await;
    assert_eq!(m["skipped_occurrences"], json!([]));

    // `null` ends the series by neither; no recurrence clears the rest.
    let (_, m) =
        patch(json!({"recurrence_count": null, "skipped_occurrences": ["2027-03-01T17:00:00Z"]}))
            .await;
    assert_eq!(
        (&m["recurrence_count"], &m["skipped_occurrences"]),
        (&Value::Null, &json!(["2027-03-01T17:00:00Z"]))
    );
    let (_, m) = patch(json!({"recurrence": "none"})).await;
    assert_eq!(
        (
            &m["recurrence"],
            &m["skipped_occurrences"],
            &m["recurrence_until"]
        ),
        (&json!("none"), &json!([]), &Value::Null)
    );
}

/// WHIP and WHEP pass the same door as the WebSocket: lobby, lock and cancellation refuse them.
#[tokio::test]
async fn whip_and_whep_pass_the_meetings_door() {
    let server = common::start().await;
    let api = Api::new(&server);
    let ann = api.signup("ann@example.org", "Ann").await;
    let (s, m) = api
        .call(
            Some(&ann),
            Method::POST,
            "/api/v1/meetings",
            Some(json!({"title": "Town hall", "lobby": true})),
        )
        .await;
    assert_eq!(s, 201, "{m}");
    let room = m["room"].as_str().unwrap().to_string();
    let path = format!("/api/v1/meetings/{}", m["id"].as_str().unwrap());
    let api = &api;
    let token = |who: Option<&Account>, name: &str| {
        let body = if who.is_some() {
            json!({})
        } else {
            json!({"name": name})
        };
        let path = format!("/api/v1/rooms/{room}/join");
        let who = who.cloned();
        async move {
            let (s, b) = api
                .call(who.as_ref(), Method::POST, &path, Some(body))
                .await;
            assert_eq!(s, 200, "{b}");
            b["token"].as_str().unwrap().to_string()
        }
    };
    let host = token(Some(&ann), "").await;
    let guest = token(None, "Guest").await;
    // An offer that is not SDP: past the door it gets 400 bad_sdp, so 400 means admitted.
    let offer = |door: &'static str, token: String| {
        let url = format!("{}/{door}/{room}", api.base);
        let http = api.http.clone();
        async move {
            let res = http
                .post(url)
                .bearer_auth(token)
                .header("content-type", "application/sdp")
                .body("v=0")
                .send()
                .await
                .unwrap();
            let status = res.status();
            (status, res.json::<Value>().await.unwrap())
        }
    };
    for door in ["whip", "whep"] {
        let (s, b) = offer(door, guest.clone()).await;
        assert_error(s, &b, 403, "lobby");
        let (s, b) = offer(door, host.clone()).await;
        assert_error(s, &b, 400, "bad_sdp");
    }
    let (s, _) = api
        .call(
            Some(&ann),
            Method::PATCH,
            &path,
            Some(json!({"lobby": false, "locked": true})),
        )
        .await;
    assert_eq!(s, 200);
    for door in ["whip", "whep"] {
        let (s, b) = offer(door, guest.clone()).await;
        assert_error(s, &b, 403, "meeting_locked");
        let (s, b) = offer(door, host.clone()).await;
        assert_error(s, &b, 400, "bad_sdp");
    }
    assert_eq!(
        api.call(Some(&ann), Method::DELETE, &path, None).await.0,
        204
    );
    for door in ["whip", "whep"] {
        for t in [&guest, &host] {
            let (s, b) = offer(door, t.clone()).await;
            assert_error(s, &b, 410, "meeting_cancelled");
        }
    }
}

/// Only stored meetings and ad-hoc rooms this server made hand out guest tokens; an ad-hoc
/// room's creator is its host through the host key.
#[tokio::test]
async fn guest_tokens_only_for_meetings_and_signed_ad_hoc_rooms() {
    let server = common::start().await;
    let api = &Api::new(&server);
    let join = |room: String, body: Value| {
        let path = format!("/api/v1/rooms/{room}/join");
        async move { api.call(None, Method::POST, &path, Some(body)).await }
    };
    for room in ["standup", "abc-defg-hjk", "abc-defg-hjk-aaaaaa"] {
        let (s, b) = join(room.into(), json!({"name": "Mallory"})).await;
        assert_error(s, &b, 404, "no_such_meeting");
    }
    let (s, adhoc) = api.call(None, Method::POST, "/api/v1/meetings", None).await;
    assert_eq!(s, 201);
    let room = adhoc["room"].as_str().unwrap().to_string();
    let key = adhoc["host_key"].as_str().unwrap().to_string();
    assert_eq!(adhoc["url"], format!("/m/{room}"));
    let (s, b) = join(room.clone(), json!({"name": "Ann", "host_key": key})).await;
    assert_eq!((s.as_u16(), b["host"].as_bool()), (200, Some(true)), "{b}");
    let (s, b) = join(room.clone(), json!({"name": "Bob"})).await;
    assert_eq!((s.as_u16(), b["host"].as_bool()), (200, Some(false)), "{b}");
    let (s, b) = join(
        room.clone(),
        json!({"name": "Eve", "host_key": "x".repeat(24)}),
    )
    .await;
    assert_eq!((s.as_u16(), b["host"].as_bool()), (200, Some(false)), "{b}");
    // Another ad-hoc room's key makes nobody host here.
    let (_, other) = api.call(None, Method::POST, "/api/v1/meetings", None).await;
    let (s, b) = join(
        room.clone(),
        json!({"name": "Eve", "host_key": other["host_key"]}),
    )
    .await;
    assert_eq!((s.as_u16(), b["host"].as_bool()), (200, Some(false)), "{b}");
    let mut tampered = room.clone();
    tampered.pop();
    tampered.push(if room.ends_with('a') { 'b' } else { 'a' });
    let (s, b) = join(tampered.clone(), json!({"name": "Mallory"})).await;
    assert_error(s, &b, 404, "no_such_meeting");

    // Who is in the call, before joining: the same rooms as guest tokens.
    let people = |room: String| {
        let path = format!("/api/v1/rooms/{room}/people");
        async move { api.call(None, Method::GET, &path, None).await }
    };
    for room in ["standup".to_string(), tampered] {
        let (s, b) = people(room).await;
        assert_eq!((s.as_u16(), &b["count"]), (200, &json!(0)), "{b}");
        assert_eq!(b["refusal"]["error"], "no_such_meeting", "{b}");
    }
    let (s, b) = people(room.clone()).await;
    assert_eq!((s.as_u16(), b), (200, json!({"count": 0, "names": []})));
    let (_, gus) = join(room.clone(), json!({"name": "Gus"})).await;
    let _ws = signal_join(api, gus["token"].as_str().unwrap()).await;
    let (_, b) = people(room.clone()).await;
    assert_eq!(b, json!({"count": 1, "names": ["Gus"]}));
}

#[tokio::test]
async fn contacts_blocks_presence_and_ringing() {
    let server = common::start().await;
    let api = Api::new(&server);
    let ann = api.signup("ann@example.org", "Ann").await;
    let bob = api.signup("bob@example.org", "Bob Builder").await;
    let eve = api.signup("eve@example.org", "Eve").await;
    macro_rules! req {
        ($from:expr, $to:expr) => {
            api.call(Some($from), Method::POST, "/api/v1/contacts/requests", Some(json!({"user_id": $to})))
        };
    }

    // A stranger is found by their exact address, not by part of a name or a domain.
    for q in ["builder", "example.org"] {
        let (s, found) = api
            .call(
                Some(&ann),
                Method::GET,
                &format!("/api/v1/users?q={q}"),
                None,
            )
            .await;
        assert_eq!((s.as_u16(), &found["items"]), (200, &json!([])), "{q}");
    }
    let (s, found) = api
        .call(
            Some(&ann),
            Method::GET,
            "/api/v1/users?q=Bob@Example.org",
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(found["items"][0]["id"], bob.id.as_str());
    let (_, found) = api
        .call(Some(&ann), Method::GET, "/api/v1/users?q=%25", None)
        .await;
    assert_eq!(
        found.get("items"),
        None,
        "a 1-character query is refused: {found}"
    );
    assert_eq!(
        api.call(Some(&ann), Method::GET, "/api/v1/users?q=a", None)
            .await
            .0,
        400
    );
    assert_eq!(
        api.call(Some(&ann), Method::GET, "/api/v1/users", None)
            .await
            .0,
        400
    );
    assert_eq!(
        api.call(None, Method::GET, "/api/v1/users?q=bob", None)
            .await
            .0,
        401
    );

    let (s, b) = req!(&ann, &ann.id).await;
    assert_error(s, &b, 409, "self");
    let (s, b) = req!(&ann, "nosuchuser").await;
    assert_error(s, &b, 404, "not_found");
    assert_eq!(req!(&ann, &bob.id).await.0, 201);
    let (s, b) = req!(&ann, &bob.id).await;
    assert_error(s, &b, 409, "already_requested");
    let (_, r) = api
        .call(Some(&bob), Method::GET, "/api/v1/contacts/requests", None)
        .await;
    assert_eq!(r["incoming"][0]["id"], ann.id.as_str());
    let (_, r) = api
        .call(Some(&ann), Method::GET, "/api/v1/contacts/requests", None)
        .await;
    assert_eq!(r["outgoing"][0]["id"], bob.id.as_str());
    let (s, _) = api
        .call(
            Some(&eve),
            Method::POST,
            &format!("/api/v1/contacts/requests/{}/accept", ann.id),
            None,
        )
        .await;
    assert_eq!(s, 404, "only the asked user can accept");

    // Bob opens the app (event feed) before accepting, so Ann later sees him online.
    let mut bob_feed = feed(&api, &bob).await;
    assert_eq!(
        api.call(
            Some(&bob),
            Method::POST,
            &format!("/api/v1/contacts/requests/{}/accept", ann.id),
            None
        )
        .await
        .0,
        204
    );
    assert_eq!(next_event(&mut bob_feed).await["type"], "contacts_changed");
    let (s, b) = req!(&bob, &ann.id).await;
    assert_error(s, &b, 409, "already_contacts");
    let (_, contacts) = api
        .call(Some(&ann), Method::GET, "/api/v1/contacts", None)
        .await;
    assert_eq!(contacts["items"][0]["id"], bob.id.as_str());
    assert_eq!(contacts["items"][0]["presence"], "online");

    // Ann's feed starts with Bob's presence and follows his changes.
    let mut ann_feed = feed(&api, &ann).await;
    let first = next_event(&mut ann_feed).await;
    assert_eq!(
        (
            first["type"].as_str(),
            first["user_id"].as_str(),
            first["presence"].as_str()
        ),
        (Some("presence"), Some(bob.id.as_str()), Some("online"))
    );
    assert_eq!(
        next_event(&mut bob_feed).await["presence"],
        "online",
        "Bob learns Ann came online"
    );
    drop(bob_feed);
    let gone = next_event(&mut ann_feed).await;
    assert_eq!(
        (gone["user_id"].as_str(), gone["presence"].as_str()),
        (Some(bob.id.as_str()), Some("offline"))
    );

    // Calling a contact rings every open app of theirs.
    let mut bob_feed = feed(&api, &bob).await;
    assert_eq!(next_event(&mut ann_feed).await["presence"], "online");
    let (s, call) = api
        .call(
            Some(&ann),
            Method::POST,
            &format!("/api/v1/contacts/{}/call", bob.id),
            None,
        )
        .await;
    assert_eq!(s, 201, "{call}");
    let ring = loop {
        let e = next_event(&mut bob_feed).await;
        if e["type"] == "ring" {
            break e;
        }
    };
    assert_eq!(
        (ring["from"]["id"].as_str(), ring["url"].as_str()),
        (Some(ann.id.as_str()), call["url"].as_str())
    );
    let (s, _) = api
        .call(
            Some(&ann),
            Method::POST,
            &format!("/api/v1/contacts/{}/call", eve.id),
            None,
        )
        .await;
    assert_eq!(s, 404, "only contacts can be called");

    // Declining tells the caller; only an invitee can decline.
    let decline = format!("/api/v1/meetings/{}/decline", call["id"].as_str().unwrap());
    for who in [&eve, &ann] {
        let (s, b) = api.call(Some(who), Method::POST, &decline, None).await;
        assert_error(s, &b, 404, "not_found");
    }
    let (s, b) = api
        .call(
            Some(&bob),
            Method::POST,
            "/api/v1/meetings/nosuch/decline",
            None,
        )
        .await;
    assert_error(s, &b, 404, "not_found");
    assert_eq!(
        api.call(Some(&bob), Method::POST, &decline, None).await.0,
        204
    );
    let declined = loop {
        let e = next_event(&mut ann_feed).await;
        if e["type"] == "call_declined" {
            break e;
        }
    };
    assert_eq!(
        (
            declined["by"]["id"].as_str(),
            declined["meeting_id"].clone(),
            declined["room"].clone()
        ),
        (
            Some(bob.id.as_str()),
            call["id"].clone(),
            call["room"].clone()
        )
    );

    // A contact request is announced to its recipient.
    assert_eq!(req!(&eve, &bob.id).await.0, 201);
    let asked = loop {
        let e = next_event(&mut bob_feed).await;
        if e["type"] == "contact_request" {
            break e;
        }
    };
    assert_eq!(asked["from"]["id"], eve.id.as_str());

    // In a call, Bob is shown in a meeting.
    let room = call["room"].as_str().unwrap();
    let (_, join) = api
        .call(
            Some(&bob),
            Method::POST,
            &format!("/api/v1/rooms/{room}/join"),
            Some(json!({})),
        )
        .await;
    let ws = signal_join(&api, join["token"].as_str().unwrap()).await;
    let e = loop {
        let e = next_event(&mut ann_feed).await;
        if e["type"] == "presence" {
            break e;
        }
    };
    assert_eq!(e["presence"], "in_meeting");
    drop(ws);

    // Remove, block, unblock.
    assert_eq!(
        api.call(
            Some(&ann),
            Method::DELETE,
            &format!("/api/v1/contacts/{}", bob.id),
            None
        )
        .await
        .0,
        204
    );
    assert_eq!(
        api.call(
            Some(&ann),
            Method::DELETE,
            &format!("/api/v1/contacts/{}", bob.id),
            None
        )
        .await
        .0,
        404
    );
    assert_eq!(req!(&eve, &ann.id).await.0, 201);
    assert_eq!(
        api.call(
            Some(&ann),
            Method::POST,
            "/api/v1/blocks",
            Some(json!({"user_id": eve.id}))
        )
        .await
        .0,
        204
    );
    let (_, r) = api
        .call(Some(&ann), Method::GET, "/api/v1/contacts/requests", None)
        .await;
    assert_eq!(r["incoming"], json!([]), "blocking drops the request");
    let (s, b) = req!(&eve, &ann.id).await;
    assert_error(s, &b, 409, "blocked");
    let (_, found) = api
        .call(
            Some(&eve),
            Method::GET,
            "/api/v1/users?q=ann@example.org",
            None,
        )
        .await;
    assert_eq!(
        found["items"],
        json!([]),
        "a blocker is not found by the blocked"
    );
    let (_, blocked) = api
        .call(Some(&ann), Method::GET, "/api/v1/blocks", None)
        .await;
    assert_eq!(blocked["items"][0]["id"], eve.id.as_str());
    assert_eq!(
        api.call(
            Some(&ann),
            Method::DELETE,
            &format!("/api/v1/blocks/{}", eve.id),
            None
        )
        .await
        .0,
        204
    );
    assert_eq!(req!(&eve, &ann.id).await.0, 201);
    // Decline and withdraw.
    assert_eq!(
        api.call(
            Some(&ann),
            Method::POST,
            &format!("/api/v1/contacts/requests/{}/decline", eve.id),
            None
        )
        .await
        .0,
        204
    );
    assert_eq!(req!(&eve, &ann.id).await.0, 201);
    assert_eq!(
        api.call(
            Some(&eve),
            Method::DELETE,
            &format!("/api/v1/contacts/requests/{}", ann.id),
            None
        )
        .await
        .0,
        204
    );
    assert_eq!(
        api.call(
            Some(&eve),
            Method::DELETE,
            &format!("/api/v1/contacts/requests/{}", ann.id),
            None
        )
        .await
        .0,
        404
    );
}

#[tokio::test]
async fn attendance_becomes_history() {
    let server = common::start().await;
    let api = Api::new(&server);
    let ann = api.signup("ann@example.org", "Ann").await;
    let (_, m) = api
        .call(
            Some(&ann),
            Method::POST,
            "/api/v1/meetings",
            Some(json!({"title": "Stand-up"})),
        )
        .await;
    let room = m["room"].as_str().unwrap();
    let (_, guest) = api
        .call(
            None,
            Method::POST,
            &format!("/api/v1/rooms/{room}/join"),
            Some(json!({"name": "Gus"})),
        )
        .await;
    let mut ws = signal_join(&api, guest["token"].as_str().unwrap()).await;
    ws.send(Message::Text(r#"{"type":"leave"}"#.into()))
        .await
        .unwrap();
    while ws.next().await.is_some() {}
    let history = wait_for(|| async {
        let (_, h) = api
            .call(Some(&ann), Method::GET, "/api/v1/history", None)
            .await;
        h["items"][0]["attendees"][0]["left_at"]
            .is_string()
            .then_some(h)
    })
    .await;
    let attendee = &history["items"][0]["attendees"][0];
    assert_eq!(
        (attendee["name"].as_str(), attendee["user_id"].as_null()),
        (Some("Gus"), Some(()))
    );
    assert_eq!(history["items"][0]["meeting"]["title"], "Stand-up");
    assert_eq!(
        api.call(None, Method::GET, "/api/v1/history", None).await.0,
        401
    );
}

#[tokio::test]
async fn a_restart_keeps_accounts_sessions_meetings_and_contacts() {
    let settings = common::settings();
    let server = common::start_with(&settings).await;
    let api = Api::new(&server);
    let ann = api.signup("ann@example.org", "Ann").await;
    let bob = api.signup("bob@example.org", "Bob").await;
    api.befriend(&ann, &bob).await;
    let (_, m) = api
        .call(
            Some(&ann),
            Method::POST,
            "/api/v1/meetings",
            Some(json!({"title": "Kept", "invitees": [bob.id]})),
        )
        .await;
    server.serve.abort();
    let _ = server.serve.await;

    let server = common::start_with(&settings).await;
    let api = Api::new(&server);
    let (s, me) = api.call(Some(&ann), Method::GET, "/api/v1/me", None).await;
    assert_eq!(
        (s.as_u16(), me["id"].as_str()),
        (200, Some(ann.id.as_str())),
        "the session survived"
    );
    let (s, _) = api
        .call(
            None,
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({"email": "bob@example.org", "password": "correct horse"})),
        )
        .await;
    assert_eq!(s, 200);
    let (_, contacts) = api
        .call(Some(&bob), Method::GET, "/api/v1/contacts", None)
        .await;
    assert_eq!(contacts["items"][0]["id"], ann.id.as_str());
    let (_, meetings) = api
        .call(Some(&bob), Method::GET, "/api/v1/meetings", None)
        .await;
    assert_eq!(meetings["items"][0]["id"], m["id"]);
}

#[tokio::test]
async fn the_api_runs_on_postgresql_and_keeps_data_across_a_restart() {
    sqlx::any::install_default_drivers();
    let server_url = std::env::var("STOA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let (base, _) = server_url.rsplit_once('/').expect("a database URL");
    let url = format!("{base}/stoa_api_{:016x}", rand_u64());
    sqlx::Any::create_database(&url).await.unwrap_or_else(|e| {
        panic!("PostgreSQL is needed (STOA_TEST_POSTGRES_URL, default {server_url}): {e}")
    });
    let run = tokio::spawn({
        let url = url.clone();
        async move {
            let mut settings = common::settings();
            settings.database_url = url;
            let server = common::start_with(&settings).await;
            let api = Api::new(&server);
            let ann = api.signup("ann@example.org", "Ann").await;
            let bob = api.signup("bob@example.org", "Bob").await;
            api.befriend(&ann, &bob).await;
            let (s, m) = api
                .call(
                    Some(&ann),
                    Method::POST,
                    "/api/v1/meetings",
                    Some(json!({"title": "On Postgres", "invitees": [bob.id]})),
                )
                .await;
            assert_eq!(s, 201, "{m}");
            server.serve.abort();
            let _ = server.serve.await;

            let server = common::start_with(&settings).await;
            let api = Api::new(&server);
            let (_, meetings) = api
                .call(Some(&bob), Method::GET, "/api/v1/meetings", None)
                .await;
            assert_eq!(meetings["items"][0]["title"], "On Postgres");
            let (_, contacts) = api
                .call(Some(&ann), Method::GET, "/api/v1/contacts", None)
                .await;
            assert_eq!(contacts["items"][0]["id"], bob.id.as_str());
            server.serve.abort();
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
async fn deleting_an_account_takes_its_meetings_and_contacts_and_frees_the_address() {
    let server = common::start().await;
    let api = Api::new(&server);
    let ann = api.signup("ann@example.org", "Ann").await;
    let bob = api.signup("bob@example.org", "Bob").await;
    api.befriend(&ann, &bob).await;
    let (_, m) = api
        .call(
            Some(&ann),
            Method::POST,
            "/api/v1/meetings",
            Some(json!({"title": "Ann's"})),
        )
        .await;
    let room = m["room"].as_str().unwrap().to_string();
    let (s, b) = api
        .call(
            Some(&ann),
            Method::DELETE,
            "/api/v1/me",
            Some(json!({"password": "wrong password"})),
        )
        .await;
    assert_error(s, &b, 403, "wrong_password");
    let (s, b) = api
        .call(Some(&ann), Method::DELETE, "/api/v1/me", Some(json!({})))
        .await;
    assert_error(s, &b, 400, "invalid_body");
    let res = api
        .http
        .delete(format!("{}/api/v1/me", api.base))
        .bearer_auth(&ann.token)
        .json(&json!({"password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let cookie = res.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.starts_with("stoa_session=;") && cookie.contains("Max-Age=0"),
        "{cookie}"
    );

    let (s, b) = api.call(Some(&ann), Method::GET, "/api/v1/me", None).await;
    assert_error(s, &b, 401, "unauthorized");
    let (s, b) = api
        .call(
            None,
            Method::POST,
            &format!("/api/v1/rooms/{room}/join"),
            Some(json!({"name": "Gus"})),
        )
        .await;
    assert_error(s, &b, 404, "no_such_meeting");
    let (_, contacts) = api
        .call(Some(&bob), Method::GET, "/api/v1/contacts", None)
        .await;
    assert_eq!(contacts["items"], json!([]), "Ann left Bob's contacts");
    let (_, found) = api
        .call(
            Some(&bob),
            Method::GET,
            "/api/v1/users?q=ann@example.org",
            None,
        )
        .await;
    assert_eq!(found["items"], json!([]), "nobody finds Ann");
    // The address can be used again, by a new account.
    let again = api.signup("ann@example.org", "Ann again").await;
    assert_ne!(again.id, ann.id);
}

#[tokio::test]
async fn every_user_endpoint_refuses_anonymous_requests() {
    let server = common::start().await;
    let api = Api::new(&server);
    let (_, doc) = api
        .call(None, Method::GET, "/api/v1/openapi.json", None)
        .await;
    // Open to everyone: signing up, logging in, who is signed in, ad-hoc meeting links,
    // joining a room and the network test.
    let open = [
        "get /api/v1/nettest",
        "get /api/v1/session",
        "post /api/v1/auth/signup",
        "post /api/v1/auth/login",
        "post /api/v1/meetings",
        "post /api/v1/rooms/{room}/join",
        "get /api/v1/rooms/{room}/people",
    ];
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            if open.contains(&format!("{method} {path}").as_str()) {
                continue;
            }
            let concrete = path
                .replace("{id}", "x")
                .replace("{user_id}", "x")
                .replace("{room}", "x");
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (s, b) = api.call(None, m, &concrete, Some(json!({}))).await;
            // Room endpoints take a room access token, the others a session.
            let want = if path.starts_with("/api/v1/rooms/") {
                "token_missing"
            } else {
                "unauthorized"
            };
            assert_error(s, &b, 401, want);
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} operations checked");
}

#[tokio::test]
async fn a_bad_link_shows_a_page_to_browsers_and_json_to_api_clients() {
    let server = common::start().await;
    let api = Api::new(&server);
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    for (path, title, code) in [
        ("/nope", "Page not found", "not_found"),
        (
            "/m/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            "This is not a meeting link",
            "invalid_room",
        ),
    ] {
        let get = |accept: Option<&'static str>| {
            let mut req = api.http.get(format!("{}{path}", api.base));
            if let Some(a) = accept {
                req = req.header("accept", a);
            }
            req.send()
        };
        let res = get(Some(browser)).await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        let html = res.text().await.unwrap();
        assert!(
            html.contains(&format!("<h1 id=\"error-title\">{title}</h1>")),
            "{html}"
        );
        assert!(!html.contains("<script>") && !html.contains("{{"), "{html}");
        for accept in [None, Some("application/json")] {
            let res = get(accept).await.unwrap();
            assert_eq!(res.status(), 404, "{path} {accept:?}");
            let body: Value = res.json().await.unwrap();
            assert_error(StatusCode::NOT_FOUND, &body, 404, code);
        }
    }
}

fn rand_u64() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let server = common::start().await;
    let api = Api::new(&server);
    let (s, doc) = api
        .call(None, Method::GET, "/api/v1/openapi.json", None)
        .await;
    assert_eq!(s, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/v1/auth/signup",
        "/api/v1/session",
        "/api/v1/meetings/{id}/decline",
        "/api/v1/meetings/{id}/calendar.ics",
        "/api/v1/contacts/{user_id}/call",
        "/api/v1/rooms/{room}/join",
        "/api/v1/rooms/{room}/people",
        "/api/v1/history",
        "/api/v1/rooms/{room}/limits",
        "/api/v1/rooms/{room}/participants/{participant}/limits",
        "/api/v1/rooms/{room}/counters",
        "/api/v1/nettest",
    ] {
        assert!(paths.contains_key(p), "{p} missing");
    }
    assert_eq!(paths.len(), 28, "{:?}", paths.keys().collect::<Vec<_>>());
    // Error codes are a closed list that every error body refers to.
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["ErrorBody"]["properties"]["error"]["$ref"],
        "#/components/schemas/ApiErrorCode"
    );
    let codes: Vec<&str> = schemas["ApiErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    for code in [
        "invalid_field",
        "token_missing",
        "email_taken",
        "self",
        "meeting_locked",
    ] {
        assert!(codes.contains(&code), "{code} not in {codes:?}");
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn feed(api: &Api, who: &Account) -> Socket {
    let mut req = format!("{}/api/v1/events", api.base.replace("http", "ws"))
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", who.token).parse().unwrap(),
    );
    tokio_tungstenite::connect_async(req)
        .await
        .expect("event feed opens")
        .0
}

async fn next_event(ws: &mut Socket) -> Value {
    loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
            .await
            .expect("an event within 5 s")
            .expect("feed open")
            .unwrap();
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

/// Joins a call over signaling and waits for `joined`.
async fn signal_join(api: &Api, token: &str) -> Socket {
    let url = format!("{}/ws", api.base.replace("http", "ws"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.send(Message::Text(
        json!({"type": "join", "token": token}).to_string().into(),
    ))
    .await
    .unwrap();
    loop {
        if next_event(&mut ws).await["type"] == "joined" {
            return ws;
        }
    }
}

async fn wait_for<T, F: std::future::Future<Output = Option<T>>>(mut f: impl FnMut() -> F) -> T {
    for _ in 0..50 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("condition not met within 5 s");
}
