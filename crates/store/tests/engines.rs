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
        assert_eq!(store.schema_version().await.unwrap(), 7);
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

on_both_engines!(card_journal_batches_are_numbered_and_kept_whole, |store| {
    use cityos_store::{StoreError, cards::CardLogBatch};
    let batch = |n: i64, body: &str| CardLogBatch {
        batch: n,
        ops: 1,
        body: body.to_owned(),
    };
    store.append_card_log(batch(1, "[1]")).await.unwrap();
    store.append_card_log(batch(2, "[2]")).await.unwrap();
    // A second writer that read the same journal collides instead of interleaving.
    assert!(matches!(
        store.append_card_log(batch(2, "[other]")).await,
        Err(StoreError::Conflict(_))
    ));
    // A batch claiming no operations is refused by the database.
    assert!(
        store
            .append_card_log(CardLogBatch {
                ops: 0,
                ..batch(3, "[]")
            })
            .await
            .is_err()
    );
    let stored = store.card_log_after(0, 10).await.unwrap();
    assert_eq!(stored, vec![batch(1, "[1]"), batch(2, "[2]")]);
    assert_eq!(
        store.card_log_after(1, 10).await.unwrap(),
        vec![batch(2, "[2]")]
    );
    assert_eq!(store.card_log_after(0, 1).await.unwrap().len(), 1);
    assert!(store.legacy_card_ops().await.unwrap().is_empty());
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

on_both_engines!(complaint_id_leases_never_overlap, |store| {
    let first = store.lease_complaint_ids(10).await.unwrap();
    assert_eq!(first, 1..11, "an empty store leases from 1");
    let second = store.lease_complaint_ids(5).await.unwrap();
    assert_eq!(second, 11..16);
});
