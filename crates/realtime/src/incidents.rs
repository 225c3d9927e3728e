//! Incidents: disruptions an operator declares, or the system proposes
//! from what vehicles do (one stalled between stops, two of a route
//! bunched together), and the GTFS-realtime alerts riders see.
//!
//! An automatic incident is only a proposal: it reaches riders once an
//! operator confirms it, because a halted bus can also be a driver change.

use serde::{Deserialize, Serialize};

use cityos_transit::{Network, haversine_m};

use crate::engine::RunInfo;
use crate::gtfsrt::{
    Alert, Cause as RtCause, Effect as RtEffect, EntitySelector, SeverityLevel, TimeRange,
    TranslatedString, Translation,
};
use crate::index::TripIndex;

/// A vehicle halted this long away from its first and last stop is stalled.
pub const STALLED_AFTER_S: i64 = 300;
/// Two vehicles of one pattern closer than this along it are bunched.
pub const BUNCHED_WITHIN_M: f32 = 150.0;
/// A vehicle between its first and last stop that has not reported for
/// this long has lost contact: several missed reports at the usual 10–30 s.
pub const SILENT_AFTER_S: i64 = 120;

/// Why service is disrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// Not known.
    Unknown,
    /// Another cause.
    Other,
    /// A breakdown or other technical problem.
    TechnicalProblem,
    /// A strike.
    Strike,
    /// A demonstration.
    Demonstration,
    /// An accident.
    Accident,
    /// A holiday.
    Holiday,
    /// The weather.
    Weather,
    /// Maintenance.
    Maintenance,
    /// Road or track works.
    Construction,
    /// Police activity.
    PoliceActivity,
    /// A medical emergency.
    MedicalEmergency,
}

/// What the disruption does to service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// No service.
    NoService,
    /// Less service.
    ReducedService,
    /// Significant delays.
    SignificantDelays,
    /// A detour.
    Detour,
    /// More service.
    AdditionalService,
    /// Service changed otherwise.
    ModifiedService,
    /// Another effect.
    Other,
    /// Not known.
    Unknown,
    /// A stop moved.
    StopMoved,
}

/// How severe it is for riders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// For information.
    Info,
    /// A warning.
    Warning,
    /// Severe.
    Severe,
}

/// A circle on the map: every stop inside is affected.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Area {
    /// Centre latitude.
    pub lat: f64,
    /// Centre longitude.
    pub lon: f64,
    /// Radius, metres (10 to 20,000).
    pub radius_m: f64,
}

/// A disruption, as operators write it and riders read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incident {
    /// The headline (1 to 200 characters), in the city's language.
    pub header: String,
    /// The headline in English, if given.
    #[serde(default)]
    pub header_en: Option<String>,
    /// More detail (up to 2,000 characters).
    #[serde(default)]
    pub description: Option<String>,
    /// Why.
    pub cause: Cause,
    /// What it does.
    pub effect: Effect,
    /// How severe it is.
    #[serde(default = "default_severity")]
    pub severity: Severity,
    /// Affected routes (`route_id`s).
    #[serde(default)]
    pub routes: Vec<String>,
    /// Affected stops (`stop_id`s).
    #[serde(default)]
    pub stops: Vec<String>,
    /// An affected area: its stops are affected too.
    #[serde(default)]
    pub area: Option<Area>,
    /// From when, POSIX seconds; open when absent.
    #[serde(default)]
    pub starts_at: Option<i64>,
    /// Until when, POSIX seconds; open when absent.
    #[serde(default)]
    pub ends_at: Option<i64>,
    /// The vehicle concerned, for incidents detected from one.
    #[serde(default)]
    pub vehicle_id: Option<String>,
}

fn default_severity() -> Severity {
    Severity::Warning
}

/// A field of an incident that is not acceptable, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidIncident {
    /// The field.
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> InvalidIncident {
    InvalidIncident {
        field,
        message: message.into(),
    }
}

