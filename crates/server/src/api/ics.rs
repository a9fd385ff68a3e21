//! A meeting as an iCalendar file (RFC 5545): one `VEVENT`, with an `RRULE` for recurring
//! meetings anchored in the meeting's time zone, and a `VTIMEZONE` describing that zone's
//! offset changes over the meeting's span so calendar programs keep the local time across
//! daylight-saving changes.

use std::fmt::Write;
use std::str::FromStr;

use chrono::{DateTime, Duration, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::{OffsetComponents, Tz};
use stoa_store::{Meeting, Recurrence, User, UserSummary};

/// How far ahead a recurring meeting's zone transitions are listed when it has no end.
const OPEN_ENDED_YEARS: i64 = 5;

pub fn render(
    meeting: &Meeting,
    host: &User,
    invitees: &[UserSummary],
    base_url: &str,
    now: i64,
) -> String {
    let d = &meeting.draft;
    let start = utc(d.start_at.unwrap_or(meeting.created_at));
    let tz = Tz::from_str(&d.time_zone).unwrap_or(Tz::UTC);
    let url = format!("{base_url}/m/{}", meeting.room);
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_string(),
        "VERSION:2.0".into(),
        "PRODID:-//Stoa//Stoa meetings//EN".into(),
        "CALSCALE:GREGORIAN".into(),
        "METHOD:PUBLISH".into(),
    ];
    let local_zone = tz != Tz::UTC && tz.name() != "Etc/UTC";
    if local_zone {
        lines.extend(vtimezone(tz, start, span_end(meeting, start)));
    }
    lines.push("BEGIN:VEVENT".into());
    lines.push(format!("UID:{}@stoa", meeting.id));
    lines.push(format!("DTSTAMP:{}", stamp(utc(now))));
    lines.push(format!("LAST-MODIFIED:{}", stamp(utc(meeting.updated_at))));
    if local_zone {
        let local = start.with_timezone(&tz).naive_local();
        lines.push(format!(
            "DTSTART;TZID={}:{}",
            tz.name(),
            local.format("%Y%m%dT%H%M%S")
        ));
    } else {
        lines.push(format!("DTSTART:{}", stamp(start)));
    }
    lines.push(format!("DURATION:PT{}M", d.duration_min));
    if let Some(rule) = rrule(d.recurrence, d.recurrence_count) {
        lines.push(rule);
    }
    lines.push(format!("SUMMARY:{}", escape(&d.title)));
    let description = match d.description.is_empty() {
        true => format!("Join: {url}"),
        false => format!("{}\n\nJoin: {url}", d.description),
    };
    lines.push(format!("DESCRIPTION:{}", escape(&description)));
    lines.push(format!("LOCATION:{}", escape(&url)));
    lines.push(format!("URL:{url}"));
    lines.push(format!(
        "ORGANIZER;CN={}:mailto:{}",
        param(&host.display_name),
        host.email
    ));
    for i in invitees {
        lines.push(format!(
            "ATTENDEE;CN={};ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION:mailto:{}",
            param(&i.display_name),
            i.email
        ));
    }
    lines.push(format!(
        "STATUS:{}",
        if meeting.cancelled {
            "CANCELLED"
        } else {
            "CONFIRMED"
        }
    ));
    lines.push("END:VEVENT".into());
    lines.push("END:VCALENDAR".into());
    let mut out = String::new();
    for line in lines {
        fold(&line, &mut out);
    }
    out
}

fn utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

fn rrule(recurrence: Recurrence, count: Option<i64>) -> Option<String> {
    let freq = match recurrence {
        Recurrence::None => return None,
        Recurrence::Daily => "DAILY",
        Recurrence::Weekly => "WEEKLY",
    };
    Some(match count {
        Some(n) => format!("RRULE:FREQ={freq};COUNT={n}"),
        None => format!("RRULE:FREQ={freq}"),
    })
}

/// The last instant the meeting occupies, for the zone's transition list.
fn span_end(meeting: &Meeting, start: DateTime<Utc>) -> DateTime<Utc> {
    let d = &meeting.draft;
    let step = match d.recurrence {
        Recurrence::None => return start + Duration::days(1),
        Recurrence::Daily => Duration::days(1),
        Recurrence::Weekly => Duration::weeks(1),
    };
    match d.recurrence_count {
        Some(n) => start + step * (n as i32),
        None => start + Duration::days(365 * OPEN_ENDED_YEARS),
    }
}

