//! Registration, login, sessions and API keys, on both storage engines.

use cityos_accounts::{AccountError, Accounts, Principal, Role};
use cityos_store::{Store, testing};

async fn scenario(store: Store) {
    let accounts = Accounts::new(store);
    let user = accounts
        .create_user(
            "Jiwoo@Example.org",
            "correct horse battery",
            "Jiwoo",
            Role::Citizen,
        )
        .await
        .unwrap();
    assert_eq!(user.email, "jiwoo@example.org");
    assert!(matches!(
        accounts
            .create_user("jiwoo@example.org", "another password", "J", Role::Citizen)
            .await,
        Err(AccountError::EmailTaken)
    ));
    assert!(matches!(
        accounts
            .create_user("x@example.org", "short", "X", Role::Citizen)
            .await,
        Err(AccountError::WeakPassword)
    ));
    assert!(matches!(
        accounts
            .create_user("not-an-email", "long enough pw", "X", Role::Citizen)
            .await,
        Err(AccountError::InvalidEmail(_))
    ));

    assert!(matches!(
        accounts.login("jiwoo@example.org", "wrong password!").await,
        Err(AccountError::BadCredentials)
    ));
    assert!(matches!(
        accounts
            .login("nobody@example.org", "whatever pw 123")
            .await,
        Err(AccountError::BadCredentials)
    ));
    let (logged_in, token) = accounts
        .login(" JIWOO@example.org", "correct horse battery")
        .await
        .unwrap();
    assert_eq!(logged_in.id, user.id);
    assert_eq!(
        accounts.authenticate(&token).await.unwrap().role(),
        Some(Role::Citizen)
    );
    assert_eq!(
        accounts.authenticate("cos_s_forged").await.unwrap(),
        Principal::Anonymous
    );
    assert!(accounts.logout(&token).await.unwrap());
    assert_eq!(
        accounts.authenticate(&token).await.unwrap(),
        Principal::Anonymous
    );

    // Disabling a user locks them out.
    accounts
        .update_user(user.id, Role::Citizen, true)
        .await
        .unwrap();
    assert!(matches!(
        accounts
            .login("jiwoo@example.org", "correct horse battery")
            .await,
        Err(AccountError::BadCredentials)
    ));

    let (key_id, key) = accounts
        .create_api_key("validator 17", Role::TransitOperator, None)
        .await
        .unwrap();
    assert!(matches!(
        accounts.authenticate(&key).await.unwrap(),
        Principal::ApiKey {
            role: Role::TransitOperator,
            ..
        }
    ));
    assert!(accounts.revoke_api_key(key_id).await.unwrap());
    assert_eq!(
        accounts.authenticate(&key).await.unwrap(),
        Principal::Anonymous
    );

    assert!(
        accounts
            .ensure_admin("admin@city.example", "admin password 1")
            .await
            .unwrap()
    );
    assert!(
        !accounts
            .ensure_admin("admin@city.example", "admin password 1")
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn accounts_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    scenario(
        Store::open(&testing::sqlite_path(dir.path()))
            .await
            .unwrap(),
    )
    .await;
}

#[tokio::test]
async fn accounts_on_postgres() {
    let Some(url) = testing::postgres_url().await else {
        return;
    };
    scenario(Store::open(&url).await.unwrap()).await;
}