impl Incident {
    /// Checks every field against `network`: texts have a length, routes
    /// and stops exist, the area is a place, the period runs forwards, and
    /// the incident concerns something.
    pub fn validate(&self, network: &Network) -> Result<(), InvalidIncident> {
        let data = network.data();
        let chars = |s: &str| s.trim().chars().count();
        if !(1..=200).contains(&chars(&self.header)) {
            return Err(invalid("header", "the header must be 1 to 200 characters"));
        }
        if self.header_en.as_deref().is_some_and(|h| chars(h) > 200) {
            return Err(invalid(
                "header_en",
                "the header must be at most 200 characters",
            ));
        }
        if self.description.as_deref().is_some_and(|d| chars(d) > 2000) {
            return Err(invalid(
                "description",
                "the description must be at most 2,000 characters",
            ));
        }
        if let Some(route) = self.routes.iter().find(|r| data.route_ids.get(r).is_none()) {
            return Err(invalid(
                "routes",
                format!("no route has route_id '{route}'"),
            ));
        }
        if let Some(stop) = self.stops.iter().find(|s| data.stops.ids.get(s).is_none()) {
            return Err(invalid("stops", format!("no stop has stop_id '{stop}'")));
        }
        if let Some(area) = self.area {
            if !(-90.0..=90.0).contains(&area.lat) || !(-180.0..=180.0).contains(&area.lon) {
                return Err(invalid(
                    "area",
                    "the centre is not a WGS-84 latitude and longitude",
                ));
            }
            if !(10.0..=20_000.0).contains(&area.radius_m) {
                return Err(invalid("area", "radius_m must be 10 to 20,000 metres"));
            }
        }
        if let (Some(start), Some(end)) = (self.starts_at, self.ends_at)
            && end <= start
        {
            return Err(invalid("ends_at", "the incident must end after it starts"));
        }
        if self.routes.is_empty() && self.stops.is_empty() && self.area.is_none() {
            return Err(invalid(
                "routes",
                "name the routes, stops or area it concerns",
            ));
        }
        Ok(())
    }

    /// Whether the incident is in force at `now` (POSIX seconds).
    pub fn in_force(&self, now: i64) -> bool {
        self.starts_at.is_none_or(|s| s <= now) && self.ends_at.is_none_or(|e| now < e)
    }

    /// The stops it affects: those named, and every stop in its area.
    pub fn affected_stops(&self, network: &Network) -> Vec<u32> {
        let data = network.data();
        let mut stops: Vec<u32> = self
            .stops
            .iter()
            .filter_map(|s| data.stops.ids.get(s))
            .collect();
        if let Some(area) = self.area {
            let mut near = Vec::new();
            network.stops_nearby_into(area.lat, area.lon, area.radius_m, usize::MAX, &mut near);
            stops.extend(near.into_iter().map(|(s, _)| s));
        }
        stops.sort_unstable();
        stops.dedup();
        stops
    }

    /// The incident as a GTFS-realtime alert, in Korean (`ko`) and, when
    /// given, English.
    pub fn alert(&self, network: &Network) -> Alert {
        let data = network.data();
        let text = |ko: &str, en: Option<&str>| {
            let mut translation = vec![Translation {
                text: ko.to_owned(),
                language: Some("ko".to_owned()),
            }];
            if let Some(en) = en {
                translation.push(Translation {
                    text: en.to_owned(),
                    language: Some("en".to_owned()),
                });
            }
            TranslatedString { translation }
        };
        let mut informed_entity: Vec<EntitySelector> = self
            .routes
            .iter()
            .map(|r| EntitySelector {
                route_id: Some(r.clone()),
                ..EntitySelector::default()
            })
            .collect();
        informed_entity.extend(
            self.affected_stops(network)
                .into_iter()
                .map(|s| EntitySelector {
                    stop_id: Some(data.stops.ids.id(s).to_owned()),
                    ..EntitySelector::default()
                }),
        );
        let period = (self.starts_at.is_some() || self.ends_at.is_some()).then(|| TimeRange {
            start: self.starts_at.and_then(|t| u64::try_from(t).ok()),
            end: self.ends_at.and_then(|t| u64::try_from(t).ok()),
        });
        Alert {
            active_period: period.into_iter().collect(),
            informed_entity,
            cause: Some(rt_cause(self.cause) as i32),
            effect: Some(rt_effect(self.effect) as i32),
            url: None,
            header_text: Some(text(&self.header, self.header_en.as_deref())),
            description_text: self.description.as_deref().map(|d| text(d, None)),
            severity_level: Some(match self.severity {
                Severity::Info => SeverityLevel::Info,
                Severity::Warning => SeverityLevel::Warning,
                Severity::Severe => SeverityLevel::Severe,
            } as i32),
        }
    }
}

