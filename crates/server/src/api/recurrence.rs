//! The occurrences of a recurring meeting: every day, week or month from its first date (a
//! monthly series meets on the first date's day of the month and skips months without it, as
//! RFC 5545's `FREQ=MONTHLY` does), at the first start's wall-clock time in the meeting's
//! zone, until its count or end date. `web/js/time.js` steps through them the same way.

use std::str::FromStr;

use chrono::{
    DateTime, Datelike, Days, LocalResult, Months, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc,
};
use chrono_tz::Tz;
use stoa_store::{MeetingDraft, Millis, Recurrence};

/// No slot on or after this year is looked at: the API takes dates in the years 2000 to 2199,
/// so a series without end has no occurrence anyone can name beyond it.
const HORIZON_YEAR: i32 = 2200;

/// Where a series ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Never,
    /// After this many occurrences, skipped ones included.
    Count(i64),
    /// On this local date: an occurrence that starts on it still takes place.
    Until(NaiveDate),
}

/// A recurring meeting's rule in its own time zone.
#[derive(Debug, Clone)]
pub struct Series {
    tz: Tz,
    recurrence: Recurrence,
    /// The first occurrence's start, local time.
    first: NaiveDateTime,
    end: End,
}

impl Series {
    /// The series of a recurring meeting; `None` for one that does not repeat or has no start.
    pub fn of(draft: &MeetingDraft) -> Option<Series> {
        if draft.recurrence == Recurrence::None {
            return None;
        }
        let tz = Tz::from_str(&draft.time_zone).unwrap_or(Tz::UTC);
        let first = DateTime::from_timestamp_millis(draft.start_at?)?
            .with_timezone(&tz)
            .naive_local();
        let end = match (draft.recurrence_count, draft.recurrence_until.as_deref()) {
            (Some(n), _) => End::Count(n),
            (None, Some(date)) => parse_date(date).map_or(End::Never, End::Until),
            (None, None) => End::Never,
        };
        Some(Series {
            tz,
            recurrence: draft.recurrence,
            first,
            end,
        })
    }

    pub fn end(&self) -> End {
        self.end
    }

    /// The local date of the first occurrence.
    pub fn first_date(&self) -> NaiveDate {
        self.first.date()
    }

    /// Whether an occurrence starts at `at` (Unix ms).
    pub fn is_occurrence(&self, at: Millis) -> bool {
        let Some(t) = DateTime::from_timestamp_millis(at) else {
            return false;
        };
        let date = t.with_timezone(&self.tz).date_naive();
        self.dates_from(self.slot_before(date))
            .map(|d| self.start_on(d))
            .take_while(|start| *start <= t)
            .any(|start| start == t)
    }

    /// The start of the last occurrence; `None` for a series without end.
    pub fn last_start(&self) -> Option<DateTime<Utc>> {
        if self.end == End::Never {
            return None;
        }
        self.dates_from(0).last().map(|d| self.start_on(d))
    }

    /// The last instant of local `date` in the series' zone.
    pub fn end_of_day(&self, date: NaiveDate) -> DateTime<Utc> {
        let last_second = date
            .and_hms_opt(23, 59, 59)
            .expect("23:59:59 is a time of day");
        local_instant(self.tz, last_second)
    }

