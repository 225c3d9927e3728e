//! The card desk on both storage engines: answers only once durable, rebuilds
//! exactly after a restart, and its audit holds.

use std::sync::Arc;

use cityos_card::{Answer, CardDesk, NetworkSource, NetworkView, Request};
use cityos_fare::{Category, DistanceTable, Distances, FareRules, Mode, TapKind};
use cityos_store::{Store, testing};

struct Net(DistanceTable);

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

fn network(km: u32) -> NetworkSource {
    let mut t = DistanceTable::new();
    t.insert_both_ways(Some("741"), "A", "B", km * 1000);
    let view: Arc<dyn NetworkView + Send + Sync> = Arc::new(Net(t));
    Arc::new(move || view.clone())
}

fn tap(
    card_id: i64,
    validator: usize,
    counter: i64,
    direction: TapKind,
    stop: &str,
    minute: i64,
) -> Request {
    let at = jiff::civil::date(2026, 3, 4).at(8, 0, 0, 0) + jiff::SignedDuration::from_mins(minute);
    Request::Tap {
        card_id,
        validator_id: format!("bus-{validator}"),
        counter,
        direction,
        stop_id: stop.into(),
        route_id: Some("741".into()),
        mode: Mode::Trunk,
        vehicle_id: None,
        at,
    }
}

async fn scenario(store: Store) {
    let desk = CardDesk::open(store.clone(), FareRules::seoul_toml(), network(15))
        .await
        .unwrap();
    let mut cards = vec![];
    for i in 0..20 {
        let Answer::Issued { card_id, .. } = desk
            .submit(
                &format!("issue-{i}"),
                Request::Issue {
                    category: Category::Adult,
                    registered_to: None,
                },
            )
            .await
            .unwrap()
        else {
            panic!("not issued")
        };
        desk.submit(
            &format!("top-{i}"),
            Request::TopUp {
                card_id,
                amount: 50_000,
            },
        )
        .await
        .unwrap();
        cards.push(card_id);
    }
    // Many validators at once share group commits; each card rides in order.
    let mut handles = vec![];
    for (v, &card) in cards.iter().enumerate() {
        let desk = desk.clone();
        handles.push(tokio::spawn(async move {
            let mut answers = vec![];
            for ride in 0..5i64 {
                answers.push(
                    desk.submit(
                        &format!("tap:bus-{v}:{}", ride * 2),
                        tap(card, v, ride * 2, TapKind::In, "A", ride * 120),
                    )
                    .await
                    .unwrap(),
                );
                answers.push(
                    desk.submit(
                        &format!("tap:bus-{v}:{}", ride * 2 + 1),
                        tap(card, v, ride * 2 + 1, TapKind::Out, "B", ride * 120 + 30),
                    )
                    .await
                    .unwrap(),
                );
            }
            answers
        }));
    }
    for h in handles {
        for pair in h.await.unwrap().chunks(2) {
            assert!(
                matches!(pair[0], Answer::TapAccepted { amount: 1_500, .. }),
                "{:?}",
                pair[0]
            );
            // 15 km: one 5 km step beyond the base 10 km.
            assert!(
                matches!(pair[1], Answer::TapAccepted { amount: 100, .. }),
                "{:?}",
                pair[1]
            );
        }
    }
    let audit = desk.audit().await.unwrap();
    assert!(audit.holds(), "{audit:?}");
    assert_eq!(audit.operations, 20 * 2 + 20 * 10);
    let balance = desk.balance(cards[0]);
    assert_eq!(balance, 50_000 - 5 * 1_600);
    // Settle everything: clearing empties into the operator's revenue.
    let until = jiff::civil::date(2026, 3, 5).at(0, 0, 0, 0);
    let settled = desk
        .submit("settle-1", Request::Settle { until })
        .await
        .unwrap();
    assert_eq!(
        settled,
        Answer::Settled {
            journeys: 100,
            amount: 100 * 1_600
        }
    );
    drop(desk);

    // A restart replays the log to the same book, even if the network changed meanwhile.
    let again = CardDesk::open(store, FareRules::seoul_toml(), network(40))
        .await
        .unwrap();
    assert_eq!(again.balance(cards[0]), balance);
    let repeat = again
        .submit("tap:bus-0:1", tap(cards[0], 0, 1, TapKind::Out, "B", 30))
        .await
        .unwrap();
    assert!(
        matches!(repeat, Answer::TapAccepted { amount: 100, .. }),
        "a repeat is answered as before: {repeat:?}"
    );
    assert_eq!(again.balance(cards[0]), balance, "and never charged twice");
    let audit = again.audit().await.unwrap();
    assert!(audit.holds(), "{audit:?}");
    assert_eq!(again.history(cards[0]).await.unwrap().len(), 2 + 10);
    let ridership = again.ridership(None);
    assert!(
        again
            .ridership(Some(jiff::civil::date(2026, 3, 5)))
            .by_stop()
            .is_empty(),
        "no taps that day"
    );
    assert_eq!(ridership.by_stop().get("A").map(|c| c.boardings), Some(100));
    assert_eq!(
        ridership
            .origin_destination
            .get(&("A".to_owned(), "B".to_owned())),
        Some(&100)
    );
}

