//! GTFS times and dates.
//!
//! GTFS times are "HH:MM:SS" measured from noon minus 12 h of the service
//! day, so they may exceed 24:00:00 for trips running past midnight. We keep
//! them as seconds in a `u32` and only turn them into instants at the edge,
//! with the agency's time zone (see [`service_day_start`]).

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// Seconds since the start of a service day ("noon minus 12 h").
pub type ServiceSeconds = u32;

/// Marks a stop time whose arrival or departure the feed left empty.
pub const NO_TIME: ServiceSeconds = u32::MAX;

/// Parses a GTFS time `H:MM:SS` or `HH:MM:SS` (hours may exceed 23).
///
/// Returns `None` when the text is not a time; the caller knows the file and
/// line to report.
pub fn parse_time(text: &[u8]) -> Option<ServiceSeconds> {
    let text = trim(text);
    let (h, rest) = match text {
        [h, b':', rest @ ..] => (digit(*h)?, rest),
        [h1, h2, b':', rest @ ..] => (digit(*h1)? * 10 + digit(*h2)?, rest),
        [h1, h2, h3, b':', rest @ ..] => (digit(*h1)? * 100 + digit(*h2)? * 10 + digit(*h3)?, rest),
        _ => return None,
    };
    let [m1, m2, b':', s1, s2] = rest else {
        return None;
    };
    let m = digit(*m1)? * 10 + digit(*m2)?;
    let s = digit(*s1)? * 10 + digit(*s2)?;
    if m > 59 || s > 59 {
        return None;
    }
    Some(h * 3600 + m * 60 + s)
}

/// Formats service seconds as `HH:MM:SS` (hours may exceed 23).
pub fn format_time(secs: ServiceSeconds) -> String {
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Parses a GTFS date `YYYYMMDD`.
pub fn parse_date(text: &[u8]) -> Option<Date> {
    let text = trim(text);
    if text.len() != 8 {
        return None;
    }
    let mut n = [0i16; 8];
    for (slot, b) in n.iter_mut().zip(text) {
        *slot = i16::from(digit(*b)? as u8);
    }
    let year = n[0] * 1000 + n[1] * 100 + n[2] * 10 + n[3];
    let month = (n[4] * 10 + n[5]) as i8;
    let day = (n[6] * 10 + n[7]) as i8;
    Date::new(year, month, day).ok()
}

/// The instant a service day starts: noon minus 12 hours in `tz`.
///
/// On days when clocks change this differs from midnight, which is exactly
/// why GTFS defines it so.
pub fn service_day_start(date: Date, tz: &TimeZone) -> Option<Timestamp> {
    let noon = date.at(12, 0, 0, 0).to_zoned(tz.clone()).ok()?;
    noon.timestamp().checked_sub(12.hours()).ok()
}

fn digit(b: u8) -> Option<u32> {
    b.is_ascii_digit().then(|| u32::from(b - b'0'))
}

fn trim(text: &[u8]) -> &[u8] {
    text.trim_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_times_past_midnight_and_single_digit_hours() {
        assert_eq!(parse_time(b"5:30:00"), Some(5 * 3600 + 30 * 60));
        assert_eq!(parse_time(b"25:10:05"), Some(25 * 3600 + 10 * 60 + 5));
        assert_eq!(parse_time(b" 07:00:00 "), Some(7 * 3600));
        assert_eq!(parse_time(b"25:6x:00"), None);
        assert_eq!(parse_time(b"12:60:00"), None);
        assert_eq!(parse_time(b"12:00"), None);
        assert_eq!(parse_time(b""), None);
    }

    #[test]
    fn parses_dates_and_rejects_impossible_ones() {
        assert_eq!(
            parse_date(b"20180225"),
            Some(jiff::civil::date(2018, 2, 25))
        );
        assert_eq!(parse_date(b"20180230"), None);
        assert_eq!(parse_date(b"2018-02-2"), None);
    }

    #[test]
    fn service_day_starts_at_midnight_in_seoul() {
        let tz = TimeZone::get("Asia/Seoul").unwrap();
        let start = service_day_start(jiff::civil::date(2026, 3, 2), &tz).unwrap();
        assert_eq!(start.to_string(), "2026-03-01T15:00:00Z");
    }

    #[test]
    fn service_day_start_on_dst_change_is_noon_minus_12h() {
        // New York springs forward on 2026-03-08: the service day starts at 23:00 the day before.
        let tz = TimeZone::get("America/New_York").unwrap();
        let start = service_day_start(jiff::civil::date(2026, 3, 8), &tz).unwrap();
        assert_eq!(start.to_string(), "2026-03-08T04:00:00Z");
    }

    proptest! {
        #[test]
        fn time_round_trips(secs in 0u32..(48 * 3600)) {
            prop_assert_eq!(parse_time(format_time(secs).as_bytes()), Some(secs));
        }

        #[test]
        fn parse_time_never_panics(text in proptest::collection::vec(any::<u8>(), 0..12)) {
            let _ = parse_time(&text);
            let _ = parse_date(&text);
        }
    }
}
