//! The in-process domain-event bus: every booking state change is published here once committed.
//! Real-time delivery, audit and e-mail subscribe to it; a slow subscriber misses events (it is
//! told how many) rather than slowing bookings down.

use clubpulse_domain::BookingEvent;
use tokio::sync::broadcast;

/// How many events a subscriber may fall behind before it starts missing them.
const CAPACITY: usize = 4096;

#[derive(Debug, Clone)]
pub struct Events {
    tx: broadcast::Sender<BookingEvent>,
}

impl Default for Events {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(CAPACITY).0,
        }
    }
}

impl Events {
    /// Publishes to every current subscriber; with none, the event is simply dropped.
    pub fn publish(&self, event: BookingEvent) {
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<BookingEvent> {
        self.tx.subscribe()
    }
}
