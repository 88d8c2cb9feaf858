//! The state-layer conformance suite: every test runs against the in-process twin, a single Redis
//! server and a Redis Cluster, so the three cannot drift apart.
//!
//! Redis addresses come from `CLUBPULSE_TEST_REDIS_URL` and `CLUBPULSE_TEST_REDIS_CLUSTER_URL`, which
//! `scripts/test` sets after starting the servers. Each test uses its own random key prefix.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use chrono::{NaiveDate, Utc};
use clubpulse_domain::Role;
use clubpulse_state::{
    AvailabilityCache, Cached, DayBits, DayKey, Decision, Limit, MirroredHold, NewSession,
    PopularSlot, RateLimiter, RedisConn, RedisOptions, SessionStore, SessionToken, StateBackends,
    TokenPurpose,
    channels::{ChannelEvent, HISTORY_LEN, Listener, RedisChannels},
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
    a_stored_day_is_a_hit_with_the_same_bits,
    a_day_never_stored_is_a_miss_at_generation_zero,
    clearing_drops_every_cached_day_and_keeps_generations,
    invalidating_turns_a_hit_into_a_miss_with_a_higher_generation,
    a_store_under_an_outdated_generation_is_refused,
    a_closed_day_round_trips_as_a_hit_with_empty_bitmaps,
    many_days_are_answered_in_order,
    a_stored_day_expires_with_its_ttl,
    concurrent_invalidations_and_stores_never_leave_a_stale_hit,
    popular_times_rank_busiest_first_then_by_weekday_and_hour,
    popular_times_count_a_booking_once_however_often_it_is_reported,
    popular_times_scores_answer_every_facility_in_order,
    a_mirrored_hold_is_found_until_removed,
    a_facilitys_live_holds_are_listed_by_start_until_removed_or_expired,
    a_mirrored_hold_expires_at_its_expiry,
    a_hold_mirrored_with_a_past_expiry_stores_nothing,
    a_rate_limit_admits_exactly_max_then_refuses,
    rate_limit_keys_are_independent,
    a_rate_limit_admits_again_once_the_window_has_passed,
    refused_requests_are_not_counted_against_the_limit,
    concurrent_checks_on_one_key_admit_exactly_max,
    the_rate_limit_window_slides,
    reset_after_counts_down_from_the_oldest_counted_request,
    a_lowered_limit_waits_until_enough_requests_have_left,
    degenerate_limits_are_decided_without_counting,
    a_one_time_token_is_taken_exactly_once,
    a_one_time_token_is_refused_after_its_expiry,
    concurrent_takes_of_one_token_give_it_to_one_caller,
    a_token_is_seen_for_the_first_time_once_until_its_ttl_passes,
    concurrent_first_sightings_of_one_token_give_it_to_one_caller,
    a_peeked_token_stays_until_taken_or_expired_and_a_reissue_extends_it,
    channel_offsets_grow_by_one_from_the_first,
    channel_history_since_an_offset_returns_exactly_the_later_events,
    channel_history_trimmed_by_length_is_not_recovered,
    channel_history_since_an_offset_above_the_latest_is_not_recovered,
    a_channel_never_published_has_latest_zero,
    channel_listeners_receive_every_event_of_their_channels_and_no_other,
    a_channel_unsubscribed_is_no_longer_delivered,
    channel_listeners_receive_concurrent_publishes_once_each_in_order,
    concurrent_subscribes_to_one_channel_all_return_subscribed,
    an_event_published_twice_under_one_id_is_delivered_and_kept_once,
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
    // The idle timeout is long enough for the first touch to land inside it on a busy machine;
    // the wait after it is measured from when that touch returned, so it is always long enough.
    let idle = Duration::from_millis(1000);
    let store = state.sessions;
    let token = SessionToken::generate();
    store
        .create(&token, new_session(Uuid::new_v4(), idle, DAY))
        .await
        .unwrap();
    assert!(store.touch(&token.hash(), idle).await.unwrap().is_some());
    let touched = tokio::time::Instant::now();

    tokio::time::sleep_until(touched + idle + Duration::from_millis(150)).await;

    assert!(store.touch(&token.hash(), idle).await.unwrap().is_none());
}