fn rt_cause(cause: Cause) -> RtCause {
    match cause {
        Cause::Unknown => RtCause::UnknownCause,
        Cause::Other => RtCause::OtherCause,
        Cause::TechnicalProblem => RtCause::TechnicalProblem,
        Cause::Strike => RtCause::Strike,
        Cause::Demonstration => RtCause::Demonstration,
        Cause::Accident => RtCause::Accident,
        Cause::Holiday => RtCause::Holiday,
        Cause::Weather => RtCause::Weather,
        Cause::Maintenance => RtCause::Maintenance,
        Cause::Construction => RtCause::Construction,
        Cause::PoliceActivity => RtCause::PoliceActivity,
        Cause::MedicalEmergency => RtCause::MedicalEmergency,
    }
}

fn rt_effect(effect: Effect) -> RtEffect {
    match effect {
        Effect::NoService => RtEffect::NoService,
        Effect::ReducedService => RtEffect::ReducedService,
        Effect::SignificantDelays => RtEffect::SignificantDelays,
        Effect::Detour => RtEffect::Detour,
        Effect::AdditionalService => RtEffect::AdditionalService,
        Effect::ModifiedService => RtEffect::ModifiedService,
        Effect::Other => RtEffect::OtherEffect,
        Effect::Unknown => RtEffect::UnknownEffect,
        Effect::StopMoved => RtEffect::StopMoved,
    }
}

/// Whether a run has left its first stop and not reached its last: a
/// vehicle waiting at either end is on a layover, not stalled.
fn between_ends(index: &TripIndex, run: &RunInfo) -> bool {
    const MARGIN_M: f32 = 50.0;
    index.stop_distances(run.trip).is_some_and(|d| {
        let (first, last) = (
            d.first().copied().unwrap_or(0.0),
            d.last().copied().unwrap_or(0.0),
        );
        run.distance_m > first + MARGIN_M && run.distance_m < last - MARGIN_M
    })
}

/// Whether the run has more than its last stop ahead: a bus that falls
/// silent on its last leg has most likely finished its trip and its day
/// (its last position came before the terminal), not lost contact.
fn before_last_leg(index: &TripIndex, run: &RunInfo) -> bool {
    index
        .stop_distances(run.trip)
        .is_some_and(|d| (run.next_stop as usize) + 1 < d.len())
}

/// An incident the system proposes, with the key of the condition it
/// comes from (one open incident per key).
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// `stalled:<vehicle>`, `silent:<vehicle>` or `bunched:<vehicle>:<vehicle>`.
    pub key: String,
    /// What detected it: `stalled`, `silent` or `bunched`.
    pub source: &'static str,
    /// The proposed incident.
    pub incident: Incident,
}

