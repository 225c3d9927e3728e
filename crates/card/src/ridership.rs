//! Ridership from taps: boardings and alightings by stop, route and hour,
//! origin–destination pairs, and transfers between routes; exported as
//! CSV and as GTFS-ride's `ridership.txt`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use cityos_fare::{Tap, TapKind};
use jiff::civil::Date;
use serde::Serialize;

use crate::book::CardId;

/// Longest gap between alighting and boarding that is still a transfer, for flow counting.
const TRANSFER_GAP_MINUTES: i64 = 30;

/// Boardings and alightings at one place and hour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Taps in.
    pub boardings: u64,
    /// Taps out.
    pub alightings: u64,
}

/// Aggregated ridership.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Ridership {
    /// (service date, stop, route or "" for gates, hour) → counts.
    pub by_stop_route_hour: BTreeMap<(Date, String, String, i8), Counts>,
    /// (origin stop, destination stop) → legs ridden between them.
    pub origin_destination: BTreeMap<(String, String), u64>,
    /// (from route, to route) → transfers; gates count as the route "subway".
    pub transfers: BTreeMap<(String, String), u64>,
}

impl Ridership {
    /// Aggregates accepted taps, given per card in time order.
    pub fn from_taps<'a>(cards: impl IntoIterator<Item = (CardId, &'a [Tap])>) -> Ridership {
        let mut r = Ridership::default();
        for (_, taps) in cards {
            let mut open_in: Option<&Tap> = None;
            let mut last_out: Option<&Tap> = None;
            for tap in taps {
                let route = tap.route_id.clone().unwrap_or_default();
                let key = (tap.at.date(), tap.stop_id.clone(), route, tap.at.hour());
                let counts = r.by_stop_route_hour.entry(key).or_default();
                match tap.kind {
                    TapKind::In => {
                        counts.boardings += 1;
                        if let Some(out) = last_out {
                            let gap = tap.at.duration_since(out.at).as_mins();
                            if (0..=TRANSFER_GAP_MINUTES).contains(&gap) {
                                *r.transfers
                                    .entry((route_name(out), route_name(tap)))
                                    .or_default() += 1;
                            }
                        }
                        open_in = Some(tap);
                    }
                    TapKind::Out => {
                        counts.alightings += 1;
                        if let Some(boarding) = open_in.take() {
                            *r.origin_destination
                                .entry((boarding.stop_id.clone(), tap.stop_id.clone()))
                                .or_default() += 1;
                        }
                        last_out = Some(tap);
                    }
                }
            }
        }
        r
    }

    /// Totals per stop over everything aggregated.
    pub fn by_stop(&self) -> BTreeMap<&str, Counts> {
        let mut out: BTreeMap<&str, Counts> = BTreeMap::new();
        for ((_, stop, _, _), c) in &self.by_stop_route_hour {
            let e = out.entry(stop.as_str()).or_default();
            e.boardings += c.boardings;
            e.alightings += c.alightings;
        }
        out
    }

    /// Totals per hour of day.
    pub fn by_hour(&self) -> [Counts; 24] {
        let mut out = [Counts::default(); 24];
        for ((_, _, _, hour), c) in &self.by_stop_route_hour {
            let e = &mut out[(*hour).clamp(0, 23) as usize];
            e.boardings += c.boardings;
            e.alightings += c.alightings;
        }
        out
    }

    /// `date,stop_id,route_id,hour,boardings,alightings` rows.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("date,stop_id,route_id,hour,boardings,alightings\n");
        for ((date, stop, route, hour), c) in &self.by_stop_route_hour {
            let _ = writeln!(
                out,
                "{date},{},{},{hour},{},{}",
                csv_field(stop),
                csv_field(route),
                c.boardings,
                c.alightings
            );
        }
        out
    }

    /// `origin_stop_id,destination_stop_id,trips` rows.
    pub fn origin_destination_csv(&self) -> String {
        let mut out = String::from("origin_stop_id,destination_stop_id,trips\n");
        for ((o, d), n) in &self.origin_destination {
            let _ = writeln!(out, "{},{},{n}", csv_field(o), csv_field(d));
        }
        out
    }

    /// `from_route_id,to_route_id,transfers` rows.
    pub fn transfers_csv(&self) -> String {
        let mut out = String::from("from_route_id,to_route_id,transfers\n");
        for ((a, b), n) in &self.transfers {
            let _ = writeln!(out, "{},{},{n}", csv_field(a), csv_field(b));
        }
        out
    }

    /// GTFS-ride `ridership.txt`: one row per stop, route and hour of a service date.
    pub fn gtfs_ride_ridership(&self) -> String {
        let mut out = String::from(
            "total_boardings,total_alightings,ridership_start_date,ridership_end_date,ridership_start_time,ridership_end_time,route_id,stop_id\n",
        );
        for ((date, stop, route, hour), c) in &self.by_stop_route_hour {
            let day = date.strftime("%Y%m%d");
            let _ = writeln!(
                out,
                "{},{},{day},{day},{hour:02}:00:00,{hour:02}:59:59,{},{}",
                c.boardings,
                c.alightings,
                csv_field(route),
                csv_field(stop)
            );
        }
        out
    }

    /// GTFS-ride `ride_feed_info.txt` describing the export.
    pub fn gtfs_ride_feed_info(&self) -> String {
        let dates: Vec<Date> = self.by_stop_route_hour.keys().map(|k| k.0).collect();
        let (first, last) = match (dates.iter().min(), dates.iter().max()) {
            (Some(a), Some(b)) => (
                a.strftime("%Y%m%d").to_string(),
                b.strftime("%Y%m%d").to_string(),
            ),
            _ => (String::new(), String::new()),
        };
        // ride_files 2 = ridership.txt only, in the GTFS-ride enumeration.
        format!(
            "ride_files,ride_start_date,ride_end_date,ride_feed_version\n2,{first},{last},cityos\n"
        )
    }
}

fn route_name(tap: &Tap) -> String {
    tap.route_id.clone().unwrap_or_else(|| "subway".to_owned())
}

/// Quotes a CSV field when it needs it.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}
