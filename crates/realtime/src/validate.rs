//! Why a position is refused, and the thresholds that decide it.
//!
//! Every refused position has exactly one [`Rejection`], so the server can
//! count them by reason (`Rejection::as_str` is the metric label) and a
//! refused position never changes any state.

use rustc_hash::FxHashSet;

use crate::detect::DetectConfig;

/// Why a position was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, thiserror::Error)]
pub enum Rejection {
    /// Neither a vehicle id nor a trip id, or a vehicle outside the fleet
    /// registry when one is configured.
    #[error("unknown vehicle")]
    UnknownVehicle,
    /// No trip id, a trip id the network does not have, or a trip whose
    /// stops cannot be placed on a map.
    #[error("unknown trip")]
    UnknownTrip,
    /// Coordinates that are not a place on Earth (NaN, out of range, or the
    /// 0°, 0° that broken GPS units send), or a timestamp that is not a
    /// time (negative, or tens of millennia away).
    #[error("invalid coordinates or time")]
    InvalidPosition,
    /// Older than the vehicle's last accepted position.
    #[error("out of order")]
    OutOfOrder,
    /// The same timestamp as the vehicle's last accepted position.
    #[error("duplicate")]
    Duplicate,
    /// Measured longer ago than [`Config::max_age_s`].
    #[error("stale")]
    Stale,
    /// Measured more than [`Config::max_future_s`] ahead of the clock.
    #[error("from the future")]
    Future,
    /// Implies a speed above [`Config::max_speed_mps`] since the last
    /// accepted position.
    #[error("impossible jump")]
    ImpossibleJump,
    /// Further than [`Config::off_route_m`] from the trip's shape.
    #[error("off route")]
    OffRoute,
}

impl Rejection {
    /// Every reason, in a fixed order (for metrics).
    pub const ALL: [Rejection; 9] = [
        Rejection::UnknownVehicle,
        Rejection::UnknownTrip,
        Rejection::InvalidPosition,
        Rejection::OutOfOrder,
        Rejection::Duplicate,
        Rejection::Stale,
        Rejection::Future,
        Rejection::ImpossibleJump,
        Rejection::OffRoute,
    ];

    /// A stable snake_case name, for metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::UnknownVehicle => "unknown_vehicle",
            Rejection::UnknownTrip => "unknown_trip",
            Rejection::InvalidPosition => "invalid_position",
            Rejection::OutOfOrder => "out_of_order",
            Rejection::Duplicate => "duplicate",
            Rejection::Stale => "stale",
            Rejection::Future => "future",
            Rejection::ImpossibleJump => "impossible_jump",
            Rejection::OffRoute => "off_route",
        }
    }

    /// Position of this reason in [`Rejection::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Thresholds of validation, matching and detection.
#[derive(Debug, Clone)]
pub struct Config {
    /// Positions measured longer ago than this are stale; it is also how
    /// long a vehicle stays "live" without news. Five minutes: several
    /// missed reports at the usual 10–30 s interval.
    pub max_age_s: i64,
    /// Positions measured further ahead of the clock than this are refused
    /// (a device clock gone wrong).
    pub max_future_s: i64,
    /// Fastest believable road vehicle: 200 km/h.
    pub max_speed_mps: f32,
    /// A position further than this from its trip's shape is off route.
    /// Well above GPS error and shape inaccuracy (a few tens of metres), and
    /// well below the distance to a parallel street.
    pub off_route_m: f32,
    /// Arrival detection thresholds.
    pub detect: DetectConfig,
    /// When set, only these vehicle ids are accepted.
    pub fleet: Option<FxHashSet<String>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_age_s: 300,
            max_future_s: 60,
            max_speed_mps: 200.0 / 3.6,
            off_route_m: 150.0,
            detect: DetectConfig::default(),
            fleet: None,
        }
    }
}

/// Whether (`lat`, `lon`) can be a place on Earth that a vehicle reports.
pub(crate) fn valid_coordinates(lat: f64, lon: f64) -> bool {
    lat.is_finite()
        && lon.is_finite()
        && (-90.0..=90.0).contains(&lat)
        && (-180.0..=180.0).contains(&lon)
        && !(lat == 0.0 && lon == 0.0)
}

/// Per-reason counts of refused positions, and the accepted count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Positions accepted.
    pub accepted: u64,
    /// Refused positions, indexed by [`Rejection::index`].
    pub rejected: [u64; Rejection::ALL.len()],
}

impl Counters {
    /// How many were refused for `reason`.
    pub fn rejected(&self, reason: Rejection) -> u64 {
        self.rejected[reason.index()]
    }
}
