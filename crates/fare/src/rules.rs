//! What a city charges: fare rules read from TOML and validated once.
//!
//! The TOML file is deserialised into private `Raw*` structs that mirror it
//! (unknown keys are refused), then [`FareRules::from_raw`] checks every
//! value and builds the public types. The GTFS importer goes through the same
//! function, so a rule set is valid in exactly one way, whichever door it
//! came in by.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use jiff::civil::Time;
use serde::{Deserialize, Serialize};

/// Seoul's rules, compiled into the binary as the default.
const SEOUL_TOML: &str = include_str!("../seoul.toml");

/// Who is riding. Each category has its own base fares and step fares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// The default fare.
    Adult,
    /// Seoul: 13 to 18 years old.
    Youth,
    /// Seoul: 6 to 12 years old.
    Child,
}

impl Category {
    /// Every category, in the order used by tables and exports.
    pub const ALL: [Category; 3] = [Category::Adult, Category::Youth, Category::Child];

    /// The snake_case name used in TOML, JSON and GTFS `rider_category_id`.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Adult => "adult",
            Category::Youth => "youth",
            Category::Child => "child",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Category {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownName(s.to_owned()))
    }
}

/// How a leg travels, which decides its base fare.
///
/// There is deliberately no plain "bus": Seoul's bus fares differ by kind
/// (a village bus costs 1,200 won, a wide-area bus 3,000), so a caller that
/// only knows "bus" would have to guess, and a guess is a wrong charge. The
/// network knows the kind: `cityos-sim` writes it as `route_desc`, and its
/// values `trunk`, `branch`, `circular`, `night` and `subway` are these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Metro and urban rail, entered through gates.
    Subway,
    /// 간선 trunk bus (blue).
    Trunk,
    /// 지선 branch bus (green).
    Branch,
    /// 순환 circular bus (yellow).
    Circular,
    /// 마을버스 village bus.
    Village,
    /// 광역 wide-area bus (red), to the suburbs.
    WideArea,
    /// 심야 night bus (N routes).
    Night,
}

impl Mode {
    /// Every mode, in the order used by tables and exports.
    pub const ALL: [Mode; 7] = [
        Mode::Subway,
        Mode::Trunk,
        Mode::Branch,
        Mode::Circular,
        Mode::Village,
        Mode::WideArea,
        Mode::Night,
    ];

    /// The snake_case name used in TOML, JSON and GTFS `network_id`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Subway => "subway",
            Mode::Trunk => "trunk",
            Mode::Branch => "branch",
            Mode::Circular => "circular",
            Mode::Village => "village",
            Mode::WideArea => "wide_area",
            Mode::Night => "night",
        }
    }

    /// A rider-facing English name, used in explanations and exports.
    pub fn display_name(self) -> &'static str {
        match self {
            Mode::Subway => "subway",
            Mode::Trunk => "trunk bus",
            Mode::Branch => "branch bus",
            Mode::Circular => "circular bus",
            Mode::Village => "village bus",
            Mode::WideArea => "wide-area bus",
            Mode::Night => "night bus",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| UnknownName(s.to_owned()))
    }
}

/// A string that names no [`Mode`] or [`Category`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown name `{0}`")]
pub struct UnknownName(pub String);

/// One amount for each rider category, in the currency's minor unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerCategory {
    /// The adult amount.
    pub adult: i64,
    /// The youth amount.
    pub youth: i64,
    /// The child amount.
    pub child: i64,
}

impl PerCategory {
    /// The amount for `category`.
    pub fn get(&self, category: Category) -> i64 {
        match category {
            Category::Adult => self.adult,
            Category::Youth => self.youth,
            Category::Child => self.child,
        }
    }
}

/// A time-of-day interval `[from, until)`; it wraps past midnight when
/// `until` is not after `from` (21:00–07:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// The first time inside the range.
    pub from: Time,
    /// The first time after the range.
    pub until: Time,
}

impl TimeRange {
    /// Whether `t` falls inside the range.
    pub fn contains(&self, t: Time) -> bool {
        if self.from < self.until {
            self.from <= t && t < self.until
        } else {
            t >= self.from || t < self.until
        }
    }
}

