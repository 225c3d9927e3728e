//! Civil dates as day numbers, and South Korea's public holidays.

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm).
///
/// A day past the end of its month rolls over into the next month, which the
/// calendar relies on for "one year after 29 February".
pub(crate) fn days_from_civil(y: i32, m: u8, d: u8) -> i64 {
    let (m, d) = (i64::from(m), i64::from(d));
    let y = i64::from(y) - i64::from(m <= 2);
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `(year, month, day)` of a day number.
pub(crate) fn civil_from_days(z: i64) -> (i32, u8, u8) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y as i32, m as u8, d as u8)
}

/// Day of the week of a day number: 0 = Monday … 6 = Sunday.
pub(crate) fn weekday(z: i64) -> u8 {
    // 1970-01-01 was a Thursday.
    (z + 3).rem_euclid(7) as u8
}

/// Whether `(y, m, d)` is a real date with a four-digit year, as GTFS dates need.
pub(crate) fn is_valid(y: i32, m: u8, d: u8) -> bool {
    if !(1000..=9998).contains(&y) || !(1..=12).contains(&m) || d == 0 {
        return false;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    d <= days
}

/// `YYYYMMDD` of a day number, as GTFS writes dates.
pub(crate) fn gtfs_date(z: i64) -> String {
    let (y, m, d) = civil_from_days(z);
    format!("{y:04}{m:02}{d:02}")
}

/// Public holidays of `year` as `(month, day)`.
///
/// The solar ones are fixed; the lunar ones (설날, 부처님오신날, 추석) are
/// tabulated for the years a generated calendar is likely to cover, and left
/// out for other years rather than approximated.
pub(crate) fn korean_holidays(year: i32) -> Vec<(u8, u8)> {
    let mut days = vec![
        (1, 1),   // 신정
        (3, 1),   // 삼일절
        (5, 5),   // 어린이날
        (6, 6),   // 현충일
        (8, 15),  // 광복절
        (10, 3),  // 개천절
        (10, 9),  // 한글날
        (12, 25), // 성탄절
    ];
    let lunar: &[(u8, u8)] = match year {
        2024 => &[
            (2, 9),
            (2, 10),
            (2, 11),
            (2, 12),
            (5, 15),
            (9, 16),
            (9, 17),
            (9, 18),
        ],
        2025 => &[
            (1, 28),
            (1, 29),
            (1, 30),
            (5, 6),
            (10, 5),
            (10, 6),
            (10, 7),
            (10, 8),
        ],
        2026 => &[
            (2, 16),
            (2, 17),
            (2, 18),
            (5, 24),
            (5, 25),
            (9, 24),
            (9, 25),
            (9, 26),
        ],
        2027 => &[
            (2, 6),
            (2, 7),
            (2, 8),
            (2, 9),
            (5, 13),
            (9, 14),
            (9, 15),
            (9, 16),
        ],
        2028 => &[(1, 26), (1, 27), (1, 28), (5, 2), (10, 2), (10, 3), (10, 4)],
        _ => &[],
    };
    days.extend_from_slice(lunar);
    days.sort_unstable();
    days.dedup();
    days
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_weekdays() {
        for z in -800_000..800_000 {
            if z % 997 != 0 {
                continue;
            }
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        // 2026-01-01 is a Thursday, 2024-02-29 exists, 2026-02-29 does not.
        assert_eq!(weekday(days_from_civil(2026, 1, 1)), 3);
        assert!(is_valid(2024, 2, 29));
        assert!(!is_valid(2026, 2, 29));
        assert_eq!(gtfs_date(days_from_civil(2026, 3, 1)), "20260301");
        // One year after 2024-02-29 rolls over to 2025-03-01.
        assert_eq!(civil_from_days(days_from_civil(2025, 2, 29)), (2025, 3, 1));
    }
}
