//! The fare engine of the cityos transportation card.
//!
//! A city's fares are data: a TOML file read into [`FareRules`]
//! ([`FareRules::seoul`] is the default, Seoul's 2025 card fares). Pricing
//! is a pure function of the rules, the rider's [`Category`], the card's
//! [`Tap`]s and the network's [`Distances`]: [`quote`] returns every
//! [`Charge`] with the [`Rule`] behind it, grouped into [`Journey`]s. No
//! clock, no randomness, no I/O, and no floating point: money is integer
//! minor units (won).
//!
//! Charges are made as a card validator makes them, at the tap they belong
//! to: the base fare at the first tap-in of a journey, the difference at a
//! transfer onto a dearer mode, distance steps at tap-outs, a missing
//! tap-out penalty at the next tap-in. [`JourneyState`] is that validator,
//! one tap at a time, for callers that learn of taps as they happen;
//! [`quote`] is a loop over it.
//!
//! ```
//! use cityos_fare::{Category, DistanceTable, FareRules, Mode, Tap, quote};
//! use jiff::civil::date;
//!
//! let rules = FareRules::seoul();
//! let mut distances = DistanceTable::new();
//! distances.insert(Some("101"), "city-hall", "jongno-3ga", 3_000);
//! distances.insert(None, "jongno-3ga", "gangnam", 12_000);
//! let day = date(2025, 3, 3);
//! let taps = [
//!     Tap::tap_in(day.at(8, 0, 0, 0), Mode::Trunk, Some("101"), "city-hall"),
//!     Tap::tap_out(day.at(8, 15, 0, 0), Mode::Trunk, Some("101"), "jongno-3ga"),
//!     Tap::tap_in(day.at(8, 20, 0, 0), Mode::Subway, None, "jongno-3ga"),
//!     Tap::tap_out(day.at(8, 50, 0, 0), Mode::Subway, None, "gangnam"),
//! ];
//! let q = quote(&rules, Category::Adult, &taps, &distances)?;
//! // 1,500 for the bus, 50 more for the dearer subway, and one 5-km step
//! // for 15 km in all.
//! assert_eq!(q.total, 1_500 + 50 + 100);
//! assert_eq!(q.journeys.len(), 1);
//! # Ok::<(), cityos_fare::QuoteError>(())
//! ```
//!
//! The rules, the TOML format, worked examples and what GTFS Fares v2 can
//! and cannot carry of them are in `docs/fares.md`.

mod distance;
mod engine;
mod gtfs;
mod rules;

pub use distance::{DistanceTable, Distances};
pub use engine::{
    Alighting, Boarding, Charge, Finished, Journey, JourneyStart, JourneyState, Leg, Note,
    NoteKind, Quote, QuoteError, Rule, Tap, TapKind, TapResult,
};
pub use gtfs::{GtfsFaresError, export_gtfs_fares_v2, import_gtfs_fares_v2};
pub use rules::{
    Band, Category, DistanceRules, EarlyBird, FareRules, FareRulesError, Mode, ModeDistance,
    ModeRules, NightWindow, PerCategory, Reentry, TimeRange, TransferRules, UnknownName,
};

/// Prices a sequence of taps: what a validator would have charged at each.
///
/// Taps are taken in the order given, which is the card's order. A leg still
/// open after the last tap is not a missing tap-out yet (the rider may be on
/// board): it shows as the last journey's open leg, and its penalty would be
/// charged at the next tap-in. Errors are for input no rule can price and
/// name the tap; see [`QuoteError`].
pub fn quote(
    rules: &FareRules,
    category: Category,
    taps: &[Tap],
    distances: &dyn Distances,
) -> Result<Quote, QuoteError> {
    let mut state = JourneyState::new(category);
    let mut charges = Vec::new();
    let mut journeys = Vec::new();
    let mut notes = Vec::new();
    for tap in taps {
        let result = state.tap(rules, tap, distances)?;
        journeys.extend(result.closed);
        charges.extend(result.charges);
        notes.extend(result.notes);
    }
    journeys.extend(state.current_journey());
    let total = charges.iter().map(|c| c.amount).sum();
    Ok(Quote {
        charges,
        journeys,
        notes,
        total,
    })
}