/// The fare of one mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeRules {
    /// The base fare, charged at the first tap-in of a journey.
    pub fare: PerCategory,
    /// `Some` when the mode is distance-priced: its legs add their distance
    /// to the journey's and need a tap-out. `None` for a flat fare.
    pub distance: Option<ModeDistance>,
    /// Whether the mode is entered through gates (the subway). A gated leg
    /// runs from entry gate to exit gate, changes of line included, so
    /// leaving the gates and entering again is a new journey unless it is a
    /// same-station re-entry ([`Reentry`]).
    pub gated: bool,
}

/// How a distance-priced mode counts distance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModeDistance {
    /// The distance the base fare covers, in metres. A journey uses the free
    /// distance of its highest-fare distance-priced mode.
    pub free_m: u32,
    /// The length a leg of this mode is charged as when the rider does not
    /// tap out, in metres: the mode's longest plausible leg.
    pub missing_tap_out_m: u32,
}

/// When a boarding continues the journey instead of starting a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRules {
    /// Transfers allowed in one journey (Seoul: 4, so five boardings).
    pub max_transfers: u32,
    /// Longest wait from a tap-out to the next tap-in, in seconds.
    pub window_s: i64,
    /// A longer window when the tap-out falls in the night.
    pub night: Option<NightWindow>,
    /// Leaving the gates and coming back in at the same station.
    pub reentry: Option<Reentry>,
}

/// The night transfer window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NightWindow {
    /// The hours in which a tap-out gets the longer window.
    pub hours: TimeRange,
    /// The window in seconds.
    pub window_s: i64,
}

/// Same-station re-entry into a gated mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reentry {
    /// Longest time out of the gates, in seconds.
    pub window_s: i64,
    /// How many re-entries one journey may use.
    pub per_journey: u32,
}

/// The early-bird discount on the first boarding of a journey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlyBird {
    /// The hours in which a first boarding gets the discount.
    pub hours: TimeRange,
    /// The discount, in percent of the first leg's base fare.
    pub percent: u32,
    /// The discount is rounded down to a multiple of this (Seoul: 10 won).
    pub round_down_to: i64,
    /// Modes whose first boarding gets no discount (Seoul: night buses).
    pub excluded_modes: Vec<Mode>,
}

impl EarlyBird {
    /// The discount on a first leg whose base fare is `base`.
    pub fn discount(&self, base: i64) -> i64 {
        // Integer arithmetic only: percent of a non-negative amount, floored,
        // then floored again to the rounding unit.
        let raw = base.max(0) * i64::from(self.percent) / 100;
        raw / self.round_down_to * self.round_down_to
    }
}

/// The distance surcharge: steps past the free distance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistanceRules {
    /// What one step costs for each category.
    pub step_fare: PerCategory,
    /// Consecutive bands measured from the start of the journey; each has
    /// its own step length. Only the last band has no end.
    pub bands: Vec<Band>,
}

/// A band of the distance table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Band {
    /// Where the band ends, in metres; `None` for the last band.
    pub until_m: Option<u32>,
    /// The step length in the band, in metres.
    pub step_m: u32,
}

impl DistanceRules {
    /// The steps charged for `distance_m` when the first `free_m` metres are
    /// free. Steps are started steps: 10.1 km with 10 km free is one step.
    ///
    /// Each band counts its own started steps over the part of the journey
    /// that lies in it past the free distance, which is how Seoul states
    /// its table ("every 5 km up to 50 km, every 8 km beyond").
    pub fn steps(&self, free_m: u32, distance_m: u64) -> u32 {
        let mut steps: u64 = 0;
        let mut band_start: u64 = 0;
        for band in &self.bands {
            let band_end = band.until_m.map_or(u64::MAX, u64::from);
            let lo = band_start.max(u64::from(free_m));
            let hi = distance_m.min(band_end);
            if hi > lo {
                steps += (hi - lo).div_ceil(u64::from(band.step_m));
            }
            if distance_m <= band_end {
                break;
            }
            band_start = band_end;
        }
        u32::try_from(steps).unwrap_or(u32::MAX)
    }
}

