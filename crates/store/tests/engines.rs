//! Every storage behaviour, run on both engines: a fresh SQLite file and a
//! fresh database on a throwaway PostgreSQL server.

use cityos_store::{Store, StoreError, testing};

/// Runs `$body` with `$store` bound to each engine in turn.
macro_rules! on_both_engines {
    ($name:ident, |$store:ident| $body:block) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let $store = Store::open(&testing::sqlite_path(dir.path()))
                    .await
                    .unwrap();
                $body
            }

            #[tokio::test]
            async fn postgres() {
                let Some(url) = testing::postgres_url().await else {
                    return;
                };
                let $store = Store::open(&url).await.unwrap();
                $body
            }
        }
    };
}

on_both_engines!(
    migrations_are_applied_once_and_reopening_is_harmless,
    |store| {
        assert_eq!(store.schema_version().await.unwrap(), 5);
    }
);

on_both_engines!(users_are_unique_by_email, |store| {
    let user = store
        .create_user("minji@example.org", "Minji", Some("$argon2id$x"), "citizen")
        .await
        .unwrap();
    assert_eq!(
        store.user_by_email("minji@example.org").await.unwrap(),
        Some(user.clone())
    );
    assert_eq!(store.user_by_id(user.id).await.unwrap(), Some(user.clone()));
    let again = store
        .create_user("minji@example.org", "Other", None, "admin")
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert!(
        store
            .update_user(user.id, "department_staff", true)
            .await
            .unwrap()
    );
    let updated = store.user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(
        (updated.role.as_str(), updated.disabled),
        ("department_staff", true)
    );
    assert!(!store.update_user(9999, "admin", false).await.unwrap());
});

on_both_engines!(
    sessions_expire_and_end_and_stop_for_disabled_users,
    |store| {
        let user = store
            .create_user("a@example.org", "A", None, "citizen")
            .await
            .unwrap();
        let now = cityos_store::now_unix();
        store
            .create_session("live", user.id, now + 3600)
            .await
            .unwrap();
        store.create_session("old", user.id, now - 1).await.unwrap();
        assert_eq!(
            store.session_user("live").await.unwrap().map(|u| u.id),
            Some(user.id)
        );
        assert_eq!(store.session_user("old").await.unwrap(), None);
        assert_eq!(store.session_user("unknown").await.unwrap(), None);
        store.update_user(user.id, "citizen", true).await.unwrap();
        assert_eq!(store.session_user("live").await.unwrap(), None);
        assert!(store.delete_session("live").await.unwrap());
        assert!(!store.delete_session("live").await.unwrap());
    }
);

on_both_engines!(api_keys_resolve_until_revoked, |store| {
    let key = store
        .create_api_key("digest", "bus depot 3", "transit_operator", None)
        .await
        .unwrap();
    assert_eq!(store.api_key("digest").await.unwrap(), Some(key.clone()));
    assert!(store.revoke_api_key(key.id).await.unwrap());
    assert_eq!(store.api_key("digest").await.unwrap(), None);
});

on_both_engines!(networks_swap_atomically_and_keep_their_bytes, |store| {
    assert_eq!(store.active_network().await.unwrap(), None);
    // Bigger than one chunk, so reassembly is exercised.
    let big: Vec<u8> = (0..(9usize << 20)).map(|i| (i % 251) as u8).collect();
    let first = store
        .save_network("a.zip", "{\"routes\":1}", &big)
        .await
        .unwrap();
    assert!(first.active);
    assert_eq!(store.network_bytes(first.id).await.unwrap(), big);
    let second = store
        .save_network("b.zip", "{\"routes\":2}", b"small")
        .await
        .unwrap();
    let active = store.active_network().await.unwrap().unwrap();
    assert_eq!((active.id, active.source.as_str()), (second.id, "b.zip"));
    assert!(!store.network(first.id).await.unwrap().unwrap().active);
    // Rolling back is flipping the flag.
    store.activate_network(first.id).await.unwrap();
    assert_eq!(store.active_network().await.unwrap().unwrap().id, first.id);
    for i in 0..4 {
        store
            .save_network(&format!("{i}.zip"), "{}", b"x")
            .await
            .unwrap();
    }
    assert_eq!(
        store.list_networks().await.unwrap().len(),
        3,
        "one active and two kept for rollback"
    );
});

fn op(op_id: &str, card_id: i64) -> cityos_store::cards::CardOpRow {
    cityos_store::cards::CardOpRow {
        seq: 0,
        op_id: op_id.into(),
        kind: "tap".into(),
        card_id,
        request: "{}".into(),
        answer: "{\"accepted\":true}".into(),
        at: 1,
    }
}

fn transfer(id: &str, debit: &str, credit: &str, amount: i64) -> cityos_store::cards::TransferRow {
    cityos_store::cards::TransferRow {
        id: id.into(),
        debit: debit.into(),
        credit: credit.into(),
        amount,
        kind: "fare".into(),
        reference: None,
        at: 1,
    }
}

