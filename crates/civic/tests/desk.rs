//! The complaint desk over a real store, on SQLite and on PostgreSQL.

use cityos_civic::desk::{Actor, Settings, Update};
use cityos_civic::form::{decode, validate};
use cityos_civic::{Catalog, CivicError, Desk, Status};
use cityos_store::{Store, testing};

macro_rules! on_both_engines {
    ($name:ident, |$store:ident, $dir:ident| $body:block) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                let $dir = tempfile::tempdir().unwrap();
                let $store = Store::open(&testing::sqlite_path($dir.path()))
                    .await
                    .unwrap();
                $body
            }

            #[tokio::test]
            async fn postgres() {
                let Some(url) = testing::postgres_url().await else {
                    return;
                };
                let $dir = tempfile::tempdir().unwrap();
                let $store = Store::open(&url).await.unwrap();
                $body
            }
        }
    };
}

async fn desk(store: &Store, dir: &std::path::Path) -> Desk {
    Desk::open(store.clone(), Catalog::seoul(), Settings::new(dir))
        .await
        .unwrap()
}

fn filing(body: &str, user: Option<i64>) -> cityos_civic::Filing {
    let mut f = validate(&decode(body.as_bytes()).unwrap(), &Catalog::seoul()).unwrap();
    f.reporter.user_id = user;
    f
}

async fn user(store: &Store, email: &str) -> i64 {
    store
        .create_user(email, "R", None, "citizen")
        .await
        .unwrap()
        .id
}

const POTHOLE: &str =
    "service_code=pothole&lat=37.5660&long=126.9780&attribute[lane]=car_lane&description=Deep+hole";

on_both_engines!(
    filings_are_routed_with_deadlines_and_duplicates_are_shown,
    |store, dir| {
        let desk = desk(&store, dir.path()).await;
        let a = user(&store, "a@example.org").await;
        let first = desk
            .file(filing(POTHOLE, Some(a)), Some("user:a"), None)
            .await
            .unwrap();
        let c = &first.complaint;
        assert_eq!(
            (
                c.status.as_str(),
                c.department.as_str(),
                c.district.as_deref()
            ),
            ("received", "roads", Some("jung"))
        );
        assert_eq!(
            c.expected_at - c.requested_at,
            24 * 3600,
            "field complaints get 24 hours"
        );
        assert!(first.nearby.is_empty());
        // 30 m away: shown as a possible duplicate; 200 m away: not.
        let near = desk
            .file(
                filing(&POTHOLE.replace("37.5660", "37.56627"), None),
                None,
                None,
            )
            .await
            .unwrap();
        assert_eq!(near.nearby.iter().map(|c| c.id).collect::<Vec<_>>(), [c.id]);
        let far = desk
            .file(
                filing(&POTHOLE.replace("37.5660", "37.5678"), None),
                None,
                None,
            )
            .await
            .unwrap();
        assert!(far.nearby.is_empty());
        assert!(near.complaint.id > c.id && far.complaint.id > near.complaint.id);
        // A batch service answers with a token that finds the complaint.
        let noise = desk
            .file(
                filing("service_code=noise&address_string=Sejong-daero+110", None),
                None,
                None,
            )
            .await
            .unwrap();
        let token = noise.complaint.token.clone().unwrap();
        assert_eq!(
            store.complaint_by_token(&token).await.unwrap().unwrap().id,
            noise.complaint.id
        );
        // A restarted desk numbers on after every id handed out before.
        drop(desk);
        let again = self::desk(&store, dir.path()).await;
        let next = again.file(filing(POTHOLE, None), None, None).await.unwrap();
        assert!(next.complaint.id > noise.complaint.id);
    }
);

on_both_engines!(
    two_processes_file_into_one_store_without_colliding,
    |store, dir| {
        // Two desks stand for two replicas on one database.
        let (one, two) = (
            desk(&store, dir.path()).await,
            desk(&store, dir.path()).await,
        );
        let mut filings = Vec::new();
        for k in 0..300 {
            let desk = if k % 2 == 0 { one.clone() } else { two.clone() };
            filings.push(tokio::spawn(async move {
                desk.file(filing(POTHOLE, None), None, None).await
            }));
        }
        let mut ids = Vec::new();
        for f in filings {
            ids.push(
                f.await
                    .unwrap()
                    .expect("every filing succeeds")
                    .complaint
                    .id,
            );
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 300, "every complaint has its own id");
        for id in ids {
            assert!(store.complaint(id).await.unwrap().is_some(), "#{id} stored");
        }
    }
);