/// A city's validated fare rules.
///
/// Build them with [`FareRules::seoul`] or [`FareRules::from_toml`]; the
/// format is described in `docs/fares.md` and by `seoul.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FareRules {
    pub(crate) currency: String,
    pub(crate) currency_decimals: u8,
    pub(crate) card_name: String,
    pub(crate) modes: BTreeMap<Mode, ModeRules>,
    pub(crate) transfer: TransferRules,
    pub(crate) early_bird: Option<EarlyBird>,
    pub(crate) distance: Option<DistanceRules>,
}

impl FareRules {
    /// Seoul's 2025 card fares, the default of cityos (`seoul.toml`).
    pub fn seoul() -> FareRules {
        // The embedded file is checked by the tests, so it always parses;
        // should it ever not, the error names the key, which is the
        // message a developer needs.
        match FareRules::from_toml(SEOUL_TOML) {
            Ok(rules) => rules,
            Err(e) => panic!("the embedded seoul.toml is invalid: {e}"),
        }
    }

    /// The text of `seoul.toml`, for documentation and as a template.
    pub fn seoul_toml() -> &'static str {
        SEOUL_TOML
    }

    /// Parses and validates fare rules written in TOML.
    ///
    /// Errors name the offending key, for example
    /// ``modes.subway.fare.youth: must not be negative``.
    pub fn from_toml(text: &str) -> Result<FareRules, FareRulesError> {
        let raw: RawRules =
            toml::from_str(text).map_err(|e| FareRulesError::Toml(e.to_string()))?;
        FareRules::from_raw(raw)
    }

    /// The ISO 4217 code of the currency of every amount.
    pub fn currency(&self) -> &str {
        &self.currency
    }

    /// Decimal places of the currency's minor unit (0 for won, 2 for euros).
    /// Amounts are integers in the minor unit.
    pub fn currency_decimals(&self) -> u8 {
        self.currency_decimals
    }

    /// The rider-facing name of the card ("T-money").
    pub fn card_name(&self) -> &str {
        &self.card_name
    }

    /// The modes these rules price, in [`Mode::ALL`] order.
    pub fn modes(&self) -> impl Iterator<Item = (Mode, &ModeRules)> {
        self.modes.iter().map(|(m, r)| (*m, r))
    }

    /// The rules of one mode, if the city prices it.
    pub fn mode(&self, mode: Mode) -> Option<&ModeRules> {
        self.modes.get(&mode)
    }

    /// The base fare of `mode` for `category`, if the city prices the mode.
    pub fn base_fare(&self, mode: Mode, category: Category) -> Option<i64> {
        self.modes.get(&mode).map(|r| r.fare.get(category))
    }

    /// The transfer rules.
    pub fn transfer(&self) -> &TransferRules {
        &self.transfer
    }

    /// The early-bird discount, if the city has one.
    pub fn early_bird(&self) -> Option<&EarlyBird> {
        self.early_bird.as_ref()
    }

    /// The distance table, present when any mode is distance-priced.
    pub fn distance(&self) -> Option<&DistanceRules> {
        self.distance.as_ref()
    }

    /// Formats an amount with thousands separators and the currency code:
    /// `1,550 KRW`, `-3.10 EUR`.
    pub fn format_money(&self, amount: i64) -> String {
        let sign = if amount < 0 { "-" } else { "" };
        let abs = amount.unsigned_abs();
        let scale = 10u64.pow(u32::from(self.currency_decimals));
        let whole = group_thousands(abs / scale);
        if self.currency_decimals == 0 {
            format!("{sign}{whole} {}", self.currency)
        } else {
            let frac = abs % scale;
            let width = usize::from(self.currency_decimals);
            format!("{sign}{whole}.{frac:0width$} {}", self.currency)
        }
    }

    /// Checks a deserialised file and builds the rules. Every check names
    /// the TOML key it concerns.
    pub(crate) fn from_raw(raw: RawRules) -> Result<FareRules, FareRulesError> {
        let currency = raw.currency;
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(invalid(
                "currency",
                "must be an ISO 4217 code such as \"KRW\"",
            ));
        }
        if raw.currency_decimals > 4 {
            return Err(invalid("currency_decimals", "must be between 0 and 4"));
        }
        let card_name = raw
            .card_name
            .unwrap_or_else(|| "transportation card".to_owned());
        if card_name.trim().is_empty() {
            return Err(invalid("card_name", "must not be empty"));
        }

        if raw.modes.is_empty() {
            return Err(invalid(
                "modes",
                "must price at least one mode, e.g. [modes.subway]",
            ));
        }
        let mut modes = BTreeMap::new();
        for (mode, m) in raw.modes {
            let key = |field: &str| format!("modes.{mode}.{field}");
            for category in Category::ALL {
                if m.fare.get(category) < 0 {
                    return Err(invalid(
                        &key(&format!("fare.{category}")),
                        "must not be negative",
                    ));
                }
            }
            let distance = match (m.free_distance_m, m.missing_tap_out_m) {
                (None, None) => None,
                (Some(free_m), Some(missing_tap_out_m)) => Some(ModeDistance {
                    free_m,
                    missing_tap_out_m,
                }),
                (Some(_), None) => {
                    return Err(invalid(
                        &key("missing_tap_out_m"),
                        "is required when free_distance_m is set: a distance-priced mode must say what a missing tap-out costs",
                    ));
                }
                (None, Some(_)) => {
                    return Err(invalid(
                        &key("free_distance_m"),
                        "is required when missing_tap_out_m is set (a flat mode has no missing tap-out length)",
                    ));
                }
            };
            modes.insert(
                mode,
                ModeRules {
                    fare: m.fare,
                    distance,
                    gated: m.gated,
                },
            );
        }

        let distance = match raw.distance {
            None => {
                if let Some((mode, _)) = modes.iter().find(|(_, r)| r.distance.is_some()) {
                    return Err(invalid(
                        "distance",
                        &format!(
                            "is required because modes.{mode} is distance-priced (it has free_distance_m)"
                        ),
                    ));
                }
                None
            }
            Some(d) => Some(validate_distance(d)?),
        };

        let t = raw.transfer;
        if t.max_transfers > MAX_TRANSFERS {
            return Err(invalid(
                "transfer.max_transfers",
                &format!("must be at most {MAX_TRANSFERS}"),
            ));
        }
        if t.max_transfers > 0 && t.window_minutes == 0 {
            return Err(invalid(
                "transfer.window_minutes",
                "must be positive when transfers are allowed",
            ));
        }
        let night = match t.night {
            None => None,
            Some(n) => {
                if n.window_minutes == 0 {
                    return Err(invalid("transfer.night.window_minutes", "must be positive"));
                }
                Some(NightWindow {
                    hours: time_range("transfer.night", &n.from, &n.until)?,
                    window_s: minutes(n.window_minutes),
                })
            }
        };
        let reentry = match t.reentry {
            None => None,
            Some(r) => {
                if r.minutes == 0 {
                    return Err(invalid("transfer.reentry.minutes", "must be positive"));
                }
                if r.per_journey == 0 {
                    return Err(invalid(
                        "transfer.reentry.per_journey",
                        "must be at least 1 (leave out [transfer.reentry] to allow none)",
                    ));
                }
                if !modes.values().any(|m| m.gated) {
                    return Err(invalid(
                        "transfer.reentry",
                        "applies to gated modes, but no mode has gated = true",
                    ));
                }
                Some(Reentry {
                    window_s: minutes(r.minutes),
                    per_journey: r.per_journey,
                })
            }
        };
        let transfer = TransferRules {
            max_transfers: t.max_transfers,
            window_s: minutes(t.window_minutes),
            night,
            reentry,
        };

        let early_bird = match raw.early_bird {
            None => None,
            Some(e) => {
                if e.percent > 100 {
                    return Err(invalid("early_bird.percent", "must be between 0 and 100"));
                }
                if e.round_down_to <= 0 {
                    return Err(invalid(
                        "early_bird.round_down_to",
                        "must be positive (1 for no rounding)",
                    ));
                }
                Some(EarlyBird {
                    hours: time_range("early_bird", &e.from, &e.until)?,
                    percent: e.percent,
                    round_down_to: e.round_down_to,
                    excluded_modes: e.excluded_modes,
                })
            }
        };

        Ok(FareRules {
            currency,
            currency_decimals: raw.currency_decimals,
            card_name,
            modes,
            transfer,
            early_bird,
            distance,
        })
    }
}

