//! The member pages: search, a facility's week, a booking (hold, pay, cancel), my bookings and
//! notifications.

use std::collections::HashMap;

use askama::Template;
use axum::{
    Form,
    extract::{
        Path, Query, State,
        rejection::{FormRejection, QueryRejection},
    },
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use clubpulse_booking::{BookingError, FacilityContext, alternatives::Alternative};
use clubpulse_domain::BookingStatus;
use clubpulse_storage::{
    bookings::Booking,
    clubs::{self, Club},
    facilities::{self, Facility, Filter},
};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    Chrome, SignedIn, Viewer, bad_form, error_page,
    i18n::{Lang, Text},
    page,
    week::Week,
};
use crate::{
    ApiError, AppState,
    extract::ReadDb,
    limits::{self, Policy},
    parse,
    routes::search::{SearchQuery, search_facilities},
};

// ---------------------------------------------------------------------------------------------
// Search

#[derive(Debug, Default, Deserialize)]
pub struct HomeQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    sport: String,
    #[serde(default)]
    when: String,
    #[serde(default)]
    day: String,
}

/// A facility in the results, with why it came up.
#[derive(Debug)]
pub struct ResultCard {
    pub id: Uuid,
    pub name: String,
    pub club: String,
    pub sport: String,
    pub description: String,
    pub price: String,
    pub words: Vec<String>,
    pub all_words: bool,
    /// "82 %" similar in meaning, when the vector retriever found it.
    pub similar: Option<String>,
}

#[derive(Template)]
#[template(path = "home.html")]
struct Home<'a> {
    c: &'a Chrome,
    q: String,
    sport: String,
    when: String,
    day: String,
    today: String,
    sports: Vec<String>,
    searched: bool,
    results: Vec<ResultCard>,
    notice: Option<&'static str>,
}

impl Home<'_> {
    fn when_options(&self) -> [(&'static str, &'static str); 4] {
        let t = self.c.t;
        [
            ("", t.filter_any_time),
            ("morning", t.filter_morning),
            ("afternoon", t.filter_afternoon),
            ("evening", t.filter_evening),
        ]
    }
}

/// The local hours a "when" filter stands for.
fn part_of_day(when: &str) -> Option<(u32, u32)> {
    match when {
        "morning" => Some((7, 12)),
        "afternoon" => Some((12, 18)),
        "evening" => Some((18, 23)),
        _ => None,
    }
}

fn price_label(t: &Text, lang: Lang, cents: i64, currency: &str) -> String {
    if cents == 0 {
        t.free_of_charge.to_owned()
    } else {
        format!("{} {}", lang.money(cents, currency), t.per_slot)
    }
}