#[tokio::test]
async fn desk_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    scenario(
        Store::open(&testing::sqlite_path(dir.path()))
            .await
            .unwrap(),
    )
    .await;
}

#[tokio::test]
async fn desk_on_postgres() {
    let Some(url) = testing::postgres_url().await else {
        return;
    };
    scenario(Store::open(&url).await.unwrap()).await;
}

/// A commit that fails answers nobody in its batch with success, and the desk
/// rebuilds from what is durable: acknowledged operations and the store agree.
#[tokio::test]
async fn a_failed_commit_acknowledges_nothing_and_the_desk_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = testing::sqlite_path(dir.path());
    let store = Store::open(&path).await.unwrap();
    // Inject a failure: the database refuses one operation id.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(r#"CREATE TRIGGER poison BEFORE INSERT ON card_log WHEN NEW.body LIKE '%"op_id":"top-poison"%' BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"#)
        .unwrap();
    let desk = CardDesk::open(store.clone(), FareRules::seoul_toml(), network(5))
        .await
        .unwrap();
    let Answer::Issued { card_id, .. } = desk
        .submit(
            "issue",
            Request::Issue {
                category: Category::Adult,
                registered_to: None,
            },
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    let mut handles = vec![];
    for i in 0..200 {
        let desk = desk.clone();
        let op_id = if i == 100 {
            "top-poison".to_owned()
        } else {
            format!("top-{i}")
        };
        handles.push(tokio::spawn(async move {
            (
                op_id.clone(),
                desk.submit(
                    &op_id,
                    Request::TopUp {
                        card_id,
                        amount: 100,
                    },
                )
                .await,
            )
        }));
    }
    let mut acknowledged = 0;
    let mut refused = vec![];
    for h in handles {
        let (op_id, result) = h.await.unwrap();
        match result {
            Ok(Answer::ToppedUp { .. }) => acknowledged += 1,
            Ok(other) => panic!("{other:?}"),
            Err(_) => refused.push(op_id),
        }
    }
    assert!(
        refused.contains(&"top-poison".to_owned()),
        "the poisoned operation is never acknowledged"
    );
    // Everything acknowledged, and only that, is durable and in the book.
    assert_eq!(desk.balance(card_id), acknowledged * 100);
    let audit = desk.audit().await.unwrap();
    assert!(audit.holds(), "{audit:?}");
    // The desk still works: a retry of a refused operation succeeds.
    let retry = refused.iter().find(|id| *id != "top-poison").cloned();
    if let Some(op_id) = &retry {
        let answer = desk
            .submit(
                op_id,
                Request::TopUp {
                    card_id,
                    amount: 100,
                },
            )
            .await
            .unwrap();
        assert!(matches!(answer, Answer::ToppedUp { .. }), "{answer:?}");
    }
    let expected = (acknowledged + i64::from(retry.is_some())) * 100;
    assert_eq!(desk.balance(card_id), expected);
    drop(desk);
    let again = CardDesk::open(store, FareRules::seoul_toml(), network(5))
        .await
        .unwrap();
    assert_eq!(
        again.balance(card_id),
        expected,
        "a restart sees exactly what was acknowledged"
    );
}