/// Bounds the work per tap: a journey holds at most `MAX_TRANSFERS + 1` legs.
const MAX_TRANSFERS: u32 = 20;

fn validate_distance(d: RawDistance) -> Result<DistanceRules, FareRulesError> {
    for category in Category::ALL {
        if d.step_fare.get(category) < 0 {
            return Err(invalid(
                &format!("distance.step_fare.{category}"),
                "must not be negative",
            ));
        }
    }
    if d.bands.is_empty() {
        return Err(invalid("distance.bands", "must have at least one band"));
    }
    let last = d.bands.len() - 1;
    let mut previous_end = 0u32;
    let mut bands = Vec::with_capacity(d.bands.len());
    for (i, b) in d.bands.into_iter().enumerate() {
        let key = |field: &str| format!("distance.bands[{i}].{field}");
        if b.step_m == 0 {
            return Err(invalid(&key("step_m"), "must be positive"));
        }
        match (i == last, b.until_m) {
            (true, Some(_)) => {
                return Err(invalid(
                    &key("until_m"),
                    "must be left out: the last band runs on without end",
                ));
            }
            (false, None) => {
                return Err(invalid(
                    &key("until_m"),
                    "is required: only the last band runs on without end",
                ));
            }
            (false, Some(until)) if until <= previous_end => {
                return Err(invalid(
                    &key("until_m"),
                    "must be greater than the previous band's end",
                ));
            }
            (_, until) => previous_end = until.unwrap_or(previous_end),
        }
        bands.push(Band {
            until_m: b.until_m,
            step_m: b.step_m,
        });
    }
    Ok(DistanceRules {
        step_fare: d.step_fare,
        bands,
    })
}

