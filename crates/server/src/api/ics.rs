//! A meeting as an iCalendar file (RFC 5545): one `VEVENT`, with an `RRULE` (and an `EXDATE`
//! per skipped occurrence) for recurring meetings anchored in the meeting's time zone, and a
//! `VTIMEZONE` describing that zone's offset changes over the meeting's span so calendar
//! programs keep the local time across daylight-saving changes.

use std::fmt::Write;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc, Weekday,
};
use chrono_tz::{OffsetComponents, Tz};
use stoa_store::{Meeting, Recurrence, User, UserSummary};

use super::recurrence::{End, Series};

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
    let series = Series::of(d);
    let local_zone = (tz != Tz::UTC && tz.name() != "Etc/UTC").then_some(tz);
    if local_zone.is_some() {
        lines.extend(vtimezone(tz, start, span_end(series.as_ref(), start)));
    }
    lines.push("BEGIN:VEVENT".into());
    lines.push(format!("UID:{}@stoa", meeting.id));
    lines.push(format!("DTSTAMP:{}", stamp(utc(now))));
    lines.push(format!("LAST-MODIFIED:{}", stamp(utc(meeting.updated_at))));
    lines.push(date_time("DTSTART", start, local_zone));
    lines.push(format!("DURATION:PT{}M", d.duration_min));
    if let Some(series) = &series {
        lines.extend(rrule(d.recurrence, series));
        lines.extend(
            d.skipped_occurrences
                .iter()
                .map(|at| date_time("EXDATE", utc(*at), local_zone)),
        );
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

/// A DATE-TIME property: local time with the zone's TZID, or UTC for a meeting in UTC.
fn date_time(name: &str, t: DateTime<Utc>, zone: Option<Tz>) -> String {
    match zone {
        Some(tz) => format!(
            "{name};TZID={}:{}",
            tz.name(),
            t.with_timezone(&tz).naive_local().format("%Y%m%dT%H%M%S")
        ),
        None => format!("{name}:{}", stamp(t)),
    }
}

/// The rule of a recurring meeting. An end date becomes `UNTIL` in UTC (as RFC 5545 requires
/// with a zoned `DTSTART`): the last second of that day in the meeting's zone.
fn rrule(recurrence: Recurrence, series: &Series) -> Option<String> {
    let freq = match recurrence {
        Recurrence::None => return None,
        Recurrence::Daily => "DAILY",
        Recurrence::Weekly => "WEEKLY",
        Recurrence::Monthly => "MONTHLY",
    };
    Some(match series.end() {
        End::Never => format!("RRULE:FREQ={freq}"),
        End::Count(n) => format!("RRULE:FREQ={freq};COUNT={n}"),
        End::Until(date) => format!("RRULE:FREQ={freq};UNTIL={}", stamp(series.end_of_day(date))),
    })
}

/// The last instant the meeting occupies, for the zone's transition list.
fn span_end(series: Option<&Series>, start: DateTime<Utc>) -> DateTime<Utc> {
    let last_start = match series {
        None => start,
        Some(series) => series
            .last_start()
            .unwrap_or(start + Duration::days(365 * OPEN_ENDED_YEARS)),
    };
    last_start + Duration::days(1)
}

/// A `VTIMEZONE` for the meeting's span `start..end`. A zone whose offset changes follow
/// yearly rules ("second Sunday of March at 02:00") gets those rules as `RRULE`s, so calendars
/// keep the local time in every later year too; any other zone gets the offset at `start` and
/// one observance per change up to `end`.
fn vtimezone(tz: Tz, start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<String> {
    let mut lines = vec!["BEGIN:VTIMEZONE".to_string(), format!("TZID:{}", tz.name())];
    if let Some(rules) = yearly_rules(tz, start, end) {
        for (change, rule) in rules {
            lines.extend(observance(
                change.from,
                change.to,
                change.local,
                Some(&rule),
            ));
        }
    } else {
        let first = offset_at(tz, start);
        let before_start = (start - Duration::days(1)).with_timezone(&tz).naive_local();
        lines.extend(observance(first, first, before_start, None));
        for c in changes(tz, start, end) {
            lines.extend(observance(c.from, c.to, c.local, None));
        }
    }
    lines.push("END:VTIMEZONE".into());
    lines
}

/// One change of a zone's offset.
struct Change {
    from: (i32, bool),
    to: (i32, bool),
    /// When it happens, in local time of the offset before the change (an observance's DTSTART).
    local: NaiveDateTime,
}

/// The offset changes in `(from, to]`, found a day at a time, then to the second.
fn changes(tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Change> {
    let mut out = Vec::new();
    let mut previous = offset_at(tz, from);
    let mut t = from;
    while t < to {
        let next = t + Duration::days(1);
        let offset = offset_at(tz, next);
        if offset != previous {
            let at = transition(tz, t, next);
            out.push(Change {
                from: previous,
                to: offset,
                local: (at + Duration::seconds(previous.0 as i64)).naive_utc(),
            });
            previous = offset;
        }
        t = next;
    }
    out
}

/// A yearly rule: month, weekday, and which one in the month (1..=4, or -1 for the last).
#[derive(Clone, Copy)]
struct Yearly {
    month: u32,
    weekday: Weekday,
    nth: i8,
}

impl Yearly {
    /// The rules that describe `day`: its ordinal in the month, and "last" when it is.
    fn candidates(day: NaiveDate) -> Vec<Yearly> {
        let nth = (day.day0() / 7 + 1) as i8;
        let mut out = vec![];
        if nth <= 4 {
            out.push(Yearly {
                month: day.month(),
                weekday: day.weekday(),
                nth,
            });
        }
        if (day + Duration::days(7)).month() != day.month() {
            out.push(Yearly {
                month: day.month(),
                weekday: day.weekday(),
                nth: -1,
            });
        }
        out
    }

    fn day_in(&self, year: i32) -> Option<NaiveDate> {
        if self.nth > 0 {
            return NaiveDate::from_weekday_of_month_opt(
                year,
                self.month,
                self.weekday,
                self.nth as u8,
            );
        }
        let next_month =
            NaiveDate::from_ymd_opt(year + self.month as i32 / 12, self.month % 12 + 1, 1)?;
        let mut d = next_month - Duration::days(1);
        while d.weekday() != self.weekday {
            d -= Duration::days(1);
        }
        Some(d)
    }

    fn rrule(&self) -> String {
        let day = match self.weekday {
            Weekday::Mon => "MO",
            Weekday::Tue => "TU",
            Weekday::Wed => "WE",
            Weekday::Thu => "TH",
            Weekday::Fri => "FR",
            Weekday::Sat => "SA",
            Weekday::Sun => "SU",
        };
        format!(
            "RRULE:FREQ=YEARLY;BYMONTH={};BYDAY={}{day}",
            self.month, self.nth
        )
    }
}

/// The zone's two yearly changes as rules, with the last change of each before `start` as its
/// first onset, if the zone's database follows those rules exactly from then until `end` (at
/// least two and at most ten years on); `None` for zones without daylight saving or with
/// irregular changes.
fn yearly_rules(tz: Tz, start: DateTime<Utc>, end: DateTime<Utc>) -> Option<Vec<(Change, String)>> {
    let year_before = start - Duration::days(366);
    let seen = changes(tz, year_before, start);
    if seen.len() != 2 {
        return None;
    }
    let horizon = end.clamp(
        start + Duration::days(2 * 366),
        start + Duration::days(10 * 366),
    );
    let later = changes(tz, start, horizon);
    let horizon_local = horizon.naive_utc();
    let mut rules = Vec::new();
    for change in seen {
        let rule = Yearly::candidates(change.local.date())
            .into_iter()
            .find(|rule| {
                // Every later year's onset of this rule must be one of the zone's real changes.
                (change.local.year() + 1..)
                    .map_while(|y| rule.day_in(y).map(|d| d.and_time(change.local.time())))
                    .take_while(|at| *at < horizon_local - Duration::days(1))
                    .all(|at| {
                        later
                            .iter()
                            .any(|c| c.local == at && c.to == change.to && c.from == change.from)
                    })
            })?;
        rules.push((change, rule));
    }
    // ... and the zone makes no other change meanwhile.
    let explained = |c: &Change| {
        rules.iter().any(|(first, rule)| {
            c.from == first.from
                && c.to == first.to
                && rule
                    .day_in(c.local.year())
                    .map(|d| d.and_time(first.local.time()))
                    == Some(c.local)
        })
    };
    if !later.iter().all(explained) {
        return None;
    }
    Some(
        rules
            .into_iter()
            .map(|(c, r)| {
                let rule = r.rrule();
                (c, rule)
            })
            .collect(),
    )
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

fn observance(
    from: (i32, bool),
    to: (i32, bool),
    local_start: NaiveDateTime,
    rrule: Option<&str>,
) -> Vec<String> {
    let kind = if to.1 { "DAYLIGHT" } else { "STANDARD" };
    let mut lines = vec![
        format!("BEGIN:{kind}"),
        format!("DTSTART:{}", local_start.format("%Y%m%dT%H%M%S")),
    ];
    lines.extend(rrule.map(String::from));
    lines.extend([
        format!("TZOFFSETFROM:{}", utc_offset(from.0)),
        format!("TZOFFSETTO:{}", utc_offset(to.0)),
        format!("END:{kind}"),
    ]);
    lines
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
                recurrence_until: None,
                skipped_occurrences: Vec::new(),
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
        // The EU rules: CEST from the last Sunday of March, CET from the last one of October.
        assert!(ics.contains("BEGIN:DAYLIGHT\r\nDTSTART:20260329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nEND:DAYLIGHT\r\n"), "{ics}");
        assert!(ics.contains("BEGIN:STANDARD\r\nDTSTART:20261025T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\n"), "{ics}");
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
    fn monthly_until_a_date_with_skipped_occurrences() {
        let mut m = meeting("Europe/Berlin", Recurrence::Monthly, None);
        m.draft.recurrence_until = Some("2027-03-31".into());
        // 1 January and 1 March 2027, 10:00 in Berlin (CET).
        m.draft.skipped_occurrences = vec![1_798_794_000_000, 1_803_891_600_000];
        let ics = render(&m, &host(), &[], "http://h", 0);
        // The last second of 31 March in Berlin (CEST by then) is 21:59:59 UTC.
        assert!(
            ics.contains("RRULE:FREQ=MONTHLY;UNTIL=20270331T215959Z\r\n"),
            "{ics}"
        );
        assert!(ics.contains("EXDATE;TZID=Europe/Berlin:20270101T100000\r\n"));
        assert!(ics.contains("EXDATE;TZID=Europe/Berlin:20270301T100000\r\n"));
        assert!(!ics.contains("COUNT="));
    }

    #[test]
    fn a_utc_meeting_has_its_end_and_skips_in_utc() {
        let mut m = meeting("UTC", Recurrence::Daily, None);
        m.draft.recurrence_until = Some("2026-12-10".into());
        m.draft.skipped_occurrences = vec![1_796_202_000_000];
        let ics = render(&m, &host(), &[], "http://h", 0);
        assert!(
            ics.contains("RRULE:FREQ=DAILY;UNTIL=20261210T235959Z\r\n"),
            "{ics}"
        );
        assert!(ics.contains("EXDATE:20261202T090000Z\r\n"), "{ics}");
    }

    #[test]
    fn a_zone_with_daylight_saving_gets_its_rules_even_for_one_meeting() {
        let m = meeting("America/New_York", Recurrence::None, None);
        let ics = render(&m, &host(), &[], "http://h", 0);
        // 2026-12-01T09:00Z is 04:00 in New York (EST).
        assert!(
            ics.contains("DTSTART;TZID=America/New_York:20261201T040000\r\n"),
            "{ics}"
        );
        assert!(ics.contains("BEGIN:DAYLIGHT\r\nDTSTART:20260308T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\r\nTZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400\r\nEND:DAYLIGHT\r\n"), "{ics}");
        assert!(ics.contains("BEGIN:STANDARD\r\nDTSTART:20261101T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\nEND:STANDARD\r\n"), "{ics}");
        assert_eq!(ics.matches("BEGIN:DAYLIGHT").count(), 1, "{ics}");
        assert_eq!(ics.matches("BEGIN:STANDARD").count(), 1, "{ics}");
    }

    #[test]
    fn a_zone_without_daylight_saving_has_one_offset() {
        let m = meeting("Asia/Kolkata", Recurrence::Weekly, None);
        let ics = render(&m, &host(), &[], "http://h", 0);
        assert!(ics.contains("BEGIN:STANDARD\r\nDTSTART:20261130T143000\r\nTZOFFSETFROM:+0530\r\nTZOFFSETTO:+0530\r\nEND:STANDARD\r\n"), "{ics}");
        assert!(
            !ics.contains("DAYLIGHT") && !ics.contains("FREQ=YEARLY"),
            "{ics}"
        );
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
