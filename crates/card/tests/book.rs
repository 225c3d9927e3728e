//! The card book's rules as a rider and the city's treasurer see them.

use cityos_card::{Answer, CardBook, NetworkView, Operation, RefusalReason, Request};
use cityos_fare::{Category, DistanceTable, Distances, FareRules, Mode, TapKind};
use jiff::civil::{DateTime, date};
use proptest::prelude::*;

/// A small network: bus 741 A→B 8 km, subway S1→S2 12 km; operators by mode.
struct Net(DistanceTable);

impl Net {
    fn new() -> Net {
        let mut t = DistanceTable::new();
        t.insert_both_ways(Some("741"), "A", "B", 8_000);
        t.insert_both_ways(Some("741"), "A", "C", 3_000);
        t.insert_both_ways(Some("741"), "C", "B", 5_000);
        t.insert_both_ways(None, "S1", "S2", 12_000);
        t.insert_both_ways(None, "S2", "S3", 4_000);
        t.insert_both_ways(None, "S1", "S3", 16_000);
        Net(t)
    }
}

impl Distances for Net {
    fn distance_m(&self, route_id: Option<&str>, from_stop: &str, to_stop: &str) -> Option<u32> {
        self.0.distance_m(route_id, from_stop, to_stop)
    }
}

impl NetworkView for Net {
    fn operator(&self, route_id: Option<&str>, _stop_id: &str) -> String {
        if route_id.is_some() {
            "bus".into()
        } else {
            "metro".into()
        }
    }
}

fn at(h: i8, m: i8) -> DateTime {
    date(2026, 3, 4).at(h, m, 0, 0)
}

struct Rider {
    book: CardBook,
    net: Net,
    n: usize,
}

impl Rider {
    fn new() -> Rider {
        Rider {
            book: CardBook::new(FareRules::seoul()),
            net: Net::new(),
            n: 0,
        }
    }

    fn run(&mut self, request: Request) -> Answer {
        self.n += 1;
        let op = Operation {
            op_id: format!("op-{}", self.n),
            at: 1_000 + self.n as i64,
            request,
        };
        self.book.execute(op, &self.net).answer
    }

    fn issue(&mut self, registered: bool) -> i64 {
        match self.run(Request::Issue {
            category: Category::Adult,
            registered_to: registered.then_some(7),
        }) {
            Answer::Issued { card_id, .. } => card_id,
            other => panic!("{other:?}"),
        }
    }

    #[allow(clippy::too_many_arguments)] // one argument per field of a tap reads best in the tests
    fn tap(
        &mut self,
        card_id: i64,
        counter: i64,
        direction: TapKind,
        stop: &str,
        route: Option<&str>,
        mode: Mode,
        when: DateTime,
    ) -> Answer {
        self.run(Request::Tap {
            card_id,
            validator_id: format!("v-{stop}"),
            counter,
            direction,
            stop_id: stop.into(),
            route_id: route.map(str::to_owned),
            mode,
            vehicle_id: None,
            at: when,
        })
    }

    fn balance(&self, card_id: i64) -> i64 {
        self.book.card(card_id).unwrap().balance
    }
}

