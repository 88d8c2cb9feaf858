//! The state-layer conformance suite: every test runs against the in-process twin, a single Redis
//! server and a Redis Cluster, so the three cannot drift apart.
//!
//! Redis addresses come from `CLUBPULSE_TEST_REDIS_URL` and `CLUBPULSE_TEST_REDIS_CLUSTER_URL`, which
//! `scripts/test` sets after starting the servers. Each test uses its own random key prefix.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::{sync::Arc, time::Duration};

use clubpulse_domain::Role;
use clubpulse_state::{
    NewSession, RedisConn, RedisOptions, SessionStore, SessionToken, StateBackends,
};
use uuid::Uuid;

fn env_url(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the suite through scripts/test, which starts Redis")
    })
}

async fn redis_backends(url_var: &str, cluster: bool) -> StateBackends {
    let prefix = format!("test:{}:", Uuid::new_v4().simple());
    let options = RedisOptions::new(&env_url(url_var), cluster, prefix);
    StateBackends::redis(
        RedisConn::connect(&options)
            .await
            .expect("connect to Redis"),
    )
}

/// Generates one `#[tokio::test]` per backend for each conformance check.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod in_process {
            $(#[tokio::test] async fn $name() { super::$name(clubpulse_state::StateBackends::in_process()).await; })*
        }
        mod redis_single {
            $(#[tokio::test] async fn $name() {
                super::$name(super::redis_backends("CLUBPULSE_TEST_REDIS_URL", false).await).await;
            })*
        }
        mod redis_cluster {
            $(#[tokio::test] async fn $name() {
                super::$name(super::redis_backends("CLUBPULSE_TEST_REDIS_CLUSTER_URL", true).await).await;
            })*
        }
    };
}

conformance!(
    a_created_session_is_found_by_its_token_and_not_by_another,
    touching_extends_the_idle_deadline_but_never_past_the_absolute_one,
    an_idle_session_expires,
    a_session_past_its_absolute_lifetime_expires_even_when_used,
    logout_ends_only_that_session,
    ending_a_session_by_id_works_only_for_its_owner,
    revoke_all_ends_every_session_of_one_user_and_no_other,
    sessions_are_listed_newest_first_without_dead_ones,
    concurrent_logins_and_revoke_all_leave_no_unlisted_live_session,
    the_backend_answers_a_ping,
);

fn new_session(user_id: Uuid, idle: Duration, absolute: Duration) -> NewSession {
    NewSession {
        user_id,
        role: Role::Member,
        user_agent: Some("Mozilla/5.0 (iPhone)".into()),
        idle_timeout: idle,
        absolute_timeout: absolute,
    }
}

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86400);

async fn login(store: &Arc<dyn SessionStore>, user: Uuid) -> SessionToken {
    let token = SessionToken::generate();
    store
        .create(&token, new_session(user, HOUR, DAY))
        .await
        .unwrap();
    token
}

async fn is_live(store: &Arc<dyn SessionStore>, token: &SessionToken) -> bool {
    store.touch(&token.hash(), HOUR).await.unwrap().is_some()
}

async fn a_created_session_is_found_by_its_token_and_not_by_another(state: StateBackends) {
    let store = state.sessions;
    let user = Uuid::new_v4();
    let token = SessionToken::generate();
    let created = store
        .create(&token, new_session(user, HOUR, DAY))
        .await
        .unwrap();

    let found = store.touch(&token.hash(), HOUR).await.unwrap().unwrap();

    assert_eq!(found.id, created.id);
    assert_eq!(found.user_id, user);
    assert_eq!(found.role, Role::Member);
    assert_eq!(found.user_agent.as_deref(), Some("Mozilla/5.0 (iPhone)"));
    assert_eq!(found.token_hash, token.hash());
    assert_eq!(found.created_at, created.created_at);
    assert_eq!(found.absolute_expires_at, created.absolute_expires_at);
    assert_eq!(
        created.absolute_expires_at - created.created_at,
        chrono::Duration::days(1)
    );
    assert!(!is_live(&store, &SessionToken::generate()).await);
}