/// `GET /`: the search box, and below it what matched (or, before a search, every facility).
pub async fn home(
    State(app): State<AppState>,
    c: Chrome,
    ReadDb(db): ReadDb,
    query: Result<Query<HomeQuery>, QueryRejection>,
) -> Response {
    let query = query.map(|q| q.0).unwrap_or_default();
    let q = query.q.trim().to_owned();
    let sport = query.sport.trim().to_ascii_lowercase();
    let clubs: HashMap<Uuid, Club> = match clubs::list(&db).await {
        Ok(list) => list.into_iter().map(|c| (c.id, c)).collect(),
        Err(err) => return error_page(&c, &err.into()),
    };
    let everything = match facilities::list(
        &db,
        &Filter {
            limit: 500,
            ..Filter::default()
        },
    )
    .await
    {
        Ok(list) => list,
        Err(err) => return error_page(&c, &err.into()),
    };
    let mut sports: Vec<String> = everything.iter().map(|f| f.sport.clone()).collect();
    sports.sort();
    sports.dedup();
    let card = |f: &Facility| ResultCard {
        id: f.id,
        name: f.name.clone(),
        club: clubs
            .get(&f.club_id)
            .map(|c| c.name.clone())
            .unwrap_or_default(),
        sport: f.sport.clone(),
        description: f.description.clone(),
        price: price_label(c.t, c.lang, f.price_cents, &f.currency),
        words: Vec::new(),
        all_words: false,
        similar: None,
    };
    let mut notice = None;
    let searched = !q.is_empty();
    let mut results: Vec<(ResultCard, Facility)> = Vec::new();
    if searched && app.search.is_some() {
        let asked = SearchQuery {
            q: q.chars().take(256).collect(),
            limit: Some(10),
            sport: (!sport.is_empty()).then(|| sport.clone()),
            club_id: None,
            free_from: None,
            free_to: None,
            mode: None,
        };
        match search_facilities(State(app.clone()), crate::extract::ApiQuery(asked)).await {
            Ok(answer) => {
                let found: HashMap<Uuid, &Facility> =
                    everything.iter().map(|f| (f.id, f)).collect();
                for hit in answer.0.results {
                    let Some(facility) = found.get(&hit.facility.id) else {
                        continue;
                    };
                    let mut card = card(facility);
                    card.words = hit.matched.words;
                    card.all_words = hit.matched.all_words;
                    card.similar = hit
                        .matched
                        .similarity
                        .map(|s| format!("{:.0} %", (s * 100.0).clamp(0.0, 100.0)));
                    results.push((card, (*facility).clone()));
                }
            }
            Err(err) => return error_page(&c, &err),
        }
    } else {
        if searched {
            notice = Some(c.t.search_unavailable);
        }
        results = everything
            .iter()
            .filter(|f| sport.is_empty() || f.sport == sport)
            .map(|f| (card(f), f.clone()))
            .collect();
    }
    let today = Utc::now().date_naive();
    let day = NaiveDate::parse_from_str(query.day.trim(), "%Y-%m-%d").ok();
    if let Some((from_hour, to_hour)) = part_of_day(&query.when) {
        let day = day.unwrap_or(today);
        let mut kept = Vec::new();
        for (card, facility) in results {
            if has_free_slot(&app, &facility, &clubs, day, from_hour, to_hour).await {
                kept.push((card, facility));
            }
        }
        results = kept;
    }
    page(
        StatusCode::OK,
        &Home {
            c: &c,
            q,
            sport,
            when: query.when,
            day: day.map(|d| d.to_string()).unwrap_or_default(),
            today: today.to_string(),
            sports,
            searched,
            results: results.into_iter().map(|(card, _)| card).collect(),
            notice,
        },
    )
}

/// Whether a facility has a free slot on a local date between two local hours of its club.
async fn has_free_slot(
    app: &AppState,
    facility: &Facility,
    clubs: &HashMap<Uuid, Club>,
    day: NaiveDate,
    from_hour: u32,
    to_hour: u32,
) -> bool {
    let Some(tz) = clubs
        .get(&facility.club_id)
        .and_then(|c| c.timezone.parse::<chrono_tz::Tz>().ok())
    else {
        return false;
    };
    let local = |hour: u32| {
        NaiveTime::from_hms_opt(hour, 0, 0)
            .map(|t| day.and_time(t))
            .and_then(|t| t.and_local_timezone(tz).earliest())
            .map(|t| t.with_timezone(&Utc))
    };
    let (Some(from), Some(to)) = (local(from_hour), local(to_hour)) else {
        return false;
    };
    app.bookings
        .with_free_slots(&[facility.id], from.max(Utc::now()), to)
        .await
        .is_ok_and(|free| free.contains(&facility.id))
}

// ---------------------------------------------------------------------------------------------
// A facility's week

#[derive(Debug, Default, Deserialize)]
pub struct WeekQuery {
    week: Option<String>,
    notice: Option<String>,
}

/// A free alternative offered when the slot asked for was just taken.
#[derive(Debug)]
pub struct AltCard {
    pub facility_id: Uuid,
    pub facility: String,
    pub when: String,
    pub value: String,
}

#[derive(Template)]
#[template(path = "facility.html")]
struct FacilityPage<'a> {
    c: &'a Chrome,
    facility: &'a Facility,
    club: &'a Club,
    price: String,
    week: Week,
    this_week: String,
    notice: Option<&'static str>,
    error: Option<String>,
    taken: bool,
    alternatives: Vec<AltCard>,
}