on_both_engines!(
    the_workflow_notifies_every_reporter_of_public_updates_only,
    |store, dir| {
        let desk = desk(&store, dir.path()).await;
        let a = user(&store, "a@example.org").await;
        let b = user(&store, "b@example.org").await;
        let first = desk
            .file(filing(POTHOLE, Some(a)), None, None)
            .await
            .unwrap()
            .complaint;
        let dup = desk
            .file(filing(POTHOLE, Some(b)), None, None)
            .await
            .unwrap()
            .complaint;
        let staff = Actor::Staff("roads@seoul.go.kr".into());
        desk.merge(dup.id, first.id, &staff).await.unwrap();
        let merged = desk.get(dup.id).await.unwrap();
        assert_eq!(
            (merged.status.as_str(), merged.merged_into),
            ("closed", Some(first.id))
        );
        let reporters = store.complaint_reporters(first.id).await.unwrap();
        assert_eq!(
            reporters
                .iter()
                .filter_map(|r| r.user_id)
                .collect::<Vec<_>>(),
            [a, b]
        );
        desk.update(
            first.id,
            &staff,
            Update {
                status: None,
                text: "crew sent, internal".into(),
                public: false,
            },
        )
        .await
        .unwrap();
        desk.update(
            first.id,
            &staff,
            Update {
                status: Some(Status::InProgress),
                text: "Repair crew on the way".into(),
                public: true,
            },
        )
        .await
        .unwrap();
        for u in [a, b] {
            let n = store.notifications_of(u, 10).await.unwrap();
            assert!(
                n.iter().any(|n| n.text.contains("Repair crew on the way")),
                "{n:?}"
            );
            assert!(!n.iter().any(|n| n.text.contains("internal")));
        }
        let events = store.complaint_events(first.id).await.unwrap();
        assert!(events.iter().any(|e| e.kind == "note" && !e.public));
        // Backwards is refused; resolving then reopening works.
        let back = desk
            .update(
                first.id,
                &staff,
                Update {
                    status: Some(Status::Received),
                    text: String::new(),
                    public: true,
                },
            )
            .await;
        assert!(matches!(back, Err(CivicError::Conflict(_))), "{back:?}");
        let resolved = desk
            .update(
                first.id,
                &staff,
                Update {
                    status: Some(Status::Resolved),
                    text: "Filled".into(),
                    public: true,
                },
            )
            .await
            .unwrap();
        assert!(resolved.resolved_at.is_some() && !resolved.open);
        let reopened = desk
            .reopen(first.id, &Actor::Citizen(a), "still a hole")
            .await
            .unwrap();
        assert_eq!(
            (reopened.status.as_str(), reopened.resolved_at),
            ("acknowledged", None)
        );
        assert_eq!(store.mark_notifications_read(a, 1).await.unwrap(), 4);
    }
);

on_both_engines!(abuse_is_held_limited_and_moderated, |store, dir| {
    let mut settings = Settings::new(dir.path());
    settings.per_address_per_hour = 2;
    let desk = Desk::open(store.clone(), Catalog::seoul(), settings)
        .await
        .unwrap();
    let held = desk
        .file(
            filing(
                "service_code=graffiti&lat=37.55&long=126.98&description=you+idiot",
                None,
            ),
            None,
            Some("10.0.0.1"),
        )
        .await
        .unwrap();
    assert!(held.held.is_some() && !held.complaint.visible);
    let queue = store.moderation_queue(10).await.unwrap();
    assert_eq!(
        queue.iter().map(|c| c.id).collect::<Vec<_>>(),
        [held.complaint.id]
    );
    desk.file(
        filing("service_code=graffiti&lat=37.55&long=126.98", None),
        None,
        Some("10.0.0.1"),
    )
    .await
    .unwrap();
    let third = desk
        .file(
            filing("service_code=graffiti&lat=37.55&long=126.98", None),
            None,
            Some("10.0.0.1"),
        )
        .await;
    assert!(
        matches!(
            third,
            Err(CivicError::RateLimited {
                who: "this address",
                ..
            })
        ),
        "{third:?}"
    );
    let officer = Actor::Staff("officer@seoul.go.kr".into());
    let approved = desk
        .moderate(held.complaint.id, &officer, true)
        .await
        .unwrap();
    assert!(approved.visible);
    assert!(store.moderation_queue(10).await.unwrap().is_empty());
});

on_both_engines!(
    breaches_are_alerted_once_and_rank_the_departments,
    |store, dir| {
        let desk = desk(&store, dir.path()).await;
        let c = desk
            .file(filing(POTHOLE, None), None, None)
            .await
            .unwrap()
            .complaint;
        let on_time = desk
            .file(
                filing("service_code=graffiti&lat=37.55&long=126.98", None),
                None,
                None,
            )
            .await
            .unwrap()
            .complaint;
        desk.update(
            on_time.id,
            &Actor::System,
            Update {
                status: Some(Status::Resolved),
                text: "cleaned".into(),
                public: true,
            },
        )
        .await
        .unwrap();
        // Nothing is due yet; a day and an hour later the pothole is, and is alerted once.
        let now = cityos_store::now_unix();
        assert!(desk.alert_breaches(now).await.unwrap().is_empty());
        let breached = desk.alert_breaches(now + 25 * 3600).await.unwrap();
        assert_eq!(breached.iter().map(|c| c.id).collect::<Vec<_>>(), [c.id]);
        assert!(
            desk.alert_breaches(now + 26 * 3600)
                .await
                .unwrap()
                .is_empty()
        );
        let events = store.complaint_events(c.id).await.unwrap();
        assert!(events.iter().any(|e| e.kind == "breach" && !e.public));
        let ranks = store
            .handling_counts(false, 0, now + 30 * 3600)
            .await
            .unwrap();
        let ranked = cityos_civic::stats::rank(ranks, |k| (k.into(), k.into()));
        assert_eq!(ranked.first().map(|r| r.code.as_str()), Some("sanitation"));
        assert_eq!(
            ranked.iter().find(|r| r.code == "roads").unwrap().overdue,
            1,
            "{ranked:?}"
        );
        let cells = store.complaint_cells(0, true).await.unwrap();
        assert_eq!(
            cells.iter().map(|c| c.1).sum::<i64>(),
            1,
            "only the open pothole"
        );
        let daily = store.daily_counts(0, 9 * 3600).await.unwrap();
        let charts = cityos_civic::stats::charts(&daily);
        assert_eq!(charts.backlog.iter().sum::<i64>(), 1);
        assert_eq!(c.status, "received");
    }
);
