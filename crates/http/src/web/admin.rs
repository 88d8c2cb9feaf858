//! The manager's dashboard: the figures of `GET /api/v1/admin/stats` (the same function), drawn.

use askama::Template;
use axum::{
    extract::{Query, State, rejection::QueryRejection},
    http::StatusCode,
    response::Response,
};
use chrono::{Days, NaiveDate, Weekday};
use clubpulse_storage::{
    clubs::{self, Club},
    facilities::{self, Filter},
    stats::{self, Stats},
};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    Chrome, SignedIn,
    charts::{self, HeatCell},
    error_page, page,
};
use crate::{ApiError, AppState, routes::stats::StatsParams};

#[derive(Debug, Default, Deserialize)]
pub struct DashboardQuery {
    from: Option<String>,
    /// The last day shown, inclusive (the API's `to` is the day after).
    to: Option<String>,
    club_id: Option<String>,
}

/// A figure with its label.
#[derive(Debug)]
pub struct Kpi {
    pub label: &'static str,
    pub value: String,
    pub key: &'static str,
}

/// A row of a plain table.
#[derive(Debug)]
pub struct Row {
    pub cells: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct Dashboard<'a> {
    c: &'a Chrome,
    clubs: Vec<Club>,
    club_id: Option<Uuid>,
    from: String,
    to: String,
    error: Option<String>,
    kpis: Vec<Kpi>,
    heatmap: String,
    occupancy_rows: Vec<Row>,
    utilisation: String,
    utilisation_rows: Vec<Row>,
    peaks: Vec<String>,
    revenue: Vec<Row>,
    conflicts: Vec<Row>,
    searches: Vec<Row>,
    empty_searches: i64,
    waitlist: Vec<Row>,
    /// The facilities whose live events the activity feed shows, as JSON `[{id, name}]`.
    watched: String,
}

impl Dashboard<'_> {
    fn selected(&self, id: &Uuid) -> bool {
        self.club_id == Some(*id)
    }
}

const WEEKDAYS: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "–".to_owned(), |r| format!("{:.0} %", r * 100.0))
}

/// `GET /admin` (staff).
pub async fn dashboard(
    State(app): State<AppState>,
    SignedIn { c, viewer }: SignedIn,
    query: Result<Query<DashboardQuery>, QueryRejection>,
) -> Response {
    if !viewer.is_staff() {
        return error_page(&c, &ApiError::forbidden("the dashboard is for club staff"));
    }
    let query = query.map(|q| q.0).unwrap_or_default();
    let db = app.bookings.reader(Some(viewer.id)).await;
    let clubs = match clubs::list(&db).await {
        Ok(list) => list,
        Err(err) => return error_page(&c, &err.into()),
    };
    let club_id = query
        .club_id
        .as_deref()
        .filter(|id| !id.is_empty())
        .and_then(|id| id.parse::<Uuid>().ok())
        .filter(|id| clubs.iter().any(|c| c.id == *id));
    let nonempty = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    // The form's "to" is the last day shown; the API's is the day after it.
    let to_exclusive = nonempty(&query.to).map(|to| {
        NaiveDate::parse_from_str(&to, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.checked_add_days(Days::new(1)))
            .map_or(to, |d| d.to_string())
    });
    let params = StatsParams {
        from: nonempty(&query.from),
        to: to_exclusive,
        club_id,
    };
    let facilities = facilities::list(
        &db,
        &Filter {
            club_id,
            limit: 500,
            ..Filter::default()
        },
    )
    .await
    .unwrap_or_default();
    // The socket's own `user` channel counts against the subscription cap.
    let watched: Vec<serde_json::Value> = facilities
        .iter()
        .take(app.config.realtime.max_subscriptions.saturating_sub(1))
        .map(|f| serde_json::json!({"id": f.id, "name": f.name}))
        .collect();
    let mut view = Dashboard {
        c: &c,
        clubs,
        club_id,
        from: params.from.clone().unwrap_or_default(),
        to: nonempty(&query.to).unwrap_or_default(),
        error: None,
        kpis: Vec::new(),
        heatmap: String::new(),
        occupancy_rows: Vec::new(),
        utilisation: String::new(),
        utilisation_rows: Vec::new(),
        peaks: Vec::new(),
        revenue: Vec::new(),
        conflicts: Vec::new(),
        searches: Vec::new(),
        empty_searches: 0,
        waitlist: Vec::new(),
        watched: serde_json::Value::Array(watched).to_string(),
    };
    let asked = match crate::routes::stats::parse(&params) {
        Ok(asked) => asked,
        Err(err) => {
            view.error = Some(err.describe().1);
            return page(err.status(), &view);
        }
    };
    let figures = match stats::dashboard(&db, &asked).await {
        Ok(Some(figures)) => figures,
        Ok(None) => {
            return error_page(&c, &ApiError::not_found("club_not_found", "no such club"));
        }
        Err(err) => return error_page(&c, &err.into()),
    };
    view.from = asked.from().to_string();
    view.to = asked.to().pred_opt().unwrap_or(asked.to()).to_string();
    fill(&mut view, &figures);
    page(StatusCode::OK, &view)
}