/// A `VTIMEZONE` with one observance for the offset at `start` and one per change up to `end`.
fn vtimezone(tz: Tz, start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<String> {
    let mut lines = vec!["BEGIN:VTIMEZONE".to_string(), format!("TZID:{}", tz.name())];
    let first = offset_at(tz, start);
    let before_start = (start - Duration::days(1)).with_timezone(&tz).naive_local();
    lines.extend(observance(first, first, before_start));
    let mut previous = first;
    let mut t = start;
    while t < end {
        let next = t + Duration::days(1);
        let offset = offset_at(tz, next);
        if offset != previous {
            let at = transition(tz, t, next);
            // DTSTART of an observance is local time in the offset before the change.
            let local = (at + Duration::seconds(previous.0 as i64)).naive_utc();
            lines.extend(observance(previous, offset, local));
            previous = offset;
        }
        t = next;
    }
    lines.push("END:VTIMEZONE".into());
    lines
}

/// (total UTC offset in seconds, whether daylight saving is in effect).
fn offset_at(tz: Tz, t: DateTime<Utc>) -> (i32, bool) {
    let o = tz.offset_from_utc_datetime(&t.naive_utc());
    (o.fix().local_minus_utc(), !o.dst_offset().is_zero())
}

/// The first second in `(lo, hi]` with the offset of `hi`.
fn transition(tz: Tz, mut lo: DateTime<Utc>, mut hi: DateTime<Utc>) -> DateTime<Utc> {
    let target = offset_at(tz, hi);
    while hi - lo > Duration::seconds(1) {
        let mid = lo + (hi - lo) / 2;
        if offset_at(tz, mid) == target {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

fn observance(from: (i32, bool), to: (i32, bool), local_start: NaiveDateTime) -> Vec<String> {
    let kind = if to.1 { "DAYLIGHT" } else { "STANDARD" };
    vec![
        format!("BEGIN:{kind}"),
        format!("DTSTART:{}", local_start.format("%Y%m%dT%H%M%S")),
        format!("TZOFFSETFROM:{}", utc_offset(from.0)),
        format!("TZOFFSETTO:{}", utc_offset(to.0)),
        format!("END:{kind}"),
    ]
}

fn utc_offset(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let s = seconds.abs();
    format!("{sign}{:02}{:02}", s / 3600, (s % 3600) / 60)
}

/// TEXT value escaping (RFC 5545 §3.3.11).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A parameter value: quoted, with the characters a quoted value cannot hold removed.
fn param(text: &str) -> String {
    let clean: String = text
        .chars()
        .filter(|c| *c != '"' && !c.is_control())
        .collect();
    format!("\"{clean}\"")
}

/// Folds a content line at 75 octets without splitting a UTF-8 character; CRLF endings.
fn fold(line: &str, out: &mut String) {
    let mut width = 0;
    for c in line.chars() {
        if width + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    let _ = write!(out, "\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use stoa_store::MeetingDraft;

    fn meeting(tz: &str, recurrence: Recurrence, count: Option<i64>) -> Meeting {
        Meeting {
            id: "m1".into(),
            room: "abc-defg-hjk".into(),
            host_id: "u1".into(),
            draft: MeetingDraft {
                title: "Sync; planning, Q1".into(),
                description: "Agenda:\n- a\\b".into(),
                // 2026-12-01T09:00:00Z = 10:00 in Berlin (CET)
                start_at: Some(1_796_115_600_000),
                time_zone: tz.into(),
                duration_min: 30,
                recurrence,
                recurrence_count: count,
                require_sign_in: false,
                lobby: false,
            },
            locked: false,
            cancelled: false,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn host() -> User {
        User {
            id: "u1".into(),
            email: "ann@example.org".into(),
            display_name: "Ann \"the host\"".into(),
            password_hash: String::new(),
            created_at: 0,
        }
    }

    #[test]
    fn weekly_meeting_in_a_zone_with_daylight_saving() {
        let m = meeting("Europe/Berlin", Recurrence::Weekly, Some(30));
        let ics = render(&m, &host(), &[], "http://h", 0);
        assert!(ics.ends_with("END:VCALENDAR\r\n"));
        assert!(
            ics.contains("DTSTART;TZID=Europe/Berlin:20261201T100000\r\n"),
            "{ics}"
        );
        assert!(ics.contains("RRULE:FREQ=WEEKLY;COUNT=30\r\n"));
        assert!(ics.contains("DURATION:PT30M\r\n"));
        // 30 weeks from December cross the March 2027 change to CEST.
        assert!(ics.contains("BEGIN:DAYLIGHT\r\nDTSTART:20270328T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n"), "{ics}");
        assert!(ics.contains("SUMMARY:Sync\\; planning\\, Q1\r\n"));
        assert!(
            ics.contains("DESCRIPTION:Agenda:\\n- a\\\\b\\n\\nJoin: http://h/m/abc-defg-hjk\r\n")
        );
        assert!(ics.contains("ORGANIZER;CN=\"Ann the host\":mailto:ann@example.org\r\n"));
        for line in ics.split("\r\n") {
            assert!(line.len() <= 75, "unfolded line: {line}");
        }
    }

    #[test]
    fn utc_meetings_have_no_zone_and_long_lines_fold() {
        let mut m = meeting("UTC", Recurrence::None, None);
        m.draft.title = "ü".repeat(100);
        m.cancelled = true;
        let ics = render(&m, &host(), &[], "", 0);
        assert!(!ics.contains("VTIMEZONE"));
        assert!(ics.contains("DTSTART:20261201T090000Z\r\n"));
        assert!(ics.contains("STATUS:CANCELLED"));
        assert!(!ics.contains("RRULE"));
        let unfolded = ics.replace("\r\n ", "");
        assert!(unfolded.contains(&format!("SUMMARY:{}\r\n", "ü".repeat(100))));
        for line in ics.split("\r\n") {
            assert!(line.len() <= 75);
        }
    }
}