fn amount(answer: &Answer) -> i64 {
    match answer {
        Answer::TapAccepted { amount, .. } => *amount,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_bus_to_subway_journey_is_charged_once_with_transfer_and_distance() {
    let mut r = Rider::new();
    let card = r.issue(false);
    r.run(Request::TopUp {
        card_id: card,
        amount: 10_000,
    });
    assert_eq!(
        amount(&r.tap(
            card,
            1,
            TapKind::In,
            "A",
            Some("741"),
            Mode::Trunk,
            at(8, 0)
        )),
        1_500
    );
    r.tap(
        card,
        2,
        TapKind::Out,
        "B",
        Some("741"),
        Mode::Trunk,
        at(8, 20),
    );
    // Transfer within 30 minutes: the subway's higher base fare difference.
    let board = amount(&r.tap(card, 3, TapKind::In, "S1", None, Mode::Subway, at(8, 30)));
    assert_eq!(board, 50);
    // 8 km + 12 km = 20 km: two 5 km steps beyond 10 km.
    let out = amount(&r.tap(card, 4, TapKind::Out, "S2", None, Mode::Subway, at(8, 50)));
    assert_eq!(out, 200);
    assert_eq!(r.balance(card), 10_000 - 1_750);
    assert!(r.book.ledger().audit().holds());
}

#[test]
fn a_repeated_tap_is_answered_as_before_and_never_charged_twice() {
    let mut r = Rider::new();
    let card = r.issue(false);
    r.run(Request::TopUp {
        card_id: card,
        amount: 10_000,
    });
    let first = r.tap(
        card,
        1,
        TapKind::In,
        "A",
        Some("741"),
        Mode::Trunk,
        at(8, 0),
    );
    let again = r.tap(
        card,
        1,
        TapKind::In,
        "A",
        Some("741"),
        Mode::Trunk,
        at(8, 0),
    );
    assert_eq!(first, again);
    assert_eq!(r.balance(card), 8_500);
}

#[test]
fn a_late_tap_out_reprices_with_an_adjustment_not_an_edit() {
    let mut r = Rider::new();
    let card = r.issue(false);
    r.run(Request::TopUp {
        card_id: card,
        amount: 10_000,
    });
    r.tap(
        card,
        1,
        TapKind::In,
        "A",
        Some("741"),
        Mode::Trunk,
        at(8, 0),
    );
    // The bus validator was offline: the subway tap-in arrives first, as a new journey.
    let subway = amount(&r.tap(card, 1, TapKind::In, "S1", None, Mode::Subway, at(8, 30)));
    let before = r.balance(card);
    let transfers_before = r.book.ledger().len();
    // Now the bus tap-out arrives: the subway boarding becomes a transfer.
    let late = r.tap(
        card,
        2,
        TapKind::Out,
        "B",
        Some("741"),
        Mode::Trunk,
        at(8, 20),
    );
    match &late {
        Answer::TapAccepted { late, .. } => assert!(late),
        other => panic!("{other:?}"),
    }
    assert!(
        amount(&late) < 0,
        "the late tap lowers what was charged: {late:?} after a subway charge of {subway}"
    );
    assert!(r.balance(card) > before);
    assert!(
        r.book.ledger().len() > transfers_before,
        "corrections are new transfers"
    );
    assert!(r.book.ledger().audit().holds());
    // What the card paid equals the fare of the taps in time order.
    let out = amount(&r.tap(card, 2, TapKind::Out, "S2", None, Mode::Subway, at(8, 50)));
    assert_eq!(
        10_000 - r.balance(card),
        1_550 + 200,
        "bus+subway as one journey of 20 km; last tap charged {out}"
    );
}

#[test]
fn one_boarding_on_a_low_balance_then_refusal_until_a_top_up_repays_it() {
    let mut r = Rider::new();
    let card = r.issue(false);
    r.run(Request::TopUp {
        card_id: card,
        amount: 1_000,
    });
    r.tap(
        card,
        1,
        TapKind::In,
        "A",
        Some("741"),
        Mode::Trunk,
        at(8, 0),
    );
    assert_eq!(r.balance(card), -500);
    let refused = r.tap(
        card,
        2,
        TapKind::In,
        "A",
        Some("741"),
        Mode::Trunk,
        at(12, 0),
    );
    assert_eq!(
        refused,
        Answer::Refused {
            reason: RefusalReason::InsufficientBalance
        }
    );
    assert_eq!(
        r.run(Request::TopUp {
            card_id: card,
            amount: 5_000
        }),
        Answer::ToppedUp { balance: 4_500 }
    );
    assert!(matches!(
        r.run(Request::TopUp {
            card_id: card,
            amount: 500_000
        }),
        Answer::Refused {
            reason: RefusalReason::BalanceLimit
        }
    ));
}

#[test]
fn lost_registered_cards_are_blocked_and_their_balance_moves() {
    let mut r = Rider::new();
    let lost = r.issue(true);
    let anonymous = r.issue(false);
    let new = r.issue(true);
    r.run(Request::TopUp {
        card_id: lost,
        amount: 20_000,
    });
    assert_eq!(
        r.run(Request::Block {
            card_id: anonymous,
            replacement: new
        }),
        Answer::Refused {
            reason: RefusalReason::NotRegistered
        }
    );
    assert_eq!(
        r.run(Request::Block {
            card_id: lost,
            replacement: new
        }),
        Answer::Blocked {
            moved: 20_000,
            replacement: new
        }
    );
    assert_eq!(r.balance(new), 20_000);
    assert_eq!(
        r.tap(
            lost,
            1,
            TapKind::In,
            "A",
            Some("741"),
            Mode::Trunk,
            at(8, 0)
        ),
        Answer::Refused {
            reason: RefusalReason::BlockedCard
        }
    );
    assert_eq!(
        r.run(Request::Refund { card_id: new }),
        Answer::Refunded { amount: 20_000 }
    );
    assert_eq!(r.balance(new), 0);
    assert_eq!(
        r.tap(99, 2, TapKind::In, "A", Some("741"), Mode::Trunk, at(8, 0)),
        Answer::Refused {
            reason: RefusalReason::UnknownCard
        }
    );
    assert!(r.book.ledger().audit().holds());
}

#[test]
fn an_op_id_reused_for_another_request_is_refused() {
    let mut r = Rider::new();
    let card = r.issue(false);
    let op = Operation {
        op_id: "same".into(),
        at: 1,
        request: Request::TopUp {
            card_id: card,
            amount: 1_000,
        },
    };
    r.book.execute(op.clone(), &r.net);
    let other = Operation {
        op_id: "same".into(),
        at: 2,
        request: Request::TopUp {
            card_id: card,
            amount: 9_000,
        },
    };
    assert_eq!(
        r.book.execute(other, &r.net).answer,
        Answer::Refused {
            reason: RefusalReason::OpIdReused
        }
    );
    assert_eq!(r.balance(card), 1_000);
}

proptest! {
    /// Taps arriving in any order: the ledger always holds, and once all
    /// have arrived the card has paid exactly the fare of its taps in time order.
    #[test]
    fn any_arrival_order_ends_at_the_fare_of_the_journey(order in Just((0..6).collect::<Vec<usize>>()).prop_shuffle()) {
        let taps = [
            (TapKind::In, "A", Some("741"), Mode::Trunk, at(8, 0)),
            (TapKind::Out, "C", Some("741"), Mode::Trunk, at(8, 10)),
            (TapKind::In, "S1", None, Mode::Subway, at(8, 20)),
            (TapKind::Out, "S3", None, Mode::Subway, at(8, 45)),
            (TapKind::In, "C", Some("741"), Mode::Trunk, at(9, 0)),
            (TapKind::Out, "B", Some("741"), Mode::Trunk, at(9, 15)),
        ];
        let mut r = Rider::new();
        let card = r.issue(false);
        r.run(Request::TopUp { card_id: card, amount: 50_000 });
        for (counter, &i) in order.iter().enumerate() {
            let (kind, stop, route, mode, when) = taps[i];
            let answer = r.tap(card, counter as i64, kind, stop, route, mode, when);
            prop_assert!(matches!(answer, Answer::TapAccepted { .. }), "{:?}", answer);
            prop_assert!(r.book.ledger().audit().holds());
        }
        let in_order: Vec<cityos_fare::Tap> = taps.iter().map(|&(kind, stop, route, mode, when)| cityos_fare::Tap {
            at: when, kind, stop_id: stop.into(), route_id: route.map(str::to_owned), mode,
        }).collect();
        let fare = cityos_fare::quote(&FareRules::seoul(), Category::Adult, &in_order, &r.net).unwrap().total;
        prop_assert_eq!(50_000 - r.balance(card), fare);
    }
}

#[test]
fn settlement_splits_a_journeys_fare_between_operators_by_distance() {
    let mut r = Rider::new();
    let card = r.issue(false);
    r.run(Request::TopUp {
        card_id: card,
        amount: 10_000,
    });
    r.tap(
        card,
        1,
        TapKind::In,
        "A",
        Some("741"),
        Mode::Trunk,
        at(8, 0),
    );
    r.tap(
        card,
        2,
        TapKind::Out,
        "B",
        Some("741"),
        Mode::Trunk,
        at(8, 20),
    );
    r.tap(card, 3, TapKind::In, "S1", None, Mode::Subway, at(8, 30));
    r.tap(card, 4, TapKind::Out, "S2", None, Mode::Subway, at(8, 50));
    // A journey still open at `until` waits.
    assert_eq!(
        r.run(Request::Settle { until: at(8, 40) }),
        Answer::Settled {
            journeys: 0,
            amount: 0
        }
    );
    assert_eq!(
        r.run(Request::Settle { until: at(10, 0) }),
        Answer::Settled {
            journeys: 1,
            amount: 1_750
        }
    );
    // 8 km by bus, 12 km by subway: 40% and 60% of 1,750.
    assert_eq!(r.book.ledger().balance("revenue:bus"), 700);
    assert_eq!(r.book.ledger().balance("revenue:metro"), 1_050);
    assert_eq!(r.book.ledger().balance("fare:clearing"), 0);
    // Settling again moves nothing.
    assert_eq!(
        r.run(Request::Settle { until: at(11, 0) }),
        Answer::Settled {
            journeys: 0,
            amount: 0
        }
    );
    assert!(r.book.ledger().audit().holds());
}