async fn a_session_past_its_absolute_lifetime_expires_even_when_used(state: StateBackends) {
    let store = state.sessions;
    let token = SessionToken::generate();
    // Used three times well inside its lifetime (bounds that hold on a busy machine), then once
    // after it: the wait is measured from just after the session was made, so it is long enough.
    let lifetime = Duration::from_millis(1500);
    store
        .create(&token, new_session(Uuid::new_v4(), HOUR, lifetime))
        .await
        .unwrap();
    let created = tokio::time::Instant::now();
    for _ in 0..3 {
        assert!(is_live(&store, &token).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    tokio::time::sleep_until(created + lifetime + Duration::from_millis(150)).await;

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

// --- Availability cache ---

const CACHE_TTL: Duration = Duration::from_secs(60);

fn day(facility_id: Uuid, day_of_month: u32) -> DayKey {
    DayKey::new(
        facility_id,
        NaiveDate::from_ymd_opt(2025, 3, day_of_month).unwrap(),
    )
}

/// Bitmaps of 48 half-hour slots with a few held and booked ones picked by `seed`.
fn sample_bits(seed: u32) -> DayBits {
    let mut bits = DayBits::with_len(48);
    bits.set_held(seed % 48);
    bits.set_booked((seed + 7) % 48);
    bits.set_booked(47);
    bits
}

async fn get_one(cache: &Arc<dyn AvailabilityCache>, key: DayKey) -> Cached {
    let mut answers = cache.get_days(&[key]).await.unwrap();
    assert_eq!(answers.len(), 1);
    answers.pop().unwrap()
}

async fn generation_of(cache: &Arc<dyn AvailabilityCache>, key: DayKey) -> u64 {
    match get_one(cache, key).await {
        Cached::Miss { generation } => generation,
        Cached::Hit(_) => panic!("expected a miss"),
    }
}

async fn a_stored_day_is_a_hit_with_the_same_bits(state: StateBackends) {
    let cache = state.availability;
    let key = day(Uuid::new_v4(), 14);
    let bits = sample_bits(5);
    assert!(bits.is_held(5) && bits.is_booked(12) && bits.is_booked(47));

    assert!(cache.store_day(&key, 0, &bits, CACHE_TTL).await.unwrap());

    assert_eq!(get_one(&cache, key).await, Cached::Hit(bits.clone()));
    let other_day = day(key.facility_id, 15);
    assert_eq!(
        get_one(&cache, other_day).await,
        Cached::Miss { generation: 0 }
    );
}

async fn clearing_drops_every_cached_day_and_keeps_generations(state: StateBackends) {
    let cache = state.availability;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    cache.invalidate(&[day(a, 3)]).await.unwrap();
    let generation = generation_of(&cache, day(a, 3)).await;
    let days = [day(a, 3), day(a, 4), day(b, 3)];
    for (i, key) in days.iter().enumerate() {
        let stored_under = if i == 0 { generation } else { 0 };
        let bits = sample_bits(u32::try_from(i).unwrap());
        assert!(
            cache
                .store_day(key, stored_under, &bits, CACHE_TTL)
                .await
                .unwrap()
        );
    }
    assert_eq!(cache.clear().await.unwrap(), 3);
    let after = cache.get_days(&days).await.unwrap();
    assert_eq!(
        after,
        vec![
            Cached::Miss { generation },
            Cached::Miss { generation: 0 },
            Cached::Miss { generation: 0 },
        ]
    );
    assert_eq!(cache.clear().await.unwrap(), 0, "nothing left");
    // A reader that read the generation before the clear still stores its answer.
    assert!(
        cache
            .store_day(&days[0], generation, &sample_bits(9), CACHE_TTL)
            .await
            .unwrap()
    );
    assert_eq!(get_one(&cache, days[0]).await, Cached::Hit(sample_bits(9)));
}

async fn a_day_never_stored_is_a_miss_at_generation_zero(state: StateBackends) {
    let cache = state.availability;
    assert_eq!(
        get_one(&cache, day(Uuid::new_v4(), 1)).await,
        Cached::Miss { generation: 0 }
    );
    assert!(cache.get_days(&[]).await.unwrap().is_empty());
}

async fn invalidating_turns_a_hit_into_a_miss_with_a_higher_generation(state: StateBackends) {
    let cache = state.availability;
    let key = day(Uuid::new_v4(), 14);
    assert!(
        cache
            .store_day(&key, 0, &sample_bits(1), CACHE_TTL)
            .await
            .unwrap()
    );

    cache.invalidate(&[key]).await.unwrap();

    let first = generation_of(&cache, key).await;
    assert!(first > 0);
    cache.invalidate(&[key]).await.unwrap();
    let second = generation_of(&cache, key).await;
    assert!(second > first);

    // Refilling under the current generation works again.
    let fresh = sample_bits(2);
    assert!(
        cache
            .store_day(&key, second, &fresh, CACHE_TTL)
            .await
            .unwrap()
    );
    assert_eq!(get_one(&cache, key).await, Cached::Hit(fresh));
    cache.invalidate(&[]).await.unwrap();
}

async fn a_store_under_an_outdated_generation_is_refused(state: StateBackends) {
    let cache = state.availability;
    let key = day(Uuid::new_v4(), 14);
    // A reader reads generation 0, then a booking commits and invalidates before it stores.
    let read = generation_of(&cache, key).await;
    cache.invalidate(&[key]).await.unwrap();

    assert!(
        !cache
            .store_day(&key, read, &sample_bits(3), CACHE_TTL)
            .await
            .unwrap()
    );

    let current = generation_of(&cache, key).await;
    assert_ne!(current, read);
    assert!(
        !cache
            .store_day(&key, current + 1, &sample_bits(3), CACHE_TTL)
            .await
            .unwrap(),
        "a generation from the future is refused too"
    );
    assert_eq!(generation_of(&cache, key).await, current);
}

async fn a_closed_day_round_trips_as_a_hit_with_empty_bitmaps(state: StateBackends) {
    let cache = state.availability;
    let key = day(Uuid::new_v4(), 25);
    let closed = DayBits::with_len(0);
    assert_eq!(closed, DayBits::default());

    assert!(cache.store_day(&key, 0, &closed, CACHE_TTL).await.unwrap());

    match get_one(&cache, key).await {
        Cached::Hit(bits) => {
            assert!(bits.held.is_empty());
            assert!(bits.booked.is_empty());
        }
        miss => panic!("a closed day was not cached: {miss:?}"),
    }
}

async fn many_days_are_answered_in_order(state: StateBackends) {
    let cache = state.availability;
    let facilities: Vec<Uuid> = (0..8).map(|_| Uuid::new_v4()).collect();
    let mut keys = Vec::new();
    let mut expected = Vec::new();
    for (f, &facility) in facilities.iter().enumerate() {
        for d in 1..=4u32 {
            let key = day(facility, d);
            let seed = u32::try_from(f).unwrap() * 10 + d;
            match (f + d as usize) % 3 {
                0 => expected.push(Cached::Miss { generation: 0 }),
                1 => {
                    assert!(
                        cache
                            .store_day(&key, 0, &sample_bits(seed), CACHE_TTL)
                            .await
                            .unwrap()
                    );
                    expected.push(Cached::Hit(sample_bits(seed)));
                }
                _ => {
                    assert!(
                        cache
                            .store_day(&key, 0, &sample_bits(seed), CACHE_TTL)
                            .await
                            .unwrap()
                    );
                    cache.invalidate(&[key]).await.unwrap();
                    expected.push(Cached::Miss {
                        generation: generation_of(&cache, key).await,
                    });
                }
            }
            keys.push(key);
        }
    }

    let answers = cache.get_days(&keys).await.unwrap();

    assert_eq!(answers, expected);
    let mut reversed_keys = keys.clone();
    reversed_keys.reverse();
    let mut reversed = cache.get_days(&reversed_keys).await.unwrap();
    reversed.reverse();
    assert_eq!(reversed, expected);

    // Invalidating several days at once reaches every one of them.
    cache.invalidate(&keys).await.unwrap();
    let after = cache.get_days(&keys).await.unwrap();
    for (answer, before) in after.iter().zip(&expected) {
        match (answer, before) {
            (Cached::Miss { generation }, Cached::Miss { generation: old }) => {
                assert!(generation > old);
            }
            (Cached::Miss { generation }, Cached::Hit(_)) => assert!(*generation > 0),
            (hit, _) => panic!("an invalidated day is still served: {hit:?}"),
        }
    }
}

async fn a_stored_day_expires_with_its_ttl(state: StateBackends) {
    let cache = state.availability;
    let key = day(Uuid::new_v4(), 14);
    cache.invalidate(&[key]).await.unwrap();
    let generation = generation_of(&cache, key).await;
    assert!(
        cache
            .store_day(
                &key,
                generation,
                &sample_bits(4),
                Duration::from_millis(300)
            )
            .await
            .unwrap()
    );
    assert!(matches!(get_one(&cache, key).await, Cached::Hit(_)));

    tokio::time::sleep(Duration::from_millis(450)).await;

    assert_eq!(get_one(&cache, key).await, Cached::Miss { generation });
    assert!(
        !cache
            .store_day(&key, generation, &sample_bits(4), Duration::ZERO)
            .await
            .unwrap(),
        "a zero TTL stores nothing"
    );
}

/// A deterministic pause of 0 to 1.2 ms, to spread concurrent tasks over time.
async fn jitter(a: u32, b: u32) {
    let steps = (a.wrapping_mul(7).wrapping_add(b.wrapping_mul(13))) % 5;
    if steps == 0 {
        tokio::task::yield_now().await;
    } else {
        tokio::time::sleep(Duration::from_micros(u64::from(steps) * 300)).await;
    }
}

/// Writers bump a "database" version and then invalidate; readers keep refilling missed days
/// following the protocol (generation, then database, then store) until the writers are done. A
/// reader whose database read straddles the last write must be refused, so afterwards a hit may only
/// show the last version, and the final invalidation leaves nothing to serve. The race is run a few
/// times on fresh days, since its interleaving differs each time.
async fn concurrent_invalidations_and_stores_never_leave_a_stale_hit(state: StateBackends) {
    for _ in 0..5 {
        let facility = Uuid::new_v4();
        race_invalidations_and_stores(&state.availability, [day(facility, 10), day(facility, 11)])
            .await;
    }
}

async fn race_invalidations_and_stores(cache: &Arc<dyn AvailabilityCache>, keys: [DayKey; 2]) {
    const WRITERS: u32 = 10;
    const READERS: u32 = 40;
    let database = Arc::new(AtomicU64::new(0));
    let writers_left = Arc::new(AtomicU64::new(u64::from(WRITERS)));
    let version_bits = |version: u64| DayBits {
        held: version.to_be_bytes().to_vec(),
        booked: Vec::new(),
    };

    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (cache, database, writers_left) =
            (cache.clone(), database.clone(), writers_left.clone());
        tasks.push(tokio::spawn(async move {
            for round in 0..5 {
                jitter(w, round).await;
                database.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
                cache.invalidate(&keys).await.unwrap();
            }
            writers_left.fetch_sub(1, Ordering::SeqCst);
        }));
    }
    for r in 0..READERS {
        let (cache, database, writers_left) =
            (cache.clone(), database.clone(), writers_left.clone());
        tasks.push(tokio::spawn(async move {
            let key = keys[(r % 2) as usize];
            let mut round = 0;
            while writers_left.load(Ordering::SeqCst) > 0 {
                round += 1;
                if let Cached::Miss { generation } = get_one(&cache, key).await {
                    jitter(r, round).await;
                    let version = database.load(Ordering::SeqCst);
                    // Readers are slower than writers, so some are always mid-refill.
                    jitter(round, r).await;
                    jitter(r, round + 1).await;
                    jitter(round + 2, r).await;
                    cache
                        .store_day(&key, generation, &version_bits(version), CACHE_TTL)
                        .await
                        .unwrap();
                } else {
                    jitter(r, round).await;
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }

    let last = database.load(Ordering::SeqCst);
    assert_eq!(last, u64::from(WRITERS) * 5);
    for answer in cache.get_days(&keys).await.unwrap() {
        if let Cached::Hit(bits) = answer {
            assert_eq!(bits, version_bits(last), "a stale day is served");
        }
    }
    cache.invalidate(&keys).await.unwrap();
    for answer in cache.get_days(&keys).await.unwrap() {
        assert!(
            matches!(answer, Cached::Miss { .. }),
            "a day is served after its last invalidation: {answer:?}"
        );
    }
}

// --- Popular times ---

fn slot(weekday: u8, hour: u8, count: u64) -> PopularSlot {
    PopularSlot {
        weekday,
        hour,
        count,
    }
}

async fn popular_times_rank_busiest_first_then_by_weekday_and_hour(state: StateBackends) {
    let popularity = state.popularity;
    let (court, pool) = (Uuid::new_v4(), Uuid::new_v4());
    for (weekday, hour, times) in [(2, 19, 3), (5, 9, 3), (6, 23, 1), (0, 7, 5), (2, 9, 3)] {
        for _ in 0..times {
            popularity
                .record(Uuid::new_v4(), court, weekday, hour)
                .await
                .unwrap();
        }
    }
    popularity
        .record(Uuid::new_v4(), pool, 4, 12)
        .await
        .unwrap();
    popularity
        .record(Uuid::new_v4(), court, 7, 12)
        .await
        .unwrap(); // Not a weekday: ignored.
    popularity
        .record(Uuid::new_v4(), court, 1, 24)
        .await
        .unwrap(); // Not an hour: ignored.

    assert_eq!(
        popularity.top(court, 3).await.unwrap(),
        vec![slot(0, 7, 5), slot(2, 9, 3), slot(2, 19, 3)]
    );
    assert_eq!(
        popularity.top(court, 100).await.unwrap(),
        vec![
            slot(0, 7, 5),
            slot(2, 9, 3),
            slot(2, 19, 3),
            slot(5, 9, 3),
            slot(6, 23, 1)
        ]
    );
    assert!(popularity.top(court, 0).await.unwrap().is_empty());
    assert_eq!(
        popularity.top(pool, 10).await.unwrap(),
        vec![slot(4, 12, 1)]
    );
    assert!(popularity.top(Uuid::new_v4(), 10).await.unwrap().is_empty());
}

async fn popular_times_count_a_booking_once_however_often_it_is_reported(state: StateBackends) {
    let popularity = state.popularity;
    let (court, booking) = (Uuid::new_v4(), Uuid::new_v4());
    for _ in 0..3 {
        popularity.record(booking, court, 2, 19).await.unwrap();
    }
    popularity
        .record(Uuid::new_v4(), court, 2, 19)
        .await
        .unwrap();

    assert_eq!(popularity.scores(&[court], 2, 19).await.unwrap(), vec![2]);
}

async fn popular_times_scores_answer_every_facility_in_order(state: StateBackends) {
    let popularity = state.popularity;
    let facilities: Vec<Uuid> = (0..6).map(|_| Uuid::new_v4()).collect();
    for (i, &facility) in facilities.iter().enumerate() {
        for _ in 0..i {
            popularity
                .record(Uuid::new_v4(), facility, 3, 18)
                .await
                .unwrap();
        }
        popularity
            .record(Uuid::new_v4(), facility, 3, 19)
            .await
            .unwrap();
    }
    let unknown = Uuid::new_v4();
    let mut asked = facilities.clone();
    asked.insert(2, unknown);
    asked.push(facilities[4]);

    let scores = popularity.scores(&asked, 3, 18).await.unwrap();

    assert_eq!(scores, vec![0, 1, 0, 2, 3, 4, 5, 4]);
    assert_eq!(
        popularity.scores(&asked, 3, 19).await.unwrap(),
        vec![1, 1, 0, 1, 1, 1, 1, 1]
    );
    assert_eq!(popularity.scores(&[unknown], 0, 0).await.unwrap(), vec![0]);
    assert!(popularity.scores(&[], 3, 18).await.unwrap().is_empty());
}

// --- Hold mirror ---

/// A hold of `booking` on `facility`, tomorrow 10:00–11:00, mirrored until `expires_at`.
fn mirrored(booking: Uuid, facility: Uuid, expires_at: chrono::DateTime<Utc>) -> MirroredHold {
    let start = Utc::now() + chrono::Duration::days(1);
    MirroredHold {
        booking_id: booking,
        facility_id: facility,
        start,
        end: start + chrono::Duration::hours(1),
        expires_at,
    }
}

async fn a_facilitys_live_holds_are_listed_by_start_until_removed_or_expired(state: StateBackends) {
    let holds = state.holds;
    let (facility, other_facility) = (Uuid::new_v4(), Uuid::new_v4());
    let later = Utc::now() + chrono::Duration::minutes(10);
    let mut first = mirrored(Uuid::new_v4(), facility, later);
    first.start -= chrono::Duration::hours(2);
    first.end -= chrono::Duration::hours(2);
    let second = mirrored(Uuid::new_v4(), facility, later);
    let elsewhere = mirrored(Uuid::new_v4(), other_facility, later);
    let mut brief = mirrored(
        Uuid::new_v4(),
        facility,
        Utc::now() + chrono::Duration::milliseconds(300),
    );
    brief.start += chrono::Duration::hours(2);
    brief.end += chrono::Duration::hours(2);
    for hold in [&second, &first, &elsewhere, &brief] {
        holds.put(hold).await.unwrap();
    }
    let ids = |listed: &[MirroredHold]| listed.iter().map(|h| h.booking_id).collect::<Vec<_>>();
    let listed = holds.on_facility(facility).await.unwrap();
    assert_eq!(
        ids(&listed),
        vec![first.booking_id, second.booking_id, brief.booking_id],
        "by start"
    );

    tokio::time::sleep(Duration::from_millis(450)).await;
    holds.remove(first.booking_id).await.unwrap();
    let listed = holds.on_facility(facility).await.unwrap();
    // Millisecond precision is what the mirror keeps.
    assert_eq!(ids(&listed), vec![second.booking_id], "{listed:?}");
    assert_eq!(
        listed[0].start.timestamp_millis(),
        second.start.timestamp_millis()
    );
    assert_eq!(
        listed[0].expires_at.timestamp_millis(),
        second.expires_at.timestamp_millis()
    );
    assert!(holds.on_facility(Uuid::new_v4()).await.unwrap().is_empty());
}

async fn a_mirrored_hold_is_found_until_removed(state: StateBackends) {
    let holds = state.holds;
    let (booking, other, facility) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let expires_at = Utc::now() + chrono::Duration::minutes(10);

    holds
        .put(&mirrored(booking, facility, expires_at))
        .await
        .unwrap();
    holds
        .put(&mirrored(other, facility, expires_at))
        .await
        .unwrap();

    assert_eq!(holds.get(booking).await.unwrap(), Some(facility));
    assert_eq!(holds.get(Uuid::new_v4()).await.unwrap(), None);

    holds.remove(booking).await.unwrap();

    assert_eq!(holds.get(booking).await.unwrap(), None);
    assert_eq!(holds.get(other).await.unwrap(), Some(facility));
    holds.remove(booking).await.unwrap();
}

async fn a_mirrored_hold_expires_at_its_expiry(state: StateBackends) {
    let holds = state.holds;
    let (booking, facility) = (Uuid::new_v4(), Uuid::new_v4());

    holds
        .put(&mirrored(
            booking,
            facility,
            Utc::now() + chrono::Duration::milliseconds(300),
        ))
        .await
        .unwrap();
    assert_eq!(holds.get(booking).await.unwrap(), Some(facility));

    tokio::time::sleep(Duration::from_millis(450)).await;

    assert_eq!(holds.get(booking).await.unwrap(), None);
}

async fn a_hold_mirrored_with_a_past_expiry_stores_nothing(state: StateBackends) {
    let holds = state.holds;
    let (booking, facility) = (Uuid::new_v4(), Uuid::new_v4());

    holds
        .put(&mirrored(
            booking,
            facility,
            Utc::now() - chrono::Duration::seconds(1),
        ))
        .await
        .unwrap();
    assert_eq!(holds.get(booking).await.unwrap(), None);

    // A later put with a past expiry also ends an earlier mirror of the same hold.
    holds
        .put(&mirrored(
            booking,
            facility,
            Utc::now() + chrono::Duration::minutes(10),
        ))
        .await
        .unwrap();
    holds
        .put(&mirrored(
            booking,
            facility,
            Utc::now() - chrono::Duration::seconds(1),
        ))
        .await
        .unwrap();
    assert_eq!(holds.get(booking).await.unwrap(), None);
}

// --- Rate limiting ---

const MINUTE: Duration = Duration::from_secs(60);

async fn check(limiter: &Arc<dyn RateLimiter>, key: &str, limit: Limit) -> Decision {
    limiter.check(key, limit).await.unwrap()
}

/// Checks `key` `n` times and returns how many were admitted.
async fn admitted(limiter: &Arc<dyn RateLimiter>, key: &str, limit: Limit, n: u32) -> u32 {
    let mut admitted = 0;
    for _ in 0..n {
        if check(limiter, key, limit).await.allowed {
            admitted += 1;
        }
    }
    admitted
}

fn assert_within(d: Duration, low: Duration, high: Duration, what: &str) {
    assert!(
        low <= d && d <= high,
        "{what} {d:?} is not in {low:?}..={high:?}"
    );
}

async fn a_rate_limit_admits_exactly_max_then_refuses(state: StateBackends) {
    let limiter = state.rate_limiter;
    let limit = Limit::new(5, MINUTE);
    let key = "ip:203.0.113.7:global";

    for expected_remaining in (0..5).rev() {
        let decision = check(&limiter, key, limit).await;
        assert!(decision.allowed, "{decision:?}");
        assert_eq!(decision.limit, 5);
        assert_eq!(decision.remaining, expected_remaining);
        assert_eq!(decision.retry_after, None);
        assert_within(
            decision.reset_after,
            MINUTE - Duration::from_secs(5),
            MINUTE,
            "reset_after",
        );
    }
    for _ in 0..3 {
        let decision = check(&limiter, key, limit).await;
        assert!(!decision.allowed, "{decision:?}");
        assert_eq!(decision.limit, 5);
        assert_eq!(decision.remaining, 0);
        let retry_after = decision.retry_after.unwrap();
        assert_within(
            retry_after,
            MINUTE - Duration::from_secs(5),
            MINUTE,
            "retry_after",
        );
        // With exactly `max` counted, the next slot frees up when the oldest leaves.
        assert_eq!(retry_after, decision.reset_after);
    }
}

async fn rate_limit_keys_are_independent(state: StateBackends) {
    let limiter = state.rate_limiter;
    let limit = Limit::new(2, MINUTE);
    // Braces must not let keys share a log (the Redis key wraps the caller's key in a hash tag).
    let keys = [
        "user:1",
        "user:12",
        "{user:1}",
        "user:1}",
        "ip:203.0.113.7:login",
    ];

    assert_eq!(admitted(&limiter, keys[0], limit, 5).await, 2);
    for key in &keys[1..] {
        assert_eq!(admitted(&limiter, key, limit, 5).await, 2, "key {key:?}");
    }
    // The same key under a larger limit shares the log of its earlier checks.
    assert_eq!(
        admitted(&limiter, keys[0], Limit::new(3, MINUTE), 5).await,
        1
    );
}

async fn a_rate_limit_admits_again_once_the_window_has_passed(state: StateBackends) {
    let limiter = state.rate_limiter;
    let limit = Limit::new(3, Duration::from_millis(400));
    let key = "user:window";

    assert_eq!(admitted(&limiter, key, limit, 5).await, 3);
    tokio::time::sleep(Duration::from_millis(550)).await;

    let decision = check(&limiter, key, limit).await;
    assert!(decision.allowed, "{decision:?}");
    assert_eq!(decision.remaining, 2);
    assert_eq!(admitted(&limiter, key, limit, 5).await, 2);
}

async fn refused_requests_are_not_counted_against_the_limit(state: StateBackends) {
    let limiter = state.rate_limiter;
    let limit = Limit::new(3, Duration::from_millis(500));
    let key = "ip:198.51.100.4:global";
    let start = tokio::time::Instant::now();

    assert_eq!(admitted(&limiter, key, limit, 3).await, 3);
    // Refusals between 250 and ~350 ms would, if counted, still fill the window at 600 ms.
    tokio::time::sleep_until(start + Duration::from_millis(250)).await;
    for _ in 0..10 {
        let decision = check(&limiter, key, limit).await;
        assert!(!decision.allowed, "{decision:?}");
        assert!(decision.retry_after.unwrap() <= limit.window);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep_until(start + Duration::from_millis(600)).await;

    assert_eq!(admitted(&limiter, key, limit, 6).await, 3);
}

async fn concurrent_checks_on_one_key_admit_exactly_max(state: StateBackends) {
    const TASKS: u32 = 200;
    const MAX: u32 = 37;
    let limiter = state.rate_limiter;
    let limit = Limit::new(MAX, MINUTE);

    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.check("ip:192.0.2.1:global", limit).await })
        })
        .collect();
    let mut remaining_of_admitted = Vec::new();
    let mut refused = 0;
    for task in tasks {
        let decision = task.await.unwrap().unwrap();
        if decision.allowed {
            remaining_of_admitted.push(decision.remaining);
        } else {
            refused += 1;
            assert_eq!(decision.remaining, 0);
        }
    }

    assert_eq!(remaining_of_admitted.len(), MAX as usize);
    assert_eq!(refused, TASKS - MAX);
    // Each admitted request saw its own place in the count.
    remaining_of_admitted.sort_unstable();
    assert_eq!(remaining_of_admitted, (0..MAX).collect::<Vec<_>>());
    assert!(!check(&limiter, "ip:192.0.2.1:global", limit).await.allowed);
}

async fn the_rate_limit_window_slides(state: StateBackends) {
    // Every bound is worked out from when the test saw each call start and end, not from when it
    // meant to send it: a busy machine that delays a call moves the bounds with it. The window is
    // long enough that the second pair is still counted when the first has left, unless a single
    // call is delayed by most of a second.
    let limiter = state.rate_limiter;
    let window = Duration::from_millis(2000);
    let limit = Limit::new(4, window);
    let key = "user:sliding";
    // The backends count in whole milliseconds.
    let slack = Duration::from_millis(5);
    let now = tokio::time::Instant::now;

    let first_sent = now();
    assert_eq!(admitted(&limiter, key, limit, 2).await, 2);
    let first_done = now();
    tokio::time::sleep_until(first_done + window / 2).await;
    let second_sent = now();
    assert_eq!(admitted(&limiter, key, limit, 2).await, 2);
    let second_done = now();
    let asked = now();
    let refused = check(&limiter, key, limit).await;
    let answered = now();
    assert!(!refused.allowed, "{refused:?}");
    // The first pair leaves one window after it was counted.
    assert_within(
        refused.retry_after.unwrap(),
        (first_sent + window)
            .saturating_duration_since(answered)
            .saturating_sub(slack),
        (first_done + window).saturating_duration_since(asked) + slack,
        "retry_after",
    );

    // Once the first pair has left, while the second is still counted: a fixed window would have
    // admitted all four again (or none).
    tokio::time::sleep_until(first_done + window + slack).await;
    let first = check(&limiter, key, limit).await;
    assert!(first.allowed, "{first:?}");
    assert_eq!(first.remaining, 1);
    assert!(check(&limiter, key, limit).await.allowed);
    let asked = now();
    let refused = check(&limiter, key, limit).await;
    let answered = now();
    assert!(
        answered < second_sent + window,
        "a call took most of a second; the second pair has left before it could be checked"
    );
    assert!(!refused.allowed, "{refused:?}");
    // Now the second pair is the oldest counted.
    assert_within(
        refused.retry_after.unwrap(),
        (second_sent + window)
            .saturating_duration_since(answered)
            .saturating_sub(slack),
        (second_done + window).saturating_duration_since(asked) + slack,
        "retry_after",
    );
}

async fn reset_after_counts_down_from_the_oldest_counted_request(state: StateBackends) {
    let limiter = state.rate_limiter;
    let window = Duration::from_millis(1000);
    let limit = Limit::new(10, window);
    let key = "user:reset";

    let first = check(&limiter, key, limit).await;
    assert_within(
        first.reset_after,
        window - Duration::from_millis(100),
        window,
        "reset_after",
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The oldest counted request is still the first, ~300 ms old.
    let later = check(&limiter, key, limit).await;
    assert!(later.allowed);
    assert_eq!(later.remaining, 8);
    assert_within(
        later.reset_after,
        Duration::from_millis(1),
        Duration::from_millis(700),
        "reset_after",
    );
}

async fn a_lowered_limit_waits_until_enough_requests_have_left(state: StateBackends) {
    let limiter = state.rate_limiter;
    let window = Duration::from_millis(800);
    let key = "user:lowered";
    let start = tokio::time::Instant::now();

    assert_eq!(admitted(&limiter, key, Limit::new(5, window), 3).await, 3);
    tokio::time::sleep_until(start + Duration::from_millis(300)).await;
    assert_eq!(admitted(&limiter, key, Limit::new(5, window), 2).await, 2);

    // Five counted against a limit of two: a slot frees up only once four have left, i.e. when the
    // first one from ~300 ms leaves at ~1100 ms, not when the oldest leaves at ~800 ms.
    tokio::time::sleep_until(start + Duration::from_millis(400)).await;
    let refused = check(&limiter, key, Limit::new(2, window)).await;
    assert!(!refused.allowed, "{refused:?}");
    assert_eq!(refused.remaining, 0);
    assert_within(
        refused.retry_after.unwrap(),
        Duration::from_millis(550),
        Duration::from_millis(710),
        "retry_after",
    );
    assert_within(
        refused.reset_after,
        Duration::from_millis(1),
        Duration::from_millis(410),
        "reset_after",
    );
}

async fn degenerate_limits_are_decided_without_counting(state: StateBackends) {
    let limiter = state.rate_limiter;
    let key = "user:degenerate";

    let closed = check(&limiter, key, Limit::new(0, MINUTE)).await;
    assert_eq!(
        closed,
        Decision {
            allowed: false,
            limit: 0,
            remaining: 0,
            reset_after: Duration::ZERO,
            retry_after: Some(MINUTE),
        }
    );
    let unwindowed = check(&limiter, key, Limit::new(3, Duration::ZERO)).await;
    assert!(unwindowed.allowed);
    assert_eq!(unwindowed.remaining, 3);
    // Neither counted anything.
    assert_eq!(admitted(&limiter, key, Limit::new(3, MINUTE), 5).await, 3);
}

async fn a_one_time_token_is_taken_exactly_once(state: StateBackends) {
    let tokens = state.tokens;
    let (token, other) = (SessionToken::generate(), SessionToken::generate());
    let subject = Uuid::new_v4();
    tokens
        .issue(TokenPurpose::PasswordReset, &token.hash(), subject, HOUR)
        .await
        .unwrap();

    assert_eq!(
        tokens
            .take(TokenPurpose::PasswordReset, &other.hash())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        tokens
            .take(TokenPurpose::PasswordReset, &token.hash())
            .await
            .unwrap(),
        Some(subject)
    );
    assert_eq!(
        tokens
            .take(TokenPurpose::PasswordReset, &token.hash())
            .await
            .unwrap(),
        None,
        "a used token is refused"
    );
}

async fn a_one_time_token_is_refused_after_its_expiry(state: StateBackends) {
    let tokens = state.tokens;
    let token = SessionToken::generate();
    tokens
        .issue(
            TokenPurpose::PasswordReset,
            &token.hash(),
            Uuid::new_v4(),
            Duration::from_millis(200),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        tokens
            .take(TokenPurpose::PasswordReset, &token.hash())
            .await
            .unwrap(),
        None
    );
}

async fn concurrent_takes_of_one_token_give_it_to_one_caller(state: StateBackends) {
    let tokens = state.tokens;
    let token = SessionToken::generate();
    let subject = Uuid::new_v4();
    tokens
        .issue(TokenPurpose::PasswordReset, &token.hash(), subject, HOUR)
        .await
        .unwrap();
    let takes = (0..50).map(|_| {
        let tokens = tokens.clone();
        let hash = token.hash();
        tokio::spawn(async move { tokens.take(TokenPurpose::PasswordReset, &hash).await })
    });
    let winners = futures::future::join_all(takes)
        .await
        .into_iter()
        .filter(|r| matches!(r, Ok(Ok(Some(s))) if *s == subject))
        .count();
    assert_eq!(winners, 1);
}

async fn a_token_is_seen_for_the_first_time_once_until_its_ttl_passes(state: StateBackends) {
    let tokens = state.tokens;
    let (nonce, other) = (SessionToken::generate(), SessionToken::generate());
    let ttl = Duration::from_millis(300);
    let seen = |token: &SessionToken| {
        let (tokens, hash) = (tokens.clone(), token.hash());
        async move {
            tokens
                .first_sighting(TokenPurpose::SignatureNonce, &hash, ttl)
                .await
                .unwrap()
        }
    };

    assert!(seen(&nonce).await, "the first sighting");
    assert!(!seen(&nonce).await, "a second sighting within the ttl");
    assert!(seen(&other).await, "tokens are independent");
    // A nonce is not a password-reset token, and the other way round.
    assert_eq!(
        tokens
            .take(TokenPurpose::PasswordReset, &nonce.hash())
            .await
            .unwrap(),
        None
    );
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(seen(&nonce).await, "forgotten after the ttl");
}

async fn a_peeked_token_stays_until_taken_or_expired_and_a_reissue_extends_it(
    state: StateBackends,
) {
    let tokens = state.tokens;
    let (token, never) = (SessionToken::generate(), SessionToken::generate());
    let subject = Uuid::new_v4();
    let peek = |token: &SessionToken| {
        let (tokens, hash) = (tokens.clone(), token.hash());
        async move { tokens.peek(TokenPurpose::RecentWrite, &hash).await.unwrap() }
    };
    let ttl = Duration::from_millis(1000);
    tokens
        .issue(TokenPurpose::RecentWrite, &token.hash(), subject, ttl)
        .await
        .unwrap();

    assert_eq!(peek(&token).await, Some(subject));
    assert_eq!(peek(&token).await, Some(subject), "peeking takes nothing");
    assert_eq!(peek(&never).await, None);
    assert_eq!(
        tokens
            .peek(TokenPurpose::PasswordReset, &token.hash())
            .await
            .unwrap(),
        None,
        "purposes are apart"
    );
    // Issued again before it expires: it lasts a whole ttl from then.
    tokio::time::sleep(Duration::from_millis(600)).await;
    tokens
        .issue(TokenPurpose::RecentWrite, &token.hash(), subject, ttl)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        peek(&token).await,
        Some(subject),
        "extended by the second issue"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(peek(&token).await, None, "gone after its ttl");

    tokens
        .issue(TokenPurpose::RecentWrite, &token.hash(), subject, HOUR)
        .await
        .unwrap();
    assert_eq!(
        tokens
            .take(TokenPurpose::RecentWrite, &token.hash())
            .await
            .unwrap(),
        Some(subject)
    );
    assert_eq!(peek(&token).await, None, "gone once taken");
}

async fn concurrent_first_sightings_of_one_token_give_it_to_one_caller(state: StateBackends) {
    let tokens = state.tokens;
    let nonce = SessionToken::generate();
    let sightings = (0..50).map(|_| {
        let tokens = tokens.clone();
        let hash = nonce.hash();
        tokio::spawn(async move {
            tokens
                .first_sighting(TokenPurpose::SignatureNonce, &hash, HOUR)
                .await
        })
    });
    let firsts = futures::future::join_all(sightings)
        .await
        .into_iter()
        .filter(|r| matches!(r, Ok(Ok(true))))
        .count();
    assert_eq!(firsts, 1);
}

/// A fresh channel name, so that tests sharing a server never share a channel.
fn channel_name(kind: &str) -> String {
    format!("{kind}:{}", Uuid::new_v4())
}

/// The listener's next event, failing the test when none arrives in time.
async fn next_event(listener: &mut Listener) -> ChannelEvent {
    tokio::time::timeout(Duration::from_secs(15), listener.recv())
        .await
        .expect("an event within 15 s")
        .expect("the listener is still running")
}

async fn channel_offsets_grow_by_one_from_the_first(state: StateBackends) {
    let channels = state.channels;
    let channel = channel_name("facility");
    let first = channels.publish(&channel, r#"{"n":0}"#).await.unwrap();
    assert!(first > 1_600_000_000_000, "seeded from the clock: {first}");
    for n in 1..10u64 {
        let offset = channels
            .publish(&channel, &format!(r#"{{"n":{n}}}"#))
            .await
            .unwrap();
        assert_eq!(offset, first + n);
    }
    assert_eq!(
        channels.history(&channel, None).await.unwrap().latest,
        first + 9
    );
}

async fn channel_history_since_an_offset_returns_exactly_the_later_events(state: StateBackends) {
    let channels = state.channels;
    let channel = channel_name("facility");
    let mut offsets = Vec::new();
    for n in 0..6 {
        offsets.push(
            channels
                .publish(&channel, &format!(r#"{{"n":{n}}}"#))
                .await
                .unwrap(),
        );
    }

    let history = channels.history(&channel, Some(offsets[2])).await.unwrap();

    assert!(history.recovered);
    assert_eq!(history.latest, offsets[5]);
    let got: Vec<(u64, String)> = history
        .events
        .iter()
        .map(|e| (e.offset, e.payload.to_string()))
        .collect();
    let want: Vec<(u64, String)> = (3..6)
        .map(|n| (offsets[n], format!(r#"{{"n":{n}}}"#)))
        .collect();
    assert_eq!(got, want);
    assert!(history.events.iter().all(|e| *e.channel == *channel));

    let up_to_date = channels.history(&channel, Some(offsets[5])).await.unwrap();
    assert!(up_to_date.recovered);
    assert!(up_to_date.events.is_empty());
    let without_since = channels.history(&channel, None).await.unwrap();
    assert!(without_since.recovered);
    assert!(without_since.events.is_empty());
    assert_eq!(without_since.latest, offsets[5]);
}

async fn channel_history_trimmed_by_length_is_not_recovered(state: StateBackends) {
    let channels = state.channels;
    let channel = channel_name("facility");
    let count = HISTORY_LEN + 5;
    let first = channels.publish(&channel, "{}").await.unwrap();
    for _ in 1..count {
        channels.publish(&channel, "{}").await.unwrap();
    }
    let last = first + count as u64 - 1;

    let old = channels.history(&channel, Some(first)).await.unwrap();
    assert!(!old.recovered);
    assert_eq!(old.latest, last);
    assert_eq!(old.events.len(), HISTORY_LEN);
    assert_eq!(
        old.events.first().unwrap().offset,
        last + 1 - HISTORY_LEN as u64
    );
    assert_eq!(old.events.last().unwrap().offset, last);

    // The oldest retained event's predecessor is still reachable.
    let reachable = channels
        .history(&channel, Some(last - HISTORY_LEN as u64))
        .await
        .unwrap();
    assert!(reachable.recovered);
    assert_eq!(reachable.events.len(), HISTORY_LEN);
}

async fn channel_history_since_an_offset_above_the_latest_is_not_recovered(state: StateBackends) {
    let channels = state.channels;
    let channel = channel_name("user");
    let latest = channels.publish(&channel, "{}").await.unwrap();
    let history = channels.history(&channel, Some(latest + 10)).await.unwrap();
    assert!(!history.recovered);
    assert_eq!(history.latest, latest);
    assert!(history.events.is_empty());
}

async fn a_channel_never_published_has_latest_zero(state: StateBackends) {
    let channels = state.channels;
    let channel = channel_name("user");
    let history = channels.history(&channel, None).await.unwrap();
    assert_eq!(history.latest, 0);
    assert!(history.events.is_empty());
    assert!(history.recovered);
    let since_zero = channels.history(&channel, Some(0)).await.unwrap();
    assert!(since_zero.recovered);
    assert!(since_zero.events.is_empty());
}

async fn channel_listeners_receive_every_event_of_their_channels_and_no_other(
    state: StateBackends,
) {
    let channels = state.channels;
    let (shared, own) = (channel_name("facility"), channel_name("facility"));
    // Two listeners stand for two instances.
    let mut first = channels.listen().await.unwrap();
    let mut second = channels.listen().await.unwrap();
    first.handle().subscribe(&shared).await.unwrap();
    second.handle().subscribe(&shared).await.unwrap();
    second.handle().subscribe(&own).await.unwrap();

    let mut shared_offsets = Vec::new();
    let mut own_offsets = Vec::new();
    for n in 0..5 {
        shared_offsets.push(
            channels
                .publish(&shared, &format!(r#"{{"n":{n}}}"#))
                .await
                .unwrap(),
        );
        own_offsets.push(
            channels
                .publish(&own, &format!(r#"{{"m":{n}}}"#))
                .await
                .unwrap(),
        );
    }
    // A last event on the shared channel: once the first listener has it, anything of the other
    // channel would have been handed over too.
    shared_offsets.push(channels.publish(&shared, r#"{"last":true}"#).await.unwrap());

    let mut got_first = Vec::new();
    while got_first.len() < shared_offsets.len() {
        let event = next_event(&mut first).await;
        assert_eq!(
            &*event.channel, shared,
            "the first listener never subscribed to it"
        );
        got_first.push(event.offset);
    }
    assert_eq!(got_first, shared_offsets);

    let (mut got_shared, mut got_own) = (Vec::new(), Vec::new());
    while got_shared.len() < shared_offsets.len() || got_own.len() < own_offsets.len() {
        let event = next_event(&mut second).await;
        if *event.channel == *shared {
            got_shared.push(event.offset);
        } else {
            assert_eq!(&*event.channel, own);
            got_own.push(event.offset);
        }
    }
    assert_eq!(got_shared, shared_offsets);
    assert_eq!(got_own, own_offsets);
    let last = got_first.last().copied().unwrap();
    let payload = channels.history(&shared, Some(last - 1)).await.unwrap();
    assert_eq!(&*payload.events[0].payload, r#"{"last":true}"#);
}

async fn a_channel_unsubscribed_is_no_longer_delivered(state: StateBackends) {
    let channels = state.channels;
    let (dropped, kept) = (channel_name("user"), channel_name("user"));
    let mut listener = channels.listen().await.unwrap();
    let handle = listener.handle();
    handle.subscribe(&dropped).await.unwrap();
    handle.subscribe(&kept).await.unwrap();
    let before = channels.publish(&dropped, "{}").await.unwrap();
    assert_eq!(next_event(&mut listener).await.offset, before);

    handle.unsubscribe(&dropped).await.unwrap();
    handle.unsubscribe(&dropped).await.unwrap(); // A second call changes nothing.
    channels.publish(&dropped, "{}").await.unwrap();
    let sentinel = channels.publish(&kept, "{}").await.unwrap();
    channels.publish(&dropped, "{}").await.unwrap();
    let sentinel_two = channels.publish(&kept, "{}").await.unwrap();

    for want in [sentinel, sentinel_two] {
        let event = next_event(&mut listener).await;
        assert_eq!(
            &*event.channel, kept,
            "an unsubscribed channel was delivered"
        );
        assert_eq!(event.offset, want);
    }
}

async fn channel_listeners_receive_concurrent_publishes_once_each_in_order(state: StateBackends) {
    const PUBLISHERS: usize = 8;
    const EACH: usize = 25;
    let channels = state.channels;
    let channel = channel_name("facility");
    let mut listeners = Vec::new();
    for _ in 0..2 {
        let listener = channels.listen().await.unwrap();
        listener.handle().subscribe(&channel).await.unwrap();
        listeners.push(listener);
    }

    let publishers = (0..PUBLISHERS).map(|p| {
        let channels = channels.clone();
        let channel = channel.clone();
        tokio::spawn(async move {
            let mut offsets = Vec::new();
            for n in 0..EACH {
                let payload = format!(r#"{{"p":{p},"n":{n}}}"#);
                offsets.push(channels.publish(&channel, &payload).await.unwrap());
            }
            offsets
        })
    });
    let mut published: Vec<u64> = futures::future::join_all(publishers)
        .await
        .into_iter()
        .flat_map(|r| r.unwrap())
        .collect();
    published.sort_unstable();
    let first = published[0];
    let expected: Vec<u64> = (first..first + (PUBLISHERS * EACH) as u64).collect();
    assert_eq!(published, expected, "every publish took the next offset");

    for mut listener in listeners {
        let mut got = Vec::new();
        while got.len() < expected.len() {
            got.push(next_event(&mut listener).await.offset);
        }
        assert_eq!(got, expected, "every offset once, in order");
    }
}

async fn concurrent_subscribes_to_one_channel_all_return_subscribed(state: StateBackends) {
    let channels = state.channels;
    let channel = channel_name("facility");
    let mut listener = channels.listen().await.unwrap();
    let handle = listener.handle();
    let subscribes = (0..10).map(|_| {
        let handle = handle.clone();
        let channel = channel.clone();
        tokio::spawn(async move { handle.subscribe(&channel).await })
    });
    for result in futures::future::join_all(subscribes).await {
        result.unwrap().unwrap();
    }
    let offset = channels.publish(&channel, "{}").await.unwrap();
    assert_eq!(next_event(&mut listener).await.offset, offset);
}

/// How many subscriptions Redis counts for a Pub/Sub channel: `PUBSUB NUMSUB` on a single server,
/// the sum of `PUBSUB SHARDNUMSUB` over every node of a cluster.
async fn subscriptions(conn: &RedisConn, urls: &str, name: &str) -> i64 {
    if !conn.is_cluster() {
        let counts: (String, i64) = conn
            .query(redis::cmd("PUBSUB").arg("NUMSUB").arg(name))
            .await
            .unwrap();
        return counts.1;
    }
    let mut total = 0;
    for url in urls.split(',') {
        let client = redis::Client::open(url).unwrap();
        let mut node = client.get_multiplexed_async_connection().await.unwrap();
        let counts: (String, i64) = redis::cmd("PUBSUB")
            .arg("SHARDNUMSUB")
            .arg(name)
            .query_async(&mut node)
            .await
            .unwrap();
        total += counts.1;
    }
    total
}

/// Polls `subscriptions` until it is `want`, for at most 15 s.
async fn await_subscriptions(conn: &RedisConn, urls: &str, name: &str, want: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let got = subscriptions(conn, urls, name).await;
        if got == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} has {got} subscriptions, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_listener_subscribes_once_per_channel_on_redis(url_var: &str, cluster: bool) {
    let urls = env_url(url_var);
    let prefix = format!("test:{}:", Uuid::new_v4().simple());
    let conn = RedisConn::connect(&RedisOptions::new(&urls, cluster, prefix))
        .await
        .unwrap();
    let channels = RedisChannels::new(conn.clone());
    let channel = channel_name("facility");
    let name = channels.pubsub_channel(&channel);
    let listener = clubpulse_state::Channels::listen(&channels).await.unwrap();
    let (handle, other) = (listener.handle(), listener.handle());
    for _ in 0..3 {
        handle.subscribe(&channel).await.unwrap();
        other.subscribe(&channel).await.unwrap();
    }
    assert_eq!(subscriptions(&conn, &urls, &name).await, 1);

    // A second listener (another instance) has its own subscription.
    let second = clubpulse_state::Channels::listen(&channels).await.unwrap();
    second.handle().subscribe(&channel).await.unwrap();
    assert_eq!(subscriptions(&conn, &urls, &name).await, 2);

    handle.unsubscribe(&channel).await.unwrap();
    assert_eq!(subscriptions(&conn, &urls, &name).await, 1);

    // Dropping a listener and its handles ends its task and closes its connection.
    drop((second, handle, other, listener));
    await_subscriptions(&conn, &urls, &name, 0).await;
}

#[tokio::test]
async fn redis_single_a_listener_subscribes_once_per_channel() {
    a_listener_subscribes_once_per_channel_on_redis("CLUBPULSE_TEST_REDIS_URL", false).await;
}

#[tokio::test]
async fn redis_cluster_a_listener_subscribes_once_per_channel() {
    a_listener_subscribes_once_per_channel_on_redis("CLUBPULSE_TEST_REDIS_CLUSTER_URL", true).await;
}

async fn an_event_published_twice_under_one_id_is_delivered_and_kept_once(state: StateBackends) {
    let channels = state.channels;
    let channel = channel_name("facility");
    let mut listener = channels.listen().await.unwrap();
    listener.handle().subscribe(&channel).await.unwrap();

    let first = channels
        .publish_once(&channel, "event-1", r#"{"n":1}"#)
        .await
        .unwrap();
    let again = channels
        .publish_once(&channel, "event-1", r#"{"n":1}"#)
        .await
        .unwrap();
    assert_eq!(again, first, "a repeat answers the first offset");
    let other = channels
        .publish_once(&channel, "event-2", r#"{"n":2}"#)
        .await
        .unwrap();
    assert_eq!(other, first + 1);

    assert_eq!(next_event(&mut listener).await.offset, first);
    assert_eq!(next_event(&mut listener).await.offset, other);
    let history = channels.history(&channel, Some(first - 1)).await.unwrap();
    let kept: Vec<u64> = history.events.iter().map(|e| e.offset).collect();
    assert_eq!(kept, vec![first, other]);
}
