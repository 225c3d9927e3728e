//! Properties of the fare engine under Seoul's rules, over generated tap
//! sequences: plausible rides (legs with waits, some without a tap-out) and
//! arbitrary taps (any kind, any order, any clock).

use cityos_fare::{Category, FareRules, Journey, JourneyState, Mode, Quote, Tap, TapKind, quote};
use jiff::civil::{DateTime, date};
use jiff::{SignedDuration, ToSpan};
use proptest::prelude::*;

/// A deterministic distance for any stop pair on any route: 0 to 80 km,
/// the same every time it is asked.
fn distance(route: Option<&str>, from: &str, to: &str) -> Option<u32> {
    // FNV-1a: small, stable and dependency-free.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in route
        .unwrap_or("gates")
        .bytes()
        .chain([0])
        .chain(from.bytes())
        .chain([0])
        .chain(to.bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    Some((h % 80_001) as u32)
}

fn mode_strategy() -> impl Strategy<Value = Mode> {
    prop::sample::select(Mode::ALL.to_vec())
}

fn category_strategy() -> impl Strategy<Value = Category> {
    prop::sample::select(Category::ALL.to_vec())
}

fn route_for(mode: Mode, n: u8) -> Option<String> {
    (mode != Mode::Subway).then(|| format!("{mode}-{n}"))
}

/// A ride as a rider makes it: wait, board, ride, maybe tap out.
#[derive(Debug, Clone)]
struct RideSpec {
    wait_min: i64,
    ride_min: i64,
    mode: Mode,
    route: u8,
    from: u8,
    to: u8,
    tap_out: bool,
}

fn ride_strategy() -> impl Strategy<Value = RideSpec> {
    (
        0i64..75,
        1i64..60,
        mode_strategy(),
        0u8..3,
        0u8..4,
        0u8..4,
        prop::bool::weighted(0.85),
    )
        .prop_map(
            |(wait_min, ride_min, mode, route, from, to, tap_out)| RideSpec {
                wait_min,
                ride_min,
                mode,
                route,
                from,
                to,
                tap_out,
            },
        )
}

/// The start of the day: any minute from 04:00 to 23:59, to cross the
/// early-bird hours and the night window.
fn start_strategy() -> impl Strategy<Value = DateTime> {
    (4i64 * 60..24 * 60)
        .prop_map(|m| date(2025, 3, 3).at(0, 0, 0, 0) + SignedDuration::from_mins(m))
}

fn rides_to_taps(start: DateTime, rides: &[RideSpec]) -> Vec<Tap> {
    let mut at = start;
    let mut taps = Vec::new();
    for r in rides {
        at += r.wait_min.minutes();
        let route = route_for(r.mode, r.route);
        taps.push(Tap::tap_in(
            at,
            r.mode,
            route.as_deref(),
            &format!("s{}", r.from),
        ));
        at += r.ride_min.minutes();
        if r.tap_out {
            taps.push(Tap::tap_out(
                at,
                r.mode,
                route.as_deref(),
                &format!("s{}", r.to),
            ));
        }
    }
    taps
}

/// Any tap at all: any kind, mode and stop, a route or not, an empty stop
/// now and then, and a clock that may run backwards.
fn chaos_strategy() -> impl Strategy<Value = Vec<Tap>> {
    let tap = (
        -30i64..90,
        any::<bool>(),
        mode_strategy(),
        prop::option::weighted(0.8, 0u8..3),
        0u8..5,
    );
    (start_strategy(), prop::collection::vec(tap, 0..24)).prop_map(|(start, taps)| {
        let mut at = start;
        taps.into_iter()
            .map(|(step, is_in, mode, route, stop)| {
                at += step.minutes();
                let route = route.map(|n| format!("{mode}-{n}"));
                let stop = if stop == 4 {
                    String::new()
                } else {
                    format!("s{stop}")
                };
                Tap {
                    at,
                    kind: if is_in { TapKind::In } else { TapKind::Out },
                    stop_id: stop,
                    route_id: route,
                    mode,
                }
            })
            .collect()
    })
}

/// A leg priced on its own, as if it were the only ride of the day. A leg
/// left without a tap-out pays its penalty, as it would at the next tap-in.
fn price_alone(rules: &FareRules, category: Category, taps: Vec<Tap>) -> i64 {
    let mut state = JourneyState::new(category);
    let mut total = 0;
    for tap in &taps {
        total += state
            .tap(rules, tap, &distance)
            .expect("a leg of a priced sequence prices")
            .amount();
    }
    total
        + state
            .finish(rules)
            .charges
            .iter()
            .map(|c| c.amount)
            .sum::<i64>()
}

fn legs_alone(rules: &FareRules, category: Category, journey: &Journey) -> i64 {
    journey
        .legs
        .iter()
        .map(|leg| {
            let route = leg.route_id.as_deref();
            let mut taps = vec![Tap::tap_in(leg.board_at, leg.mode, route, &leg.board_stop)];
            if let Some(a) = &leg.alight {
                taps.push(Tap::tap_out(a.at, leg.mode, route, &a.stop_id));
            }
            price_alone(rules, category, taps)
        })
        .sum()
}

fn check_accounting(taps: &[Tap], q: &Quote) -> Result<(), TestCaseError> {
    prop_assert_eq!(q.charges.iter().map(|c| c.amount).sum::<i64>(), q.total);
    prop_assert_eq!(q.journeys.iter().map(|j| j.total).sum::<i64>(), q.total);
    for c in &q.charges {
        prop_assert!(c.amount != 0, "zero charge {c:?}");
        prop_assert!(!c.explanation.is_empty());
        prop_assert!(c.tap_index < taps.len());
        prop_assert!(c.journey < q.journeys.len());
    }
    for (j, journey) in q.journeys.iter().enumerate() {
        let sum: i64 = q
            .charges
            .iter()
            .filter(|c| c.journey == j)
            .map(|c| c.amount)
            .sum();
        prop_assert_eq!(sum, journey.total, "journey {}", j);
        prop_assert!(!journey.legs.is_empty());
        prop_assert!(journey.legs.len() <= 5);
    }
    // A validator never pays out: a discount only ever reduces a fare
    // charged at the same tap.
    for i in 0..taps.len() {
        let at_tap: i64 = q
            .charges
            .iter()
            .filter(|c| c.tap_index == i)
            .map(|c| c.amount)
            .sum();
        prop_assert!(at_tap >= 0, "tap {} nets {}", i, at_tap);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_won_is_explained_by_a_rule(
        start in start_strategy(),
        rides in prop::collection::vec(ride_strategy(), 0..10),
        category in category_strategy(),
    ) {
        let taps = rides_to_taps(start, &rides);
        let q = quote(&FareRules::seoul(), category, &taps, &distance).expect("plausible rides price");
        check_accounting(&taps, &q)?;
    }

    #[test]
    fn a_journey_never_costs_more_than_its_legs_paid_separately(
        start in start_strategy(),
        rides in prop::collection::vec(ride_strategy(), 1..10),
        category in category_strategy(),
    ) {
        let rules = FareRules::seoul();
        let taps = rides_to_taps(start, &rides);
        let q = quote(&rules, category, &taps, &distance).expect("plausible rides price");
        for journey in &q.journeys {
            let alone = legs_alone(&rules, category, journey);
            prop_assert!(journey.total <= alone, "journey {} > legs alone {}: {:#?}", journey.total, alone, journey);
        }
    }

    #[test]
    fn adding_a_leg_never_lowers_the_total(
        start in start_strategy(),
        rides in prop::collection::vec(ride_strategy(), 0..10),
        extra in ride_strategy(),
        category in category_strategy(),
    ) {
        let rules = FareRules::seoul();
        let before = rides_to_taps(start, &rides);
        let mut longer = rides.clone();
        longer.push(RideSpec { tap_out: true, ..extra });
        let after = rides_to_taps(start, &longer);
        let q_before = quote(&rules, category, &before, &distance).expect("plausible rides price");
        let q_after = quote(&rules, category, &after, &distance).expect("plausible rides price");
        prop_assert!(q_after.total >= q_before.total, "{} then {}", q_before.total, q_after.total);
        // And what was charged at the earlier taps does not change.
        let earlier: Vec<_> = q_after.charges.iter().filter(|c| c.tap_index < before.len()).collect();
        prop_assert_eq!(earlier, q_before.charges.iter().collect::<Vec<_>>());
    }

    #[test]
    fn quote_is_deterministic_and_never_panics(taps in chaos_strategy(), category in category_strategy()) {
        let rules = FareRules::seoul();
        let first = quote(&rules, category, &taps, &distance);
        let second = quote(&rules, category, &taps, &distance);
        prop_assert_eq!(&first, &second);
        if let Ok(q) = &first {
            check_accounting(&taps, q)?;
        }
    }

    #[test]
    fn the_state_can_be_stored_between_any_two_taps(taps in chaos_strategy(), category in category_strategy()) {
        // A validator that keeps the state as JSON between taps charges
        // exactly what one that keeps it in memory does.
        let rules = FareRules::seoul();
        let mut memory = JourneyState::new(category);
        let mut stored = serde_json::to_string(&JourneyState::new(category)).expect("state serialises");
        for tap in &taps {
            let mut restored: JourneyState = serde_json::from_str(&stored).expect("state deserialises");
            let a = memory.tap(&rules, tap, &distance);
            let b = restored.tap(&rules, tap, &distance);
            prop_assert_eq!(a, b);
            prop_assert_eq!(&memory, &restored);
            stored = serde_json::to_string(&restored).expect("state serialises");
        }
    }
}