fn week_start(ctx: &FacilityContext, asked: Option<&str>) -> NaiveDate {
    let today = ctx.grid.local_date(Utc::now());
    asked
        .and_then(|w| NaiveDate::parse_from_str(w, "%Y-%m-%d").ok())
        .filter(|d| (*d - today).num_days().abs() <= 400)
        .unwrap_or(today)
}

/// Renders a facility's week, with an outcome from a form if there was one.
async fn render_facility(
    app: &AppState,
    c: &Chrome,
    id: Uuid,
    week: Option<&str>,
    outcome: Outcome,
) -> Response {
    let ctx = match app.bookings.contexts().get(id).await {
        Ok(ctx) => ctx,
        Err(err) => return error_page(c, &err.into()),
    };
    let first = week_start(&ctx, week);
    let (from, to) = Week::span(&ctx, first);
    let availability = match app.bookings.availability(id, from, to).await {
        Ok(a) => a,
        Err(err) => return error_page(c, &err.into()),
    };
    let week = Week::build(&ctx, first, &availability, c.lang);
    let alternatives = alternative_cards(app, c, &outcome.alternatives).await;
    page(
        outcome.status,
        &FacilityPage {
            c,
            price: price_label(
                c.t,
                c.lang,
                ctx.facility.price_cents,
                &ctx.facility.currency,
            ),
            facility: &ctx.facility,
            club: &ctx.club,
            this_week: ctx.grid.local_date(Utc::now()).to_string(),
            week,
            notice: outcome.notice,
            error: outcome.error,
            taken: outcome.taken,
            alternatives,
        },
    )
}

/// What a form on the week page came to.
struct Outcome {
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
    taken: bool,
    alternatives: Vec<Alternative>,
}

impl Outcome {
    fn none() -> Self {
        Self {
            status: StatusCode::OK,
            notice: None,
            error: None,
            taken: false,
            alternatives: Vec::new(),
        }
    }

    fn failed(err: BookingError) -> Self {
        match err {
            BookingError::SlotUnavailable { alternatives } => Self {
                status: StatusCode::CONFLICT,
                taken: true,
                alternatives,
                ..Self::none()
            },
            err => Self::refused(&err.into()),
        }
    }

    fn refused(err: &ApiError) -> Self {
        Self {
            status: err.status(),
            error: Some(err.describe().1),
            ..Self::none()
        }
    }
}

async fn alternative_cards(app: &AppState, c: &Chrome, found: &[Alternative]) -> Vec<AltCard> {
    if found.is_empty() {
        return Vec::new();
    }
    let ids: Vec<Uuid> = found.iter().map(|a| a.facility_id).collect();
    let named: HashMap<Uuid, (Facility, Club)> = facilities::with_clubs(&app.db, &ids, false)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(f, club)| (f.id, (f, club)))
        .collect();
    found
        .iter()
        .filter_map(|a| {
            let (facility, club) = named.get(&a.facility_id)?;
            Some(AltCard {
                facility_id: a.facility_id,
                facility: facility.name.clone(),
                when: local_range(c.lang, &club.timezone, a.start, a.end),
                value: format!("{}/{}", rfc3339(a.start), rfc3339(a.end)),
            })
        })
        .collect()
}

/// `GET /facilities/{id}`: the week grid.
pub async fn facility(
    State(app): State<AppState>,
    c: Chrome,
    Path(id): Path<String>,
    query: Result<Query<WeekQuery>, QueryRejection>,
) -> Response {
    let Ok(id) = id.parse::<Uuid>() else {
        return error_page(
            &c,
            &ApiError::not_found("facility_not_found", "no such facility"),
        );
    };
    let query = query.map(|q| q.0).unwrap_or_default();
    let mut outcome = Outcome::none();
    if query.notice.as_deref() == Some("waitlist") {
        outcome.notice = Some(c.t.waitlist_joined);
    }
    render_facility(&app, &c, id, query.week.as_deref(), outcome).await
}

#[derive(Debug, Deserialize)]
pub struct SlotForm {
    /// `start/end`, RFC 3339.
    slot: String,
    #[serde(default)]
    week: Option<String>,
}

impl SlotForm {
    fn range(&self) -> Result<clubpulse_domain::TimeRange, ApiError> {
        let (start, end) = self
            .slot
            .split_once('/')
            .ok_or_else(|| ApiError::invalid_field("slot", "must be start/end"))?;
        parse::instant_range(start, end)
    }
}