/// Looks at the live runs (from [`crate::Engine::runs`], with their
/// vehicles' ids) for stalled, silent and bunched vehicles as of `now`, and
/// at the runs lost mid-trip (from [`crate::Engine::lost`]).
pub fn detect<'a>(
    network: &Network,
    index: &TripIndex,
    runs: &'a [(RunInfo, &'a str)],
    lost: impl IntoIterator<Item = (&'a RunInfo, &'a str)>,
    now: i64,
) -> Vec<Detection> {
    let data = network.data();
    let route_of = |run: &RunInfo| {
        data.route_ids
            .id(data.trips.route[run.trip as usize])
            .to_owned()
    };
    let route_name = |run: &RunInfo| {
        let route = &data.routes[data.trips.route[run.trip as usize] as usize];
        if route.short_name.is_empty() {
            route.long_name.clone()
        } else {
            route.short_name.clone()
        }
    };
    let mut out = Vec::new();
    for (run, vehicle) in runs {
        let between_ends = between_ends(index, run);
        if between_ends
            && run
                .halted_since
                .is_some_and(|since| now - since >= STALLED_AFTER_S)
        {
            let minutes = (now - run.halted_since.unwrap_or(now)) / 60;
            let (lat, lon) = run.position;
            out.push(Detection {
                key: format!("stalled:{vehicle}"),
                source: "stalled",
                incident: Incident {
                    header: format!("{} 버스 {vehicle} {minutes}분째 정차", route_name(run)),
                    header_en: Some(format!(
                        "Bus {vehicle} of route {} halted for {minutes} min",
                        route_name(run)
                    )),
                    description: None,
                    cause: Cause::TechnicalProblem,
                    effect: Effect::SignificantDelays,
                    severity: Severity::Warning,
                    routes: vec![route_of(run)],
                    stops: Vec::new(),
                    area: Some(Area {
                        lat,
                        lon,
                        radius_m: 50.0,
                    }),
                    starts_at: run.halted_since,
                    ends_at: None,
                    vehicle_id: Some((*vehicle).to_owned()),
                },
            });
        }
    }
    // Lost contact: live runs gone quiet, and runs that expired so.
    let quiet = runs
        .iter()
        .map(|(run, vehicle)| (run, *vehicle))
        .chain(lost)
        .filter(|(run, _)| {
            now - run.last_seen >= SILENT_AFTER_S
                && between_ends(index, run)
                && before_last_leg(index, run)
        });
    for (run, vehicle) in quiet {
        let minutes = (now - run.last_seen) / 60;
        let (lat, lon) = run.position;
        out.push(Detection {
            key: format!("silent:{vehicle}"),
            source: "silent",
            incident: Incident {
                header: format!(
                    "{} 버스 {vehicle} 통신 두절: {minutes}분째 위치 보고 없음",
                    route_name(run)
                ),
                header_en: Some(format!(
                    "Bus {vehicle} of route {} lost contact: no position for {minutes} min",
                    route_name(run)
                )),
                description: None,
                cause: Cause::TechnicalProblem,
                effect: Effect::Unknown,
                severity: Severity::Info,
                routes: vec![route_of(run)],
                stops: Vec::new(),
                area: Some(Area {
                    lat,
                    lon,
                    radius_m: 300.0,
                }),
                starts_at: Some(run.last_seen),
                ends_at: None,
                vehicle_id: Some(vehicle.to_owned()),
            },
        });
    }
    // Bunching: consecutive vehicles of one pattern, both under way, close along it.
    let mut moving: Vec<&(RunInfo, &str)> = runs
        .iter()
        .filter(|(r, _)| r.next_stop > 1 && between_ends(index, r) && r.halted_since.is_none())
        .collect();
    moving.sort_by(|a, b| {
        (a.0.pattern, a.0.distance_m)
            .partial_cmp(&(b.0.pattern, b.0.distance_m))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    for pair in moving.windows(2) {
        let ((behind, v1), (ahead, v2)) = (pair[0], pair[1]);
        if behind.pattern != ahead.pattern
            || ahead.distance_m - behind.distance_m > BUNCHED_WITHIN_M
        {
            continue;
        }
        // Buses scheduled close together are not bunched, they are frequent.
        if (ahead.scheduled_start - behind.scheduled_start).abs() < 180.0 {
            continue;
        }
        let (lat, lon) = ahead.position;
        let gap = haversine_m(lat, lon, behind.position.0, behind.position.1).round();
        out.push(Detection {
            key: format!("bunched:{v1}:{v2}"),
            source: "bunched",
            incident: Incident {
                header: format!("{} 버스 {v1}·{v2} 몰림 ({gap} m)", route_name(ahead)),
                header_en: Some(format!(
                    "Buses {v1} and {v2} of route {} bunched ({gap} m apart)",
                    route_name(ahead)
                )),
                description: None,
                cause: Cause::Other,
                effect: Effect::ReducedService,
                severity: Severity::Info,
                routes: vec![route_of(ahead)],
                stops: Vec::new(),
                area: Some(Area {
                    lat,
                    lon,
                    radius_m: 100.0,
                }),
                starts_at: Some(now),
                ends_at: None,
                vehicle_id: Some((*v2).to_owned()),
            },
        });
    }
    out
}
