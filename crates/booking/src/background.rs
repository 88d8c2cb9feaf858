//! The booking service's periodic work: the hold sweeper and the outbox relay. It runs wherever
//! background work runs: in `serve` (unless `CLUBPULSE_WORKER=off`) and in `clubpulse worker`, so a
//! deployment whose web instances do no background work still expires holds and delivers events.
//! Any number of instances may run it: both parts take an advisory lock per round.

use std::{future::Future, time::Duration};

use tokio::sync::watch;

use crate::{Bookings, relay::Relay};

/// How often the relay looks for events when no notification woke it.
pub const RELAY_POLL: Duration = Duration::from_millis(500);

/// Runs the sweeper and the relay until `stop` completes, then delivers what is left once.
pub async fn run(bookings: Bookings, relay: Relay, stop: impl Future<Output = ()>) {
    let (stopping, stopped) = watch::channel(false);
    let sweeper = {
        let bookings = bookings.clone();
        let mut stopped = stopped.clone();
        async move {
            let mut ticks = tokio::time::interval(bookings.rules().sweep_interval());
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stopped.changed() => return,
                    _ = ticks.tick() => {}
                }
                if let Err(err) = bookings.sweep().await {
                    tracing::warn!(error = %err, "sweeping expired holds failed; retrying");
                }
            }
        }
    };
    let relaying = {
        let relay = relay.clone();
        let mut stopped = stopped;
        relay.run(RELAY_POLL, async move {
            let _ = stopped.changed().await;
        })
    };
    let stop = async move {
        stop.await;
        let _ = stopping.send(true);
    };
    tokio::join!(sweeper, relaying, stop);
    if let Err(err) = relay.drain().await {
        tracing::warn!(error = %err, "delivering the last outbox events failed; the next relay will");
    }
}