    /// The occurrence starts from the first on, in order.
    #[cfg(test)]
    fn starts(&self) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        self.dates_from(0).map(|d| self.start_on(d))
    }

    fn start_on(&self, date: NaiveDate) -> DateTime<Utc> {
        local_instant(self.tz, date.and_time(self.first.time()))
    }

    /// The local dates of the occurrences in slots `from..`, up to the series' end.
    fn dates_from(&self, from: u32) -> impl Iterator<Item = NaiveDate> + '_ {
        let earlier = self.slot_dates(0..from).count() as i64;
        self.slot_dates(from..)
            .zip(earlier..)
            .take_while(|(date, index)| match self.end {
                End::Never => true,
                End::Count(n) => *index < n,
                End::Until(last) => *date <= last,
            })
            .map(|(date, _)| date)
    }

    /// The dates of `slots` (the k-th day, week or month after the first date) that the series
    /// meets on, before the horizon.
    fn slot_dates<'a>(
        &'a self,
        slots: impl Iterator<Item = u32> + 'a,
    ) -> impl Iterator<Item = NaiveDate> + 'a {
        slots
            .map_while(|k| self.slot_anchor(k))
            .take_while(|anchor| anchor.year() < HORIZON_YEAR)
            .filter_map(|anchor| self.date_in_slot(anchor))
    }

    /// Slot `k`'s date, or for a monthly series the first of its month.
    fn slot_anchor(&self, k: u32) -> Option<NaiveDate> {
        let first = self.first.date();
        match self.recurrence {
            Recurrence::Monthly => first.with_day(1)?.checked_add_months(Months::new(k)),
            Recurrence::Weekly => first.checked_add_days(Days::new(7 * u64::from(k))),
            Recurrence::Daily | Recurrence::None => first.checked_add_days(Days::new(k.into())),
        }
    }

    /// The date the series meets on in the slot of `anchor`: none in a month without its day.
    fn date_in_slot(&self, anchor: NaiveDate) -> Option<NaiveDate> {
        match self.recurrence {
            Recurrence::Monthly => anchor.with_day(self.first.day()),
            _ => Some(anchor),
        }
    }

    /// A slot no later than the one an occurrence on local `date` would be in.
    fn slot_before(&self, date: NaiveDate) -> u32 {
        let first = self.first.date();
        let slot = match self.recurrence {
            Recurrence::Monthly => {
                i64::from(date.year() - first.year()) * 12 + i64::from(date.month())
                    - i64::from(first.month())
            }
            Recurrence::Weekly => (date - first).num_days() / 7,
            Recurrence::Daily | Recurrence::None => (date - first).num_days(),
        };
        u32::try_from(slot - 1).unwrap_or(0)
    }
}

/// A strict `YYYY-MM-DD` date.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let shaped = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    shaped
        .then(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .flatten()
}