/// A fare change takes effect from the next operation; what was charged before
/// keeps its price, and the log still replays after the change.
#[tokio::test]
async fn a_fare_change_applies_from_now_on_and_the_past_keeps_its_prices() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&testing::sqlite_path(dir.path()))
        .await
        .unwrap();
    let desk = CardDesk::open(store.clone(), FareRules::seoul_toml(), network(5))
        .await
        .unwrap();
    let Answer::Issued { card_id, .. } = desk
        .submit(
            "issue",
            Request::Issue {
                category: Category::Adult,
                registered_to: None,
            },
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    desk.submit(
        "top",
        Request::TopUp {
            card_id,
            amount: 10_000,
        },
    )
    .await
    .unwrap();
    let old = desk
        .submit("tap:bus-0:1", tap(card_id, 0, 1, TapKind::In, "A", 0))
        .await
        .unwrap();
    assert!(
        matches!(old, Answer::TapAccepted { amount: 1_500, .. }),
        "{old:?}"
    );
    desk.submit("tap:bus-0:2", tap(card_id, 0, 2, TapKind::Out, "B", 30))
        .await
        .unwrap();
    drop(desk);

    let dearer = FareRules::seoul_toml().replace(
        "[modes.trunk]                   # 간선, blue\nfare = { adult = 1_500",
        "[modes.trunk]                   # 간선, blue\nfare = { adult = 1_600",
    );
    assert_ne!(dearer, FareRules::seoul_toml(), "the test changes a fare");
    let desk = CardDesk::open(store.clone(), &dearer, network(5))
        .await
        .unwrap();
    assert_eq!(desk.balance(card_id), 8_500, "the past keeps its price");
    let new = desk
        .submit("tap:bus-0:3", tap(card_id, 0, 3, TapKind::In, "A", 600))
        .await
        .unwrap();
    assert!(
        matches!(new, Answer::TapAccepted { amount: 1_600, .. }),
        "{new:?}"
    );
    drop(desk);
    // Reopening with the same rules adds no version and replays both prices.
    let desk = CardDesk::open(store.clone(), &dearer, network(5))
        .await
        .unwrap();
    assert_eq!(desk.balance(card_id), 10_000 - 1_500 - 1_600);
    assert_eq!(store.fare_rules_versions().await.unwrap().len(), 2);
    assert!(desk.audit().await.unwrap().holds());
    // Rules that do not parse are refused with the reason.
    assert!(matches!(
        CardDesk::open(store, "[modes", network(5)).await,
        Err(cityos_card::DeskError::Rules(_))
    ));
}