fn fill(view: &mut Dashboard<'_>, s: &Stats) {
    let t = view.c.t;
    let lang = view.c.lang;
    let b = &s.bookings;
    view.kpis = vec![
        Kpi {
            label: t.confirmed,
            value: b.confirmed.to_string(),
            key: "confirmed",
        },
        Kpi {
            label: t.cancellations,
            value: format!(
                "{} ({} {})",
                b.cancelled, b.late_cancellations, t.late_cancellations
            ),
            key: "cancelled",
        },
        Kpi {
            label: t.expired_holds,
            value: b.expired_holds.to_string(),
            key: "expired_holds",
        },
        Kpi {
            label: t.held_now,
            value: b.held_now.to_string(),
            key: "held_now",
        },
        Kpi {
            label: t.conflicts,
            value: s.unmet_demand.conflicts_total.to_string(),
            key: "conflicts",
        },
        Kpi {
            label: t.waitlist_depth,
            value: s.unmet_demand.waiting_total.to_string(),
            key: "waiting",
        },
    ];
    let weekdays: [&str; 7] = WEEKDAYS.map(|d| lang.weekday(d));
    let open: Vec<HeatCell> = s
        .occupancy
        .iter()
        .filter(|cell| cell.open_minutes > 0)
        .map(|cell| HeatCell {
            weekday: usize::from(cell.weekday.saturating_sub(1)),
            hour: usize::from(cell.hour),
            rate: cell.rate.unwrap_or(0.0),
        })
        .collect();
    view.heatmap = charts::heatmap(&open, &weekdays, t.occupancy);
    view.occupancy_rows = s
        .occupancy
        .iter()
        .filter(|cell| cell.open_minutes > 0)
        .map(|cell| Row {
            cells: vec![
                weekdays[usize::from(cell.weekday.saturating_sub(1)) % 7].to_owned(),
                format!("{:02}:00", cell.hour),
                cell.booked_minutes.to_string(),
                cell.open_minutes.to_string(),
                percent(cell.rate),
            ],
        })
        .collect();
    let days: Vec<(String, f64)> = s
        .utilisation
        .iter()
        .map(|d| (d.date.to_string(), d.rate.unwrap_or(0.0)))
        .collect();
    view.utilisation = charts::bars(&days, t.utilisation);
    view.utilisation_rows = s
        .utilisation
        .iter()
        .map(|d| Row {
            cells: vec![
                lang.day_label(d.date),
                d.booked_minutes.to_string(),
                d.open_minutes.to_string(),
                percent(d.rate),
            ],
        })
        .collect();
    view.peaks = s
        .peak_hours
        .iter()
        .map(|p| {
            format!(
                "{} {:02}:00 · {} · {} min",
                weekdays[usize::from(p.weekday.saturating_sub(1)) % 7],
                p.hour,
                percent(p.rate),
                p.booked_minutes
            )
        })
        .collect();
    view.revenue = s
        .revenue
        .iter()
        .map(|r| Row {
            cells: vec![
                r.currency.clone(),
                lang.money(r.paid_cents, &r.currency),
                lang.money(r.refunded_cents, &r.currency),
                lang.money(r.net_cents, &r.currency),
                lang.money(r.cancellation_fees_cents, &r.currency),
            ],
        })
        .collect();
    view.conflicts = s
        .unmet_demand
        .conflicts
        .iter()
        .map(|c| Row {
            cells: vec![
                c.facility_name.clone(),
                format!("{:02}:00", c.hour),
                c.count.to_string(),
            ],
        })
        .collect();
    view.empty_searches = s.unmet_demand.searches_without_results.count;
    view.searches = s
        .unmet_demand
        .searches_without_results
        .top
        .iter()
        .map(|q| Row {
            cells: vec![q.query.clone(), q.count.to_string()],
        })
        .collect();
    view.waitlist = s
        .unmet_demand
        .waitlist
        .iter()
        .map(|w| Row {
            cells: vec![
                w.facility_name.clone(),
                w.waiting.to_string(),
                w.joined.to_string(),
            ],
        })
        .collect();
}