async fn touching_extends_the_idle_deadline_but_never_past_the_absolute_one(state: StateBackends) {
    let store = state.sessions;
    let token = SessionToken::generate();
    let created = store
        .create(
            &token,
            new_session(
                Uuid::new_v4(),
                Duration::from_secs(60),
                Duration::from_secs(90),
            ),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;

    let touched = store
        .touch(&token.hash(), Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert!(touched.idle_expires_at > created.idle_expires_at);
    assert!(touched.last_seen_at > created.last_seen_at);

    let touched = store
        .touch(&token.hash(), Duration::from_secs(3600))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(touched.idle_expires_at, touched.absolute_expires_at);
}

async fn an_idle_session_expires(state: StateBackends) {
    let store = state.sessions;
    let token = SessionToken::generate();
    store
        .create(
            &token,
            new_session(Uuid::new_v4(), Duration::from_millis(300), DAY),
        )
        .await
        .unwrap();
    assert!(
        store
            .touch(&token.hash(), Duration::from_millis(300))
            .await
            .unwrap()
            .is_some()
    );

    tokio::time::sleep(Duration::from_millis(450)).await;

    assert!(
        store
            .touch(&token.hash(), Duration::from_millis(300))
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_session_past_its_absolute_lifetime_expires_even_when_used(state: StateBackends) {
    let store = state.sessions;
    let token = SessionToken::generate();
    store
        .create(
            &token,
            new_session(Uuid::new_v4(), HOUR, Duration::from_millis(400)),
        )
        .await
        .unwrap();
    for _ in 0..3 {
        assert!(is_live(&store, &token).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    tokio::time::sleep(Duration::from_millis(250)).await;

    assert!(!is_live(&store, &token).await);
}

async fn logout_ends_only_that_session(state: StateBackends) {
    let store = state.sessions;
    let user = Uuid::new_v4();
    let phone = login(&store, user).await;
    let laptop = login(&store, user).await;

    assert!(store.revoke_token(&phone.hash()).await.unwrap());

    assert!(!is_live(&store, &phone).await);
    assert!(is_live(&store, &laptop).await);
    assert!(!store.revoke_token(&phone.hash()).await.unwrap());
    assert_eq!(store.list_for_user(user).await.unwrap().len(), 1);
}

async fn ending_a_session_by_id_works_only_for_its_owner(state: StateBackends) {
    let store = state.sessions;
    let (ana, bruno) = (Uuid::new_v4(), Uuid::new_v4());
    let ana_token = login(&store, ana).await;
    let ana_session = store.touch(&ana_token.hash(), HOUR).await.unwrap().unwrap();

    assert!(!store.revoke(bruno, ana_session.id).await.unwrap());
    assert!(is_live(&store, &ana_token).await);

    assert!(store.revoke(ana, ana_session.id).await.unwrap());
    assert!(!is_live(&store, &ana_token).await);
    assert!(!store.revoke(ana, ana_session.id).await.unwrap());
}

async fn revoke_all_ends_every_session_of_one_user_and_no_other(state: StateBackends) {
    let store = state.sessions;
    let (ana, bruno) = (Uuid::new_v4(), Uuid::new_v4());
    let mut ana_tokens = Vec::new();
    for _ in 0..5 {
        ana_tokens.push(login(&store, ana).await);
    }
    let bruno_token = login(&store, bruno).await;

    assert_eq!(store.revoke_all(ana).await.unwrap(), 5);

    for token in &ana_tokens {
        assert!(!is_live(&store, token).await);
    }
    assert!(is_live(&store, &bruno_token).await);
    assert!(store.list_for_user(ana).await.unwrap().is_empty());
    assert_eq!(store.revoke_all(ana).await.unwrap(), 0);
}

async fn sessions_are_listed_newest_first_without_dead_ones(state: StateBackends) {
    let store = state.sessions;
    let user = Uuid::new_v4();
    let short = SessionToken::generate();
    store
        .create(&short, new_session(user, Duration::from_millis(200), DAY))
        .await
        .unwrap();
    let first = login(&store, user).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = login(&store, user).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let listed = store.list_for_user(user).await.unwrap();

    let hashes: Vec<_> = listed.iter().map(|s| s.token_hash.clone()).collect();
    assert_eq!(hashes, vec![second.hash(), first.hash()]);
    assert!(
        store
            .list_for_user(Uuid::new_v4())
            .await
            .unwrap()
            .is_empty()
    );
}

async fn concurrent_logins_and_revoke_all_leave_no_unlisted_live_session(state: StateBackends) {
    let store = state.sessions;
    let user = Uuid::new_v4();
    let mut tasks = Vec::new();
    for i in 0..100 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            if i % 10 == 0 {
                store.revoke_all(user).await.unwrap();
                None
            } else {
                Some(login(&store, user).await)
            }
        }));
    }
    let mut tokens = Vec::new();
    for task in tasks {
        tokens.extend(task.await.unwrap());
    }

    let listed: Vec<_> = store
        .list_for_user(user)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.token_hash)
        .collect();
    for token in &tokens {
        if is_live(&store, token).await {
            assert!(
                listed.contains(&token.hash()),
                "a live session is not listed"
            );
        }
    }
    store.revoke_all(user).await.unwrap();
    for token in &tokens {
        assert!(
            !is_live(&store, token).await,
            "revoke_all left a session alive"
        );
    }
}

async fn the_backend_answers_a_ping(state: StateBackends) {
    state.ping().await.unwrap();
}
