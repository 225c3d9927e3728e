//! Predictions made by another system: a GTFS-realtime TripUpdates feed
//! read into the same per-stop predictions the engine makes, so a city that
//! already predicts arrivals can use cityos's stop boards and feeds.
//!
//! GTFS-realtime's rules apply: a `StopTimeUpdate` gives an absolute `time`
//! or a `delay` against the timetable, and a delay carries on to the later
//! stops until the next update says otherwise. Stops are found by
//! `stop_sequence`, or by `stop_id` when the sequence is absent.

use jiff::civil::Date;

use cityos_transit::Network;

use crate::engine::StopPrediction;
use crate::gtfsrt::{FeedMessage, StopScheduleRelationship};

/// One trip run's predictions from another system.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalRun {
    /// The trip (index into the network's trips).
    pub trip: u32,
    /// Its service date.
    pub date: Date,
    /// The vehicle, if the feed names it.
    pub vehicle_id: Option<String>,
    /// Predicted arrivals at the stops ahead, in stop order.
    pub predictions: Vec<StopPrediction>,
}

/// What reading a feed found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ExternalPredictions {
    /// The runs predicted.
    pub runs: Vec<ExternalRun>,
    /// Trip updates naming a trip the network does not have, or a date it
    /// does not run on.
    pub unknown_trips: usize,
}

/// Reads the trip updates of `feed` against `network`, keeping only
/// predictions still ahead of `now` (POSIX seconds).
pub fn trip_updates_to_predictions(
    network: &Network,
    feed: &FeedMessage,
    now: i64,
) -> ExternalPredictions {
    let data = network.data();
    let tz = network.timezone();
    let mut out = ExternalPredictions::default();
    for update in feed.entity.iter().filter_map(|e| e.trip_update.as_ref()) {
        let Some(trip) = update
            .trip
            .trip_id
            .as_deref()
            .and_then(|id| data.trips.ids.get(id))
        else {
            out.unknown_trips += 1;
            continue;
        };
        let range = data.trips.stop_time_range(trip);
        let st = &data.stop_times;
        // The service date the feed names, or the one whose run is nearest now.
        let date = match update.trip.start_date.as_deref() {
            Some(text) => parse_yyyymmdd(text),
            None => nearest_date(network, trip, now),
        };
        let Some(date) = date.filter(|&d| {
            data.services
                .is_active(data.trips.service[trip as usize], d)
        }) else {
            out.unknown_trips += 1;
            continue;
        };
        let Some(origin) = cityos_transit::time::service_day_start(date, tz).map(|t| t.as_second())
        else {
            continue;
        };
        let scheduled = |i: usize| (origin + i64::from(st.arrival[range.start + i])) as f64;
        // Each update's stop index and its (time, uncertainty), in order.
        let mut anchors: Vec<(usize, Option<f64>, Option<i32>, f64)> = Vec::new();
        let mut skipped = Vec::new();
        for stu in &update.stop_time_update {
            let index = match (stu.stop_sequence, stu.stop_id.as_deref()) {
                (Some(seq), _) => st.sequence[range.clone()].iter().position(|&s| s == seq),
                (None, Some(id)) => data
                    .stops
                    .ids
                    .get(id)
                    .and_then(|s| st.stop[range.clone()].iter().position(|&x| x == s)),
                (None, None) => None,
            };
            let Some(index) = index else { continue };
            if stu.schedule_relationship == Some(StopScheduleRelationship::Skipped as i32) {
                skipped.push(index);
                continue;
            }
            let event = stu.arrival.as_ref().or(stu.departure.as_ref());
            let time = event.and_then(|e| e.time).map(|t| t as f64);
            let delay = event.and_then(|e| e.delay);
            let uncertainty = f64::from(event.and_then(|e| e.uncertainty).unwrap_or(0).max(0));
            anchors.push((index, time, delay, uncertainty));
        }
        anchors.sort_by_key(|a| a.0);
        let Some(&(first, ..)) = anchors.first() else {
            continue;
        };
        let mut predictions = Vec::new();
        let mut k = 0;
        // The delay in force, carried from the last update to later stops.
        let mut carried = (0.0, 0.0);
        for i in first..range.len() {
            if k < anchors.len() && anchors[k].0 == i {
                let (_, time, delay, uncertainty) = anchors[k];
                let delay = match (time, delay) {
                    (Some(t), _) => t - scheduled(i),
                    (None, Some(d)) => f64::from(d),
                    (None, None) => carried.0,
                };
                carried = (delay, uncertainty);
                k += 1;
            }
            let arrival = scheduled(i) + carried.0;
            if arrival < now as f64 || skipped.contains(&i) {
                continue;
            }
            predictions.push(StopPrediction {
                stop_index: i as u32,
                arrival,
                p10: arrival - carried.1,
                p90: arrival + carried.1,
                scheduled: scheduled(i),
            });
        }
        if predictions.is_empty() {
            continue;
        }
        out.runs.push(ExternalRun {
            trip,
            date,
            vehicle_id: update.vehicle.as_ref().and_then(|v| v.id.clone()),
            predictions,
        });
    }
    out
}

fn parse_yyyymmdd(text: &str) -> Option<Date> {
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| text[r].parse::<i16>().ok();
    Date::new(n(0..4)?, n(4..6)? as i8, n(6..8)? as i8).ok()
}

/// Today or yesterday in the network's zone: whichever's run of `trip` is nearer `now`.
fn nearest_date(network: &Network, trip: u32, now: i64) -> Option<Date> {
    let data = network.data();
    let range = data.trips.stop_time_range(trip);
    let (first, last) = (
        i64::from(*data.stop_times.departure.get(range.start)?),
        i64::from(*data.stop_times.arrival.get(range.end - 1)?),
    );
    let today = jiff::Timestamp::from_second(now)
        .ok()?
        .to_zoned(network.timezone().clone())
        .date();
    [today, today.yesterday().ok()?]
        .into_iter()
        .filter_map(|day| {
            let start =
                cityos_transit::time::service_day_start(day, network.timezone())?.as_second();
            let gap = (start + first - now).max(now - start - last).max(0);
            Some((gap, day))
        })
        .min()
        .map(|(_, day)| day)
}