/// What a slot form asks for.
#[derive(Debug, Clone, Copy)]
enum SlotAction {
    Hold,
    Wait,
}

/// `POST /facilities/{id}/hold`: holds the slot and shows the hold; a slot just taken shows the
/// week again with free alternatives.
pub async fn hold(
    State(app): State<AppState>,
    SignedIn { c, viewer }: SignedIn,
    Path(id): Path<Uuid>,
    form: Result<Form<SlotForm>, FormRejection>,
) -> Response {
    slot_action(&app, &c, &viewer, id, form, SlotAction::Hold).await
}

/// `POST /facilities/{id}/waitlist`: waits for a taken slot.
pub async fn join_waitlist(
    State(app): State<AppState>,
    SignedIn { c, viewer }: SignedIn,
    Path(id): Path<Uuid>,
    form: Result<Form<SlotForm>, FormRejection>,
) -> Response {
    slot_action(&app, &c, &viewer, id, form, SlotAction::Wait).await
}

/// A slot form of the week page: on success a redirect (to the hold, or back to the week saying
/// the member waits), otherwise the week again with what went wrong.
async fn slot_action(
    app: &AppState,
    c: &Chrome,
    viewer: &Viewer,
    id: Uuid,
    form: Result<Form<SlotForm>, FormRejection>,
    action: SlotAction,
) -> Response {
    let Ok(Form(form)) = form else {
        return bad_form(c);
    };
    let week = form.week.as_deref();
    let outcome = match form.range() {
        Err(err) => Outcome::refused(&err),
        Ok(range) => match action {
            SlotAction::Hold => {
                match limits::check(app, Policy::Booking, &viewer.id.to_string(), true).await {
                    Err(err) => Outcome::refused(&err),
                    Ok(_) => match app.bookings.hold(viewer.actor(), id, range).await {
                        Ok(booking) => {
                            return Redirect::to(&format!("/bookings/{}", booking.id))
                                .into_response();
                        }
                        Err(err) => Outcome::failed(err),
                    },
                }
            }
            SlotAction::Wait => match app.bookings.join_waitlist(viewer.actor(), id, range).await {
                Ok(_) => {
                    return Redirect::to(&format!(
                        "/facilities/{id}?week={}&notice=waitlist",
                        super::urlencode(week.unwrap_or_default())
                    ))
                    .into_response();
                }
                Err(err) => Outcome::failed(err),
            },
        },
    };
    render_facility(app, c, id, week, outcome).await
}

// ---------------------------------------------------------------------------------------------
// A booking

/// A booking as its pages show it.
#[derive(Debug)]
pub struct BookingCard {
    pub id: Uuid,
    pub facility_id: Uuid,
    pub facility: String,
    pub club: String,
    pub when: String,
    pub week: String,
    /// `held`, `confirmed`, `cancelled` or `expired`.
    pub status: &'static str,
    pub status_label: &'static str,
    pub price: String,
    pub priced: bool,
    /// While held: the expiry (RFC 3339) the countdown runs to, and its first reading.
    pub expires_at: Option<String>,
    pub remaining: String,
    pub active: bool,
    pub upcoming: bool,
    pub policy: String,
}

