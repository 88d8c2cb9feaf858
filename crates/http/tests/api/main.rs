//! End-to-end tests of the HTTP API: the real server on a free port, against a real PostgreSQL
//! (a fresh database per test) and a real Redis (a fresh key prefix per test), or the in-process
//! twin where a test says so. One test binary, one module per area.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod helpers;

mod accounts;
mod admin;
mod background;
mod bad_input;
mod bookings;
mod caching;
mod calendar_feed;
mod classes;
mod clubs_and_facilities;
mod faults;
mod instances;
mod metrics;
mod notifications;
mod operations;
mod outbound_webhooks;
mod outbox;
mod payments;
mod protection;
mod proxy;
mod realtime;
mod replica;
mod search;
mod signed_requests;
mod stats;
mod waitlist;
mod web;
mod ws_client;
