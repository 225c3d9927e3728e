//! The desk's figures: departments and districts ranked by the share of
//! complaints handled in time, and charts of volume, backlog and time to resolve.

use cityos_store::complaints::{DailyCounts, HandlingCounts};
use serde::Serialize;

/// One line of the ranking.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rank {
    /// Department or district code.
    pub code: String,
    /// Its name in English and Korean.
    pub name: String,
    /// Korean name.
    pub name_ko: String,
    /// Complaints filed in the window.
    pub total: i64,
    /// Resolved by their deadline.
    pub in_time: i64,
    /// Resolved late.
    pub late: i64,
    /// Open past their deadline.
    pub overdue: i64,
    /// `in_time / (in_time + late + overdue)`: of the complaints that fell due, the share
    /// handled in time; 1 when none fell due.
    pub share_in_time: f64,
}

/// Ranks by share handled in time, best first (ties: more complaints first).
pub fn rank(counts: Vec<HandlingCounts>, name: impl Fn(&str) -> (String, String)) -> Vec<Rank> {
    let mut out: Vec<Rank> = counts
        .into_iter()
        .map(|c| {
            let due = c.in_time + c.late + c.overdue;
            let (name, name_ko) = name(&c.key);
            Rank {
                share_in_time: if due == 0 {
                    1.0
                } else {
                    c.in_time as f64 / due as f64
                },
                code: c.key,
                name,
                name_ko,
                total: c.total,
                in_time: c.in_time,
                late: c.late,
                overdue: c.overdue,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.share_in_time
            .total_cmp(&a.share_in_time)
            .then(b.total.cmp(&a.total))
            .then(a.code.cmp(&b.code))
    });
    out
}

/// The charts' data: per day, complaints filed by service; per day, those still open;
/// and mean hours to resolve by service and by district.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Charts {
    /// Local dates, `YYYY-MM-DD`, oldest first.
    pub days: Vec<String>,
    /// Service code → filings per day (aligned with `days`).
    pub volume: std::collections::BTreeMap<String, Vec<i64>>,
    /// Complaints filed each day that are still open (aligned with `days`).
    pub backlog: Vec<i64>,
    /// Service code → mean hours from filing to resolution.
    pub hours_to_resolve_by_service: std::collections::BTreeMap<String, f64>,
    /// District code → mean hours from filing to resolution.
    pub hours_to_resolve_by_district: std::collections::BTreeMap<String, f64>,
}

/// Builds [`Charts`] from daily counts (days since the epoch, local).
pub fn charts(daily: &[DailyCounts]) -> Charts {
    use std::collections::BTreeMap;
    let mut days: Vec<i64> = daily.iter().map(|d| d.day).collect();
    days.dedup();
    let index = |day: i64| days.binary_search(&day).unwrap_or(0);
    let mut volume: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut backlog = vec![0; days.len()];
    let mut by_service: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut by_district: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for d in daily {
        let i = index(d.day);
        volume
            .entry(d.service_code.clone())
            .or_insert_with(|| vec![0; days.len()])[i] += d.filed;
        backlog[i] += d.filed - d.resolved;
        for (map, key) in [
            (&mut by_service, &d.service_code),
            (&mut by_district, &d.district),
        ] {
            let e = map.entry(key.clone()).or_default();
            e.0 += d.resolve_seconds;
            e.1 += d.resolved;
        }
    }
    let hours = |m: BTreeMap<String, (i64, i64)>| -> BTreeMap<String, f64> {
        m.into_iter()
            .filter(|(_, (_, n))| *n > 0)
            .map(|(k, (s, n))| (k, (s as f64 / n as f64 / 3600.0 * 10.0).round() / 10.0))
            .collect()
    };
    Charts {
        days: days
            .iter()
            .map(|&d| {
                jiff::civil::date(1970, 1, 1)
                    .checked_add(jiff::Span::new().days(d))
                    .map(|x| x.to_string())
                    .unwrap_or_default()
            })
            .collect(),
        volume,
        backlog,
        hours_to_resolve_by_service: hours(by_service),
        hours_to_resolve_by_district: hours(by_district),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(key: &str, total: i64, in_time: i64, late: i64, overdue: i64) -> HandlingCounts {
        HandlingCounts {
            key: key.into(),
            total,
            in_time,
            late,
            overdue,
        }
    }

    #[test]
    fn the_ranking_puts_the_best_share_in_time_first() {
        let ranked = rank(
            vec![
                counts("roads", 10, 5, 5, 0),
                counts("lighting", 4, 3, 0, 1),
                counts("traffic", 2, 0, 0, 0),
            ],
            |k| (k.to_uppercase(), k.into()),
        );
        let order: Vec<&str> = ranked.iter().map(|r| r.code.as_str()).collect();
        assert_eq!(order, ["traffic", "lighting", "roads"]);
        assert_eq!(ranked[1].share_in_time, 0.75);
        assert_eq!(ranked[2].name, "ROADS");
    }

    #[test]
    fn charts_align_every_series_with_the_days() {
        let d = |day, service: &str, filed, resolved, secs| DailyCounts {
            day,
            service_code: service.into(),
            district: "jung".into(),
            filed,
            resolved,
            resolve_seconds: secs,
        };
        let c = charts(&[
            d(20_000, "pothole", 3, 2, 7200),
            d(20_001, "trash", 1, 0, 0),
        ]);
        assert_eq!(c.days, ["2024-10-04", "2024-10-05"]);
        assert_eq!(c.volume["pothole"], [3, 0]);
        assert_eq!(c.volume["trash"], [0, 1]);
        assert_eq!(c.backlog, [1, 1]);
        assert_eq!(c.hours_to_resolve_by_service["pothole"], 1.0);
    }
}