fn status_words(t: &Text, status: BookingStatus) -> (&'static str, &'static str) {
    match status {
        BookingStatus::Held => ("held", t.status_held),
        BookingStatus::Confirmed => ("confirmed", t.status_confirmed),
        BookingStatus::Cancelled => ("cancelled", t.status_cancelled),
        BookingStatus::Expired => ("expired", t.status_expired),
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// "Wed 2 Dec, 18:00–19:00" in a club's time zone.
fn local_range(lang: Lang, timezone: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> String {
    let tz: chrono_tz::Tz = timezone.parse().unwrap_or(chrono_tz::UTC);
    let (start, end) = (start.with_timezone(&tz), end.with_timezone(&tz));
    format!(
        "{}, {}–{}",
        lang.day_label(start.date_naive()),
        start.format("%H:%M"),
        end.format("%H:%M")
    )
}

/// "04:59": minutes and seconds until an instant.
pub fn remaining(until: DateTime<Utc>) -> String {
    let left = (until - Utc::now()).num_seconds().max(0);
    format!("{:02}:{:02}", left / 60, left % 60)
}

fn booking_card(c: &Chrome, b: &Booking, facility: Option<&(Facility, Club)>) -> BookingCard {
    let (status, status_label) = status_words(c.t, b.status);
    let (name, club, tz, policy) = match facility {
        Some((f, club)) => (
            f.name.clone(),
            club.name.clone(),
            club.timezone.clone(),
            club.policy(),
        ),
        None => (
            String::new(),
            String::new(),
            "UTC".to_owned(),
            Default::default(),
        ),
    };
    let now = Utc::now();
    let active = matches!(b.status, BookingStatus::Held | BookingStatus::Confirmed);
    let expires = (b.status == BookingStatus::Held)
        .then_some(b.hold_expires_at)
        .flatten();
    let free_until = b.start - Duration::minutes(i64::from(policy.free_minutes));
    let policy = if b.price_cents > 0 && policy.fee_percent > 0 {
        format!(
            "{} {}; {} {} %.",
            c.t.cancel_free_until,
            local_range(c.lang, &tz, free_until, free_until)
                .rsplit_once('–')
                .map_or_else(String::new, |(a, _)| a.to_owned()),
            c.t.cancel_fee_after,
            policy.fee_percent
        )
    } else {
        String::new()
    };
    let tz_parsed: chrono_tz::Tz = tz.parse().unwrap_or(chrono_tz::UTC);
    BookingCard {
        id: b.id,
        facility_id: b.facility_id,
        facility: name,
        club,
        when: local_range(c.lang, &tz, b.start, b.end),
        week: b.start.with_timezone(&tz_parsed).date_naive().to_string(),
        status,
        status_label,
        price: if b.price_cents == 0 {
            c.t.free_of_charge.to_owned()
        } else {
            c.lang.money(b.price_cents, &b.currency)
        },
        priced: b.price_cents > 0,
        expires_at: expires.map(rfc3339),
        remaining: expires.map(remaining).unwrap_or_default(),
        active,
        upcoming: active && b.end > now,
        policy,
    }
}

/// A payment line on a booking's page.
#[derive(Debug)]
pub struct PaymentLine {
    pub status: String,
    pub provider: String,
    pub amount: String,
    pub refunded: Option<String>,
}

#[derive(Template)]
#[template(path = "booking.html")]
struct BookingPage<'a> {
    c: &'a Chrome,
    b: BookingCard,
    payments: Vec<PaymentLine>,
    done: Option<&'static str>,
    error: Option<String>,
    stripe: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

async fn render_booking(
    app: &AppState,
    c: &Chrome,
    viewer: &Viewer,
    id: Uuid,
    status: StatusCode,
    done: Option<&'static str>,
    error: Option<String>,
) -> Response {
    let booking = match app.bookings.find(viewer.actor(), id).await {
        Ok(b) => b,
        Err(err) => return error_page(c, &err.into()),
    };
    let facility = facilities::with_clubs(&app.db, &[booking.facility_id], true)
        .await
        .unwrap_or_default()
        .pop();
    let payments = app
        .bookings
        .payments_of(viewer.actor(), id)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|p| PaymentLine {
            status: format!("{:?}", p.status).to_lowercase(),
            provider: p.provider.clone(),
            amount: c.lang.money(p.amount_cents, &p.currency),
            refunded: (p.refunded_cents > 0).then(|| c.lang.money(p.refunded_cents, &p.currency)),
        })
        .collect();
    page(
        status,
        &BookingPage {
            c,
            b: booking_card(c, &booking, facility.as_ref()),
            payments,
            done,
            error,
            stripe: app.config.payments.provider == clubpulse_config::PaymentProviderKind::Stripe,
        },
    )
}

/// `GET /bookings/{id}`: a hold with its countdown and what to do next, or a booking.
pub async fn booking(
    State(app): State<AppState>,
    SignedIn { c, viewer }: SignedIn,
    Path(id): Path<String>,
    query: Result<Query<DoneQuery>, QueryRejection>,
) -> Response {
    let Ok(id) = id.parse::<Uuid>() else {
        return error_page(
            &c,
            &ApiError::not_found("booking_not_found", "no such booking"),
        );
    };
    let done = match query.ok().and_then(|q| q.0.done).as_deref() {
        Some("confirmed") => Some(c.t.done_confirmed),
        Some("cancelled") => Some(c.t.done_cancelled),
        Some("paid") => Some(c.t.done_paid),
        _ => None,
    };
    render_booking(&app, &c, &viewer, id, StatusCode::OK, done, None).await
}

async fn act(
    app: &AppState,
    c: &Chrome,
    viewer: &Viewer,
    id: Uuid,
    done: &str,
    result: Result<Booking, BookingError>,
) -> Response {
    match result {
        Ok(_) => Redirect::to(&format!("/bookings/{id}?done={done}")).into_response(),
        Err(err) => {
            let err = ApiError::from(err);
            render_booking(
                app,
                c,
                viewer,
                id,
                err.status(),
                None,
                Some(err.describe().1),
            )
            .await
        }
    }
}

/// `POST /bookings/{id}/confirm`: confirms a hold to be paid at the club.
pub async fn confirm(
    State(app): State<AppState>,
    SignedIn { c, viewer }: SignedIn,
    Path(id): Path<Uuid>,
) -> Response {
    if let Err(err) = limits::check(&app, Policy::Checkout, &viewer.id.to_string(), true).await {
        return render_booking(
            &app,
            &c,
            &viewer,
            id,
            err.status(),
            None,
            Some(err.describe().1),
        )
        .await;
    }
    let result = app.bookings.confirm(viewer.actor(), id).await;
    act(&app, &c, &viewer, id, "confirmed", result).await
}

/// `POST /bookings/{id}/cancel`.
pub async fn cancel(
    State(app): State<AppState>,
    SignedIn { c, viewer }: SignedIn,
    Path(id): Path<Uuid>,
) -> Response {
    let result = app.bookings.cancel(viewer.actor(), id).await;
    act(&app, &c, &viewer, id, "cancelled", result).await
}

/// `POST /bookings/{id}/mark-paid` (staff): records the payment taken at the desk.
pub async fn mark_paid(
    State(app): State<AppState>,
    SignedIn { c, viewer }: SignedIn,
    Path(id): Path<Uuid>,
) -> Response {
    if !viewer.is_staff() {
        return error_page(&c, &ApiError::forbidden("staff only"));
    }
    let result = app.bookings.mark_paid(viewer.actor(), id).await;
    act(&app, &c, &viewer, id, "paid", result).await
}

/// `GET /bookings/{id}/calendar.ics`: the booking as one calendar event, written by the same
/// writer and with the same event as the member's calendar feed (UTC times, so every calendar
/// places it right whatever its own zone and the DST changes).
pub async fn calendar_event(
    State(app): State<AppState>,
    SignedIn { c, viewer }: SignedIn,
    Path(id): Path<Uuid>,
) -> Response {
    let booking = match app.bookings.find(viewer.actor(), id).await {
        Ok(b) => b,
        Err(err) => return error_page(&c, &err.into()),
    };
    let entries = match crate::routes::calendar::booking_entries(&app, &[booking]).await {
        Ok(entries) => entries,
        Err(err) => return error_page(&c, &err),
    };
    let body = clubpulse_calendar::Calendar {
        events: entries
            .iter()
            .map(crate::routes::calendar::BookingEntry::event)
            .collect(),
        ..clubpulse_calendar::Calendar::default()
    }
    .to_ics();
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/calendar; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"booking.ics\""),
            ),
        ],
        body,
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// My bookings and notifications