fn minutes(m: u32) -> i64 {
    i64::from(m) * 60
}

fn time_range(table: &str, from: &str, until: &str) -> Result<TimeRange, FareRulesError> {
    let from_t = parse_hh_mm(from)
        .ok_or_else(|| invalid(&format!("{table}.from"), "must be a time \"HH:MM\""))?;
    let until_t = parse_hh_mm(until)
        .ok_or_else(|| invalid(&format!("{table}.until"), "must be a time \"HH:MM\""))?;
    if from_t == until_t {
        return Err(invalid(
            &format!("{table}.until"),
            "must differ from `from`",
        ));
    }
    Ok(TimeRange {
        from: from_t,
        until: until_t,
    })
}

/// Parses `HH:MM` (24-hour clock) strictly.
fn parse_hh_mm(text: &str) -> Option<Time> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: i8 = h.parse().ok()?;
    let m: i8 = m.parse().ok()?;
    Time::new(h, m, 0, 0).ok()
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn invalid(key: &str, message: &str) -> FareRulesError {
    FareRulesError::Invalid {
        key: key.to_owned(),
        message: message.to_owned(),
    }
}

/// Fare rules that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FareRulesError {
    /// The text is not TOML of the expected shape: a syntax error, an
    /// unknown or missing key, or a value of the wrong type. The message
    /// from the TOML parser gives the line and the key.
    #[error("fare rules: {0}")]
    Toml(String),
    /// A value is out of range or inconsistent with another.
    #[error("fare rules: `{key}` {message}")]
    Invalid {
        /// The dotted TOML key, e.g. `modes.subway.fare.youth`.
        key: String,
        /// What is wrong and what to do.
        message: String,
    },
}

