//! Synthetic vehicle positions for benchmarks and scoring: the simulated
//! fleet of `cityos-sim` ([`cityos_sim::vehicles`]) as position records, so
//! the demo's vehicles and the ones predictions are scored on are the same.

use std::ops::Range;

use jiff::civil::Date;

use cityos_sim::vehicles::{Fleet, FleetOptions};
use cityos_transit::Network;

use crate::decode::PositionRecord;

/// What to synthesise.
#[derive(Debug, Clone)]
pub struct SynthOptions {
    /// The service date whose trips run (with the night trips of the day
    /// before, past its midnight).
    pub date: Date,
    /// Only positions in this window, POSIX seconds.
    pub window: Range<i64>,
    /// Seconds between two positions of one vehicle.
    pub every_s: i64,
    /// GPS error, metres (standard deviation per axis).
    pub gps_error_m: f64,
    /// Seed of the random draws.
    pub seed: u64,
}

/// Drives every trip of `network` running on `options.date`, and the
/// trips of the day before that run past its midnight (night buses), and
/// returns the positions inside the window, in time order, each with its
/// trip, service date and vehicle id.
pub fn drive(network: &Network, options: &SynthOptions) -> Vec<PositionRecord> {
    let mut positions = drive_day(network, options, options.date);
    let latest = network.data().stop_times.arrival.iter().max().copied();
    let day_before = options.date.yesterday().ok();
    let reaches_window = |day, time| {
        network
            .instant(day, time)
            .is_some_and(|end| end.as_second() >= options.window.start)
    };
    if let (Some(day), Some(time)) = (day_before, latest)
        && reaches_window(day, time)
    {
        positions.extend(drive_day(network, options, day));
        positions.sort_by_key(|p| p.timestamp);
    }
    positions
}

/// The positions inside the window of the trips of service day `date`.
fn drive_day(network: &Network, options: &SynthOptions, date: Date) -> Vec<PositionRecord> {
    let fleet = Fleet::plan(
        network,
        &FleetOptions {
            seed: options.seed,
            ..FleetOptions::new(date)
        },
    );
    let trips = &network.data().trips;
    fleet
        .reports(
            options.window.clone(),
            options.every_s,
            options.gps_error_m,
            options.seed,
        )
        .into_iter()
        .map(|fix| PositionRecord {
            vehicle_id: fleet.vehicle_id(fix.vehicle).to_owned(),
            trip_id: trips.ids.id(fix.trip).to_owned(),
            start_date: Some(date),
            latitude: fix.lat,
            longitude: fix.lon,
            bearing: Some(fix.bearing),
            speed: Some(fix.speed),
            timestamp: Some(fix.time),
            ..PositionRecord::default()
        })
        .collect()
}