/// A waitlist entry on the member's page.
#[derive(Debug)]
pub struct WaitCard {
    pub id: Uuid,
    pub facility_id: Uuid,
    pub facility: String,
    pub when: String,
    pub status: String,
    pub position: Option<i64>,
    pub booking_id: Option<Uuid>,
}

#[derive(Template)]
#[template(path = "my_bookings.html")]
struct MyBookings<'a> {
    c: &'a Chrome,
    upcoming: Vec<BookingCard>,
    past: Vec<BookingCard>,
    waiting: Vec<WaitCard>,
}

/// `GET /me/bookings`.
pub async fn my_bookings(
    State(app): State<AppState>,
    SignedIn { c, viewer }: SignedIn,
) -> Response {
    let mine = match app.bookings.list_mine(viewer.actor(), 200).await {
        Ok(list) => list,
        Err(err) => return error_page(&c, &err.into()),
    };
    let waiting = app
        .bookings
        .waitlist_mine(viewer.actor(), 50)
        .await
        .unwrap_or_default();
    let mut ids: Vec<Uuid> = mine
        .iter()
        .map(|b| b.facility_id)
        .chain(waiting.iter().map(|w| w.facility_id))
        .collect();
    ids.sort();
    ids.dedup();
    let named: HashMap<Uuid, (Facility, Club)> = facilities::with_clubs(&app.db, &ids, true)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(f, club)| (f.id, (f, club)))
        .collect();
    let (mut upcoming, past): (Vec<BookingCard>, Vec<BookingCard>) = mine
        .iter()
        .map(|b| booking_card(&c, b, named.get(&b.facility_id)))
        .partition(|card| card.upcoming);
    upcoming.reverse();
    let waiting = waiting
        .into_iter()
        .filter(|w| matches!(w.status.as_str(), "waiting" | "offered"))
        .map(|w| {
            let (facility, tz) = named.get(&w.facility_id).map_or_else(
                || (String::new(), "UTC".to_owned()),
                |(f, club)| (f.name.clone(), club.timezone.clone()),
            );
            WaitCard {
                id: w.id,
                facility_id: w.facility_id,
                facility,
                when: local_range(c.lang, &tz, w.start, w.end),
                status: w.status,
                position: w.position,
                booking_id: w.booking_id,
            }
        })
        .collect();
    page(
        StatusCode::OK,
        &MyBookings {
            c: &c,
            upcoming,
            past,
            waiting,
        },
    )
}