// The file as written. Kept private so the public types can change shape
// (seconds instead of minutes, options instead of pairs) without changing
// the file format.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRules {
    pub(crate) currency: String,
    pub(crate) currency_decimals: u8,
    #[serde(default)]
    pub(crate) card_name: Option<String>,
    pub(crate) transfer: RawTransfer,
    #[serde(default)]
    pub(crate) early_bird: Option<RawEarlyBird>,
    #[serde(default)]
    pub(crate) distance: Option<RawDistance>,
    pub(crate) modes: BTreeMap<Mode, RawMode>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTransfer {
    pub(crate) max_transfers: u32,
    #[serde(default)]
    pub(crate) window_minutes: u32,
    #[serde(default)]
    pub(crate) night: Option<RawNight>,
    #[serde(default)]
    pub(crate) reentry: Option<RawReentry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNight {
    from: String,
    until: String,
    window_minutes: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReentry {
    minutes: u32,
    per_journey: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEarlyBird {
    from: String,
    until: String,
    percent: u32,
    round_down_to: i64,
    #[serde(default)]
    excluded_modes: Vec<Mode>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDistance {
    step_fare: PerCategory,
    bands: Vec<RawBand>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBand {
    #[serde(default)]
    until_m: Option<u32>,
    step_m: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMode {
    pub(crate) fare: PerCategory,
    #[serde(default)]
    pub(crate) free_distance_m: Option<u32>,
    #[serde(default)]
    pub(crate) missing_tap_out_m: Option<u32>,
    #[serde(default)]
    pub(crate) gated: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        match FareRules::from_toml(text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    const MINIMAL: &str = r#"
currency = "KRW"
currency_decimals = 0
[transfer]
max_transfers = 0
[modes.trunk]
fare = { adult = 1500, youth = 900, child = 550 }
"#;

    #[test]
    fn seoul_parses_with_the_issue_s_figures() {
        let r = FareRules::seoul();
        assert_eq!(r.base_fare(Mode::Subway, Category::Adult), Some(1550));
        assert_eq!(r.base_fare(Mode::Subway, Category::Youth), Some(900));
        assert_eq!(r.base_fare(Mode::Subway, Category::Child), Some(550));
        assert_eq!(r.base_fare(Mode::Trunk, Category::Adult), Some(1500));
        assert_eq!(r.base_fare(Mode::Branch, Category::Adult), Some(1500));
        assert_eq!(r.base_fare(Mode::Circular, Category::Adult), Some(1400));
        assert_eq!(r.base_fare(Mode::Village, Category::Adult), Some(1200));
        assert_eq!(r.base_fare(Mode::WideArea, Category::Adult), Some(3000));
        assert_eq!(r.base_fare(Mode::Night, Category::Adult), Some(2500));
        assert_eq!(r.transfer().max_transfers, 4);
        assert_eq!(r.transfer().window_s, 30 * 60);
        assert_eq!(
            r.mode(Mode::WideArea)
                .and_then(|m| m.distance)
                .map(|d| d.free_m),
            Some(30_000)
        );
        assert!(r.mode(Mode::Subway).is_some_and(|m| m.gated));
    }

    #[test]
    fn minimal_rules_parse() {
        let r = FareRules::from_toml(MINIMAL).expect("minimal rules");
        assert_eq!(r.modes().count(), 1);
        assert!(r.distance().is_none());
        assert_eq!(r.card_name(), "transportation card");
    }

    #[test]
    fn steps_are_started_steps_per_band() {
        let r = FareRules::seoul();
        let d = r.distance().expect("Seoul has a distance table");
        assert_eq!(d.steps(10_000, 10_000), 0);
        assert_eq!(d.steps(10_000, 10_100), 1);
        assert_eq!(d.steps(10_000, 15_000), 1);
        assert_eq!(d.steps(10_000, 15_001), 2);
        assert_eq!(d.steps(10_000, 50_000), 8);
        assert_eq!(d.steps(10_000, 50_001), 9);
        assert_eq!(d.steps(10_000, 58_000), 9);
        assert_eq!(d.steps(10_000, 58_001), 10);
        assert_eq!(d.steps(30_000, 30_000), 0);
        assert_eq!(d.steps(30_000, 30_100), 1);
        assert_eq!(d.steps(30_000, 50_000), 4);
        assert_eq!(d.steps(60_000, 61_000), 1);
        assert_eq!(d.steps(10_000, u64::MAX), u32::MAX);
    }

    #[test]
    fn early_bird_discount_rounds_down_to_10_won() {
        let r = FareRules::seoul();
        let e = r.early_bird().expect("Seoul has an early-bird discount");
        assert_eq!(e.discount(1550), 310);
        assert_eq!(e.discount(1500), 300);
        assert_eq!(e.discount(550), 110);
        assert_eq!(e.discount(1205), 240);
        assert_eq!(e.discount(1249), 240);
    }

    #[test]
    fn time_ranges_wrap_past_midnight() {
        let night = TimeRange {
            from: Time::constant(21, 0, 0, 0),
            until: Time::constant(7, 0, 0, 0),
        };
        assert!(night.contains(Time::constant(22, 0, 0, 0)));
        assert!(night.contains(Time::constant(0, 30, 0, 0)));
        assert!(night.contains(Time::constant(21, 0, 0, 0)));
        assert!(!night.contains(Time::constant(7, 0, 0, 0)));
        assert!(!night.contains(Time::constant(12, 0, 0, 0)));
    }

    #[test]
    fn money_is_formatted_with_separators_and_decimals() {
        let mut r = FareRules::seoul();
        assert_eq!(r.format_money(1550), "1,550 KRW");
        assert_eq!(r.format_money(-310), "-310 KRW");
        assert_eq!(r.format_money(1_234_567), "1,234,567 KRW");
        r.currency = "EUR".to_owned();
        r.currency_decimals = 2;
        assert_eq!(r.format_money(305), "3.05 EUR");
        assert_eq!(r.format_money(-123_456), "-1,234.56 EUR");
    }

    #[test]
    fn errors_name_the_key() {
        let negative = MINIMAL.replace("youth = 900", "youth = -1");
        assert_eq!(
            err(&negative),
            "fare rules: `modes.trunk.fare.youth` must not be negative"
        );

        let bad_currency = MINIMAL.replace("\"KRW\"", "\"won\"");
        assert!(err(&bad_currency).contains("`currency`"));

        let half_distance = MINIMAL.replace("fare = {", "free_distance_m = 10000\nfare = {");
        assert!(err(&half_distance).contains("`modes.trunk.missing_tap_out_m` is required"));

        let no_table = MINIMAL.replace(
            "fare = {",
            "free_distance_m = 10000\nmissing_tap_out_m = 1\nfare = {",
        );
        assert!(err(&no_table).contains("`distance` is required because modes.trunk"));

        let window = MINIMAL.replace("max_transfers = 0", "max_transfers = 2");
        assert!(err(&window).contains("`transfer.window_minutes` must be positive"));

        let night = MINIMAL.replace(
            "max_transfers = 0",
            "max_transfers = 0\nnight = { from = \"9pm\", until = \"07:00\", window_minutes = 60 }",
        );
        assert!(err(&night).contains("`transfer.night.from` must be a time"));

        let reentry = MINIMAL.replace(
            "max_transfers = 0",
            "max_transfers = 0\nreentry = { minutes = 10, per_journey = 1 }",
        );
        assert!(err(&reentry).contains("`transfer.reentry` applies to gated modes"));
    }

    #[test]
    fn band_errors_name_the_band() {
        let with_bands = |bands: &str| {
            format!(
                "{MINIMAL}free_distance_m = 10000\nmissing_tap_out_m = 50000\n[distance]\nstep_fare = {{ adult = 100, youth = 80, child = 50 }}\n{bands}"
            )
        };
        assert!(
            err(&with_bands(
                "[[distance.bands]]\nuntil_m = 50000\nstep_m = 5000\n"
            ))
            .contains("`distance.bands[0].until_m` must be left out")
        );
        assert!(
            err(&with_bands(
                "[[distance.bands]]\nstep_m = 5000\n[[distance.bands]]\nstep_m = 8000\n"
            ))
            .contains("`distance.bands[0].until_m` is required")
        );
        assert!(
            err(&with_bands(
                "[[distance.bands]]\nuntil_m = 50000\nstep_m = 5000\n[[distance.bands]]\nuntil_m = 40000\nstep_m = 5000\n[[distance.bands]]\nstep_m = 8000\n"
            ))
            .contains("`distance.bands[1].until_m` must be greater")
        );
        assert!(
            err(&with_bands("[[distance.bands]]\nstep_m = 0\n"))
                .contains("`distance.bands[0].step_m` must be positive")
        );
        assert!(FareRules::from_toml(&with_bands("[[distance.bands]]\nstep_m = 5000\n")).is_ok());
    }

    #[test]
    fn unknown_keys_and_modes_are_refused_by_name() {
        let typo = MINIMAL.replace("max_transfers", "max_transfer");
        assert!(err(&typo).contains("max_transfer"), "{}", err(&typo));
        let bus = MINIMAL.replace("[modes.trunk]", "[modes.bus]");
        let message = err(&bus);
        assert!(
            message.contains("bus") && message.contains("trunk"),
            "{message}"
        );
    }
}
