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
        assert_eq!(store.schema_version().await.unwrap(), 1);
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