/// A database written by the per-operation tables of earlier versions opens
/// with every card and won where it was, now in the journal.
#[tokio::test]
async fn operations_of_the_earlier_tables_move_into_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = testing::sqlite_path(dir.path());
    let store = Store::open(&path).await.unwrap();
    let card = 1_000_000_000_000_001_i64;
    let legacy = [
        (
            "issue-1",
            r#"{"kind":"issue","category":"youth"}"#.to_owned(),
            format!(r#"{{"result":"issued","card_id":{card},"category":"youth"}}"#),
        ),
        (
            "top-1",
            format!(r#"{{"kind":"top_up","card_id":{card},"amount":7000}}"#),
            r#"{"result":"topped_up","balance":7000}"#.to_owned(),
        ),
    ];
    let db = rusqlite::Connection::open(&path).unwrap();
    for (op_id, request, answer) in &legacy {
        let logged = format!(
            r#"{{"op":{{"op_id":"{op_id}","at":100,"request":{request}}},"lookups":{{"distances":[],"operators":[]}},"rules":0}}"#
        );
        db.execute(
            "INSERT INTO card_ops (op_id, kind, card_id, request, answer, at) VALUES (?1, 'x', ?2, ?3, ?4, 100)",
            rusqlite::params![op_id, card, logged, answer],
        )
        .unwrap();
    }
    db.execute(
        "INSERT INTO ledger_transfers (id, debit, credit, amount, kind, at) VALUES ('top-1:top_up', 'cash:top_up', 'card:1', 7000, 'top_up', 100)",
        [],
    )
    .unwrap();
    let desk = CardDesk::open(store.clone(), FareRules::seoul_toml(), network(5))
        .await
        .unwrap();
    assert_eq!(desk.balance(card), 7_000);
    assert_eq!(desk.card(card).unwrap().category, Category::Youth);
    assert_eq!(desk.history(card).await.unwrap().len(), 2);
    let audit = desk.audit().await.unwrap();
    assert!(audit.holds(), "{audit:?}");
    assert_eq!((audit.operations, audit.transfers), (2, 1));
    for table in ["card_ops", "ledger_transfers"] {
        let rows: i64 = db
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 0, "{table} is emptied into the journal");
    }
    // Reopening replays the journal alone to the same state; a repeat answers as before.
    drop(desk);
    let desk = CardDesk::open(store, FareRules::seoul_toml(), network(5))
        .await
        .unwrap();
    assert_eq!(desk.balance(card), 7_000);
    let repeat = desk
        .submit(
            "top-1",
            Request::TopUp {
                card_id: card,
                amount: 7000,
            },
        )
        .await
        .unwrap();
    assert_eq!(repeat, Answer::ToppedUp { balance: 7_000 });
}

/// Two replicas on one PostgreSQL take turns writing the journal: every
/// request is answered, card numbers never repeat, each replica follows the
/// other's writes, and the audit holds on both.
#[tokio::test]
async fn replicas_on_one_postgres_take_turns() {
    let Some(url) = testing::postgres_url().await else {
        return;
    };
    let mut desks = Vec::new();
    for _ in 0..2 {
        let store = Store::open(&url).await.unwrap();
        desks.push(
            CardDesk::open(store, FareRules::seoul_toml(), network(5))
                .await
                .unwrap(),
        );
    }
    let mut riders = Vec::new();
    for (r, desk) in desks.iter().enumerate() {
        for c in 0..10 {
            let desk = desk.clone();
            riders.push(tokio::spawn(async move {
                let issued = desk
                    .submit(
                        &format!("issue-{r}-{c}"),
                        Request::Issue {
                            category: Category::Adult,
                            registered_to: None,
                        },
                    )
                    .await
                    .expect("answered");
                let Answer::Issued { card_id, .. } = issued else {
                    panic!("{issued:?}")
                };
                let topped = desk
                    .submit(
                        &format!("top-{r}-{c}"),
                        Request::TopUp {
                            card_id,
                            amount: 10_000,
                        },
                    )
                    .await
                    .expect("answered");
                assert!(matches!(topped, Answer::ToppedUp { .. }), "{topped:?}");
                let validator = r * 100 + c;
                for (k, (direction, stop)) in [(TapKind::In, "A"), (TapKind::Out, "B")]
                    .into_iter()
                    .enumerate()
                {
                    let answer = desk
                        .submit(
                            &format!("tap-{validator}-{k}"),
                            tap(card_id, validator, k as i64, direction, stop, 10 * k as i64),
                        )
                        .await
                        .expect("answered");
                    assert!(matches!(answer, Answer::TapAccepted { .. }), "{answer:?}");
                }
                card_id
            }));
        }
    }
    let mut cards = Vec::new();
    for rider in riders {
        cards.push(rider.await.unwrap());
    }
    let mut distinct = cards.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 20, "no card number is handed out twice");
    // Each replica follows the other's writes within a moment.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !cards
        .iter()
        .all(|&c| desks.iter().all(|d| d.balance(c) == 10_000 - 1_500))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the replicas do not agree on every balance"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for desk in &desks {
        let audit = desk.audit().await.unwrap();
        assert!(audit.holds(), "{audit:?}");
        assert_eq!(audit.operations, 20 * 4);
    }
}