/// The instant when the clocks in `tz` show `local`, read as RFC 5545 (3.3.5) reads a local
/// time: one that a change of offset repeats is its first instant, one that a change skips is
/// read with the offset from before the change.
pub fn local_instant(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(earlier, _) => earlier.with_timezone(&Utc),
        LocalResult::None => {
            let a_day_before = local - chrono::Duration::days(1);
            let offset = tz.offset_from_utc_datetime(&a_day_before).fix();
            (local - offset).and_utc()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(zone: &str, start: &str, recurrence: Recurrence) -> Series {
        let start = DateTime::parse_from_rfc3339(start).unwrap();
        Series::of(&MeetingDraft {
            title: "t".into(),
            description: String::new(),
            start_at: Some(start.timestamp_millis()),
            time_zone: zone.into(),
            duration_min: 30,
            recurrence,
            recurrence_count: None,
            recurrence_until: None,
            skipped_occurrences: Vec::new(),
            require_sign_in: false,
            lobby: false,
        })
        .unwrap()
    }

    fn rfc3339(starts: impl Iterator<Item = DateTime<Utc>>, n: usize) -> Vec<String> {
        starts.take(n).map(|t| t.to_rfc3339()).collect()
    }

    #[test]
    fn a_weekly_meeting_keeps_its_local_time_across_a_daylight_saving_change() {
        // 10:00 in Berlin: CET (+01:00) until 28 March 2027, then CEST (+02:00).
        let s = series(
            "Europe/Berlin",
            "2027-03-18T10:00:00+01:00",
            Recurrence::Weekly,
        );
        assert_eq!(
            rfc3339(s.starts(), 3),
            [
                "2027-03-18T09:00:00+00:00",
                "2027-03-25T09:00:00+00:00",
                "2027-04-01T08:00:00+00:00",
            ]
        );
        assert!(s.is_occurrence(ms("2027-04-01T10:00:00+02:00")));
        assert!(!s.is_occurrence(ms("2027-04-01T10:00:00+01:00")));
    }

    #[test]
    fn a_monthly_meeting_on_the_31st_skips_shorter_months_and_they_do_not_count() {
        let mut s = series(
            "Europe/Berlin",
            "2027-01-31T18:00:00+01:00",
            Recurrence::Monthly,
        );
        let dates: Vec<String> = s
            .starts()
            .take(5)
            .map(|t| t.with_timezone(&s.tz).format("%Y-%m-%d %H:%M").to_string())
            .collect();
        assert_eq!(
            dates,
            [
                "2027-01-31 18:00",
                "2027-03-31 18:00",
                "2027-05-31 18:00",
                "2027-07-31 18:00",
                "2027-08-31 18:00",
            ]
        );
        assert!(!s.is_occurrence(ms("2027-02-28T18:00:00+01:00")));
        assert!(s.is_occurrence(ms("2027-08-31T18:00:00+02:00")));
        s.end = End::Count(3);
        assert_eq!(s.last_start(), Some(utc("2027-05-31T16:00:00Z")));
        assert!(!s.is_occurrence(ms("2027-07-31T18:00:00+02:00")));
    }

    #[test]
    fn february_29_comes_every_four_years() {
        let s = series("UTC", "2028-02-29T09:00:00Z", Recurrence::Monthly);
        let february: Vec<String> = s
            .starts()
            .filter(|t| t.month() == 2)
            .take(2)
            .map(|t| t.to_rfc3339())
            .collect();
        assert_eq!(
            february,
            ["2028-02-29T09:00:00+00:00", "2032-02-29T09:00:00+00:00"]
        );
    }

    #[test]
    fn an_end_date_is_inclusive_in_the_meetings_zone() {
        // 23:30 in New York is already the next day in UTC.
        let mut s = series(
            "America/New_York",
            "2027-01-01T23:30:00-05:00",
            Recurrence::Daily,
        );
        s.end = End::Until(NaiveDate::from_ymd_opt(2027, 1, 3).unwrap());
        assert_eq!(s.starts().count(), 3);
        assert_eq!(s.last_start(), Some(utc("2027-01-04T04:30:00Z")));
        assert_eq!(
            s.end_of_day(NaiveDate::from_ymd_opt(2027, 1, 3).unwrap()),
            utc("2027-01-04T04:59:59Z")
        );
        assert!(s.is_occurrence(ms("2027-01-03T23:30:00-05:00")));
        assert!(!s.is_occurrence(ms("2027-01-04T23:30:00-05:00")));
    }

    #[test]
    fn a_series_without_end_is_followed_up_to_the_horizon_quickly() {
        let s = series(
            "Europe/Berlin",
            "2000-01-01T10:00:00+01:00",
            Recurrence::Daily,
        );
        assert!(s.is_occurrence(ms("2199-12-31T10:00:00+01:00")));
        assert!(!s.is_occurrence(ms("2199-12-31T10:01:00+01:00")));
        assert_eq!(s.last_start(), None);
    }

    #[test]
    fn local_times_that_a_change_skips_or_repeats() {
        let berlin = Tz::Europe__Berlin;
        let at = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        // 02:30 does not exist on 28 March 2027: read with CET, it is 03:30 CEST.
        assert_eq!(
            local_instant(berlin, at("2027-03-28 02:30")),
            utc("2027-03-28T01:30:00Z")
        );
        // 02:30 happens twice on 31 October 2027: the first, still CEST.
        assert_eq!(
            local_instant(berlin, at("2027-10-31 02:30")),
            utc("2027-10-31T00:30:00Z")
        );
    }

    #[test]
    fn dates_are_strict() {
        assert_eq!(
            parse_date("2027-03-31"),
            NaiveDate::from_ymd_opt(2027, 3, 31)
        );
        for bad in [
            "2027-3-31",
            "2027-02-30",
            "27-03-31",
            "2027-03-31T00:00",
            "+2027-03-3",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn ms(s: &str) -> Millis {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }
}