on_both_engines!(card_batches_commit_whole_or_not_at_all, |store| {
    use cityos_store::cards::{CardBatch, TapKey};
    let batch = CardBatch {
        ops: vec![op("op-1", 7), op("op-2", 7)],
        transfers: vec![
            transfer("tr-1", "cash:top_up", "card:7", 10_000),
            transfer("tr-2", "card:7", "revenue:bus", 1_500),
        ],
        taps: vec![TapKey {
            validator_id: "v1".into(),
            counter: 1,
            op_id: "op-2".into(),
        }],
    };
    store.append_card_batch(batch).await.unwrap();
    // A batch repeating a validator counter is refused whole: its new op and transfer are not written either.
    let repeat = CardBatch {
        ops: vec![op("op-3", 7)],
        transfers: vec![transfer("tr-3", "card:7", "revenue:bus", 1_500)],
        taps: vec![TapKey {
            validator_id: "v1".into(),
            counter: 1,
            op_id: "op-3".into(),
        }],
    };
    assert!(matches!(
        store.append_card_batch(repeat).await,
        Err(StoreError::Conflict(_))
    ));
    let ops = store.card_ops_after(0, 100).await.unwrap();
    assert_eq!(
        ops.iter().map(|o| o.op_id.as_str()).collect::<Vec<_>>(),
        vec!["op-1", "op-2"]
    );
    assert_eq!(store.card_ops_of(7).await.unwrap().len(), 2);
    assert_eq!(store.transfer_count().await.unwrap(), 2);
    assert_eq!(store.transfers_of("card:7").await.unwrap().len(), 2);
    let balances = store.ledger_balances().await.unwrap();
    assert_eq!(
        balances.iter().map(|b| b.1).sum::<i64>(),
        0,
        "double entry sums to zero"
    );
    assert!(balances.contains(&("card:7".to_owned(), 8_500)));
    // The database itself refuses non-positive amounts and self-transfers.
    let bad = CardBatch {
        transfers: vec![transfer("tr-4", "a", "b", 0)],
        ..Default::default()
    };
    assert!(store.append_card_batch(bad).await.is_err());
    let bad = CardBatch {
        transfers: vec![transfer("tr-5", "a", "a", 5)],
        ..Default::default()
    };
    assert!(store.append_card_batch(bad).await.is_err());
});

on_both_engines!(fare_rules_versions_are_kept_in_order, |store| {
    assert!(store.fare_rules_versions().await.unwrap().is_empty());
    store.add_fare_rules(1, "[a]").await.unwrap();
    store.add_fare_rules(2, "[b]").await.unwrap();
    assert!(matches!(
        store.add_fare_rules(2, "[c]").await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.fare_rules_versions().await.unwrap(),
        vec![(1, "[a]".to_owned()), (2, "[b]".to_owned())]
    );
});

on_both_engines!(stop_events_are_history_kept_once, |store| {
    use cityos_store::live::StopEventRow;
    let event = |seq: i64, kind: &str, at: i64| StopEventRow {
        service_date: "2026-03-03".into(),
        trip_id: "T1".into(),
        stop_sequence: seq,
        stop_id: format!("S{seq}"),
        kind: kind.into(),
        at,
        observed: seq > 1,
    };
    store
        .append_stop_events(vec![event(2, "arrival", 200), event(1, "departure", 100)])
        .await
        .unwrap();
    // Detected again after a restart: the first record stands.
    store
        .append_stop_events(vec![event(2, "arrival", 999), event(2, "departure", 230)])
        .await
        .unwrap();
    let history = store.stop_events_of("T1", "2026-03-03").await.unwrap();
    assert_eq!(
        history,
        vec![
            event(1, "departure", 100),
            event(2, "arrival", 200),
            event(2, "departure", 230)
        ]
    );
    assert!(
        store
            .stop_events_of("T1", "2026-03-04")
            .await
            .unwrap()
            .is_empty()
    );
});

on_both_engines!(one_open_incident_per_detected_condition, |store| {
    let first = store
        .create_incident("proposed", "stalled", Some("stalled:bus-1"), "{}")
        .await
        .unwrap()
        .expect("recorded");
    assert_eq!(first.status, "proposed");
    // The same condition seen again while the incident is open: not recorded twice.
    let again = store
        .create_incident("proposed", "stalled", Some("stalled:bus-1"), "{}")
        .await
        .unwrap();
    assert_eq!(again, None);
    // Operators' incidents have no key and never collide.
    for _ in 0..2 {
        assert!(
            store
                .create_incident("active", "operator", None, r#"{"header":"x"}"#)
                .await
                .unwrap()
                .is_some()
        );
    }
    assert!(
        store
            .update_incident(first.id, "dismissed", "{}")
            .await
            .unwrap()
    );
    assert!(
        !store
            .update_incident(first.id + 100, "active", "{}")
            .await
            .unwrap()
    );
    // Once closed, the condition may propose a new incident.
    assert!(
        store
            .create_incident("proposed", "stalled", Some("stalled:bus-1"), "{}")
            .await
            .unwrap()
            .is_some()
    );
    let listed = store.incidents(0).await.unwrap();
    assert_eq!(listed.len(), 4);
    assert!(listed.windows(2).all(|w| w[0].id > w[1].id));
    assert_eq!(
        store.incident(first.id).await.unwrap().unwrap().status,
        "dismissed"
    );
    // Only open incidents, and those closed since the cut-off.
    let recent = store.incidents(i64::MAX).await.unwrap();
    assert_eq!(recent.len(), 3);
});

on_both_engines!(learned_history_is_kept_and_replaced, |store| {
    assert_eq!(store.learned_history().await.unwrap(), None);
    store.save_learned_history(vec![1, 2, 3]).await.unwrap();
    store.save_learned_history(vec![4, 5]).await.unwrap();
    assert_eq!(store.learned_history().await.unwrap(), Some(vec![4, 5]));
});