/// `POST /me/waitlist/{id}/leave`.
pub async fn leave_waitlist(
    State(app): State<AppState>,
    SignedIn { c, viewer }: SignedIn,
    Path(id): Path<Uuid>,
) -> Response {
    match app.bookings.leave_waitlist(viewer.actor(), id).await {
        Ok(()) => Redirect::to("/me/bookings").into_response(),
        Err(err) => error_page(&c, &err.into()),
    }
}

/// A notification on its page.
#[derive(Debug)]
pub struct NotificationCard {
    pub id: Uuid,
    pub title: String,
    pub body: String,
    pub at: String,
    pub at_label: String,
    pub unread: bool,
    pub booking_id: Option<String>,
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct Notifications<'a> {
    c: &'a Chrome,
    items: Vec<NotificationCard>,
}

/// `GET /me/notifications`.
pub async fn notifications(
    State(app): State<AppState>,
    SignedIn { c, viewer }: SignedIn,
) -> Response {
    let list = match app.bookings.notifications(viewer.actor(), false, 100).await {
        Ok(list) => list,
        Err(err) => return error_page(&c, &err.into()),
    };
    let items = list
        .into_iter()
        .map(|n| NotificationCard {
            id: n.id,
            at: rfc3339(n.created_at),
            at_label: n.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            unread: n.read_at.is_none(),
            booking_id: n
                .data
                .get("booking_id")
                .and_then(|v| v.as_str())
                .and_then(|s| s.parse::<Uuid>().ok())
                .map(|id| id.to_string()),
            title: n.title,
            body: n.body,
        })
        .collect();
    page(StatusCode::OK, &Notifications { c: &c, items })
}

/// `POST /me/notifications/{id}/read`.
pub async fn read_notification(
    State(app): State<AppState>,
    SignedIn { c, viewer }: SignedIn,
    Path(id): Path<Uuid>,
) -> Response {
    match app
        .bookings
        .mark_notification_read(viewer.actor(), id)
        .await
    {
        Ok(()) => Redirect::to("/me/notifications").into_response(),
        Err(err) => error_page(&c, &err.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_the_day_are_local_hours() {
        assert_eq!(part_of_day("evening"), Some((18, 23)));
        assert_eq!(part_of_day("whenever"), None);
    }
}
