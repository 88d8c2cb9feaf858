//! The pages' words in English and Spanish, chosen from the `lang` cookie (set by the switch in
//! every page's header) or else from `Accept-Language`.
//!
//! Every string a page shows is a field of [`Text`], so a missing translation is a compile error,
//! not a blank on a member's phone.

use axum::http::{HeaderMap, header};
use chrono::{Datelike, NaiveDate, Weekday};

/// The cookie that remembers a visitor's choice of language.
pub const LANG_COOKIE: &str = "clubpulse_lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Es,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Es => "es",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        match code.get(..2).map(str::to_ascii_lowercase).as_deref() {
            Some("en") => Some(Self::En),
            Some("es") => Some(Self::Es),
            _ => None,
        }
    }

    /// The other language, offered by the switch.
    pub fn other(self) -> Self {
        match self {
            Self::En => Self::Es,
            Self::Es => Self::En,
        }
    }

    /// The cookie's choice, else the first of the browser's languages we speak (by `q`), else
    /// English.
    pub fn negotiate(headers: &HeaderMap) -> Self {
        if let Some(chosen) = super::cookie(headers, LANG_COOKIE).and_then(Self::parse) {
            return chosen;
        }
        let Some(accept) = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
        else {
            return Self::En;
        };
        let mut best: Option<(f32, Self)> = None;
        for part in accept.split(',') {
            let mut pieces = part.trim().split(';');
            let tag = pieces.next().unwrap_or_default().trim();
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            if let Some(lang) = Self::parse(tag)
                && best.is_none_or(|(bq, _)| q > bq)
            {
                best = Some((q, lang));
            }
        }
        best.map_or(Self::En, |(_, lang)| lang)
    }

    pub fn text(self) -> &'static Text {
        match self {
            Self::En => &EN,
            Self::Es => &ES,
        }
    }

    /// "Wed 2 Dec" / "mié 2 dic".
    pub fn day_label(self, date: NaiveDate) -> String {
        let t = self.text();
        let weekday = t.weekdays[date.weekday().num_days_from_monday() as usize];
        let month = t.months[date.month0() as usize];
        format!("{weekday} {} {month}", date.day())
    }

    /// A weekday's short name.
    pub fn weekday(self, day: Weekday) -> &'static str {
        self.text().weekdays[day.num_days_from_monday() as usize]
    }

    /// An amount in a currency's minor unit: "12.50 EUR" / "12,50 EUR".
    pub fn money(self, cents: i64, currency: &str) -> String {
        let sign = if cents < 0 { "-" } else { "" };
        let cents = cents.unsigned_abs();
        let separator = match self {
            Self::En => '.',
            Self::Es => ',',
        };
        format!(
            "{sign}{}{separator}{:02} {currency}",
            cents / 100,
            cents % 100
        )
    }
}

/// Every word the pages show, in one language.
#[derive(Debug)]
pub struct Text {
    pub brand_tagline: &'static str,
    pub nav_search: &'static str,
    pub nav_bookings: &'static str,
    pub nav_notifications: &'static str,
    pub nav_admin: &'static str,
    pub sign_in: &'static str,
    pub sign_out: &'static str,
    pub register: &'static str,
    pub switch_to: &'static str,
    pub skip_to_content: &'static str,
    pub live_connected: &'static str,
    pub live_offline: &'static str,
    pub all_notifications: &'static str,
    pub close: &'static str,

    pub search_title: &'static str,
    pub search_label: &'static str,
    pub search_placeholder: &'static str,
    pub search_button: &'static str,
    pub search_hint: &'static str,
    pub filter_sport: &'static str,
    pub filter_any_sport: &'static str,
    pub filter_when: &'static str,
    pub filter_any_time: &'static str,
    pub filter_morning: &'static str,
    pub filter_afternoon: &'static str,
    pub filter_evening: &'static str,
    pub filter_day: &'static str,
    pub results_for: &'static str,
    pub no_results: &'static str,
    pub all_facilities: &'static str,
    pub matched_words: &'static str,
    pub matched_all_words: &'static str,
    pub matched_meaning: &'static str,
    pub search_unavailable: &'static str,
    pub per_slot: &'static str,
    pub free_of_charge: &'static str,
    pub see_week: &'static str,

    pub week_of: &'static str,
    pub previous_week: &'static str,
    pub next_week: &'static str,
    pub this_week: &'static str,
    pub times_in: &'static str,
    pub state_free: &'static str,
    pub state_held: &'static str,
    pub state_booked: &'static str,
    pub state_closed: &'static str,
    pub action_hold: &'static str,
    pub action_wait: &'static str,
    pub closed_all_day: &'static str,
    pub legend: &'static str,
    pub sign_in_to_book: &'static str,
    pub slot_taken: &'static str,
    pub alternatives: &'static str,
    pub no_alternatives: &'static str,
    pub waitlist_joined: &'static str,
    pub grid_help: &'static str,

    pub booking_title: &'static str,
    pub hold_expires_in: &'static str,
    pub hold_expired: &'static str,
    pub pay_on_site: &'static str,
    pub pay_on_site_help: &'static str,
    pub pay_by_card: &'static str,
    pub card_help: &'static str,
    pub mark_paid: &'static str,
    pub cancel: &'static str,
    pub cancel_free_until: &'static str,
    pub cancel_fee_after: &'static str,
    pub status_held: &'static str,
    pub status_confirmed: &'static str,
    pub status_cancelled: &'static str,
    pub status_expired: &'static str,
    pub price: &'static str,
    pub when: &'static str,
    pub facility: &'static str,
    pub status: &'static str,
    pub payments: &'static str,
    pub add_to_calendar: &'static str,
    pub back_to_week: &'static str,
    pub done_cancelled: &'static str,
    pub done_confirmed: &'static str,
    pub done_paid: &'static str,

    pub my_bookings_title: &'static str,
    pub upcoming: &'static str,
    pub past: &'static str,
    pub nothing_upcoming: &'static str,
    pub nothing_past: &'static str,
    pub my_waitlist: &'static str,
    pub leave_waitlist: &'static str,
    pub waiting_position: &'static str,
    pub open: &'static str,

    pub notifications_title: &'static str,
    pub no_notifications: &'static str,
    pub mark_read: &'static str,
    pub unread: &'static str,

    pub login_title: &'static str,
    pub register_title: &'static str,
    pub email: &'static str,
    pub password: &'static str,
    pub password_help: &'static str,
    pub name: &'static str,
    pub no_account: &'static str,
    pub have_account: &'static str,
    pub wrong_credentials: &'static str,
    pub demo_accounts: &'static str,

    pub admin_title: &'static str,
    pub range_from: &'static str,
    pub range_to: &'static str,
    pub club: &'static str,
    pub all_clubs: &'static str,
    pub show: &'static str,
    pub occupancy: &'static str,
    pub occupancy_help: &'static str,
    pub utilisation: &'static str,
    pub peak_hours: &'static str,
    pub revenue: &'static str,
    pub paid: &'static str,
    pub refunded: &'static str,
    pub net: &'static str,
    pub cancellations: &'static str,
    pub late_cancellations: &'static str,
    pub confirmed: &'static str,
    pub expired_holds: &'static str,
    pub held_now: &'static str,
    pub unmet_demand: &'static str,
    pub conflicts: &'static str,
    pub searches_without_results: &'static str,
    pub waitlist_depth: &'static str,
    pub waiting_now: &'static str,
    pub joined: &'static str,
    pub activity: &'static str,
    pub activity_empty: &'static str,
    pub hour: &'static str,
    pub day: &'static str,
    pub count: &'static str,
    pub query: &'static str,
    pub nothing_yet: &'static str,

    pub error_title: &'static str,
    pub not_found: &'static str,
    pub go_home: &'static str,
    pub try_again: &'static str,
    pub forbidden: &'static str,

    pub weekdays: [&'static str; 7],
    pub months: [&'static str; 12],
}

pub static EN: Text = Text {
    brand_tagline: "Book your club's courts, pools and classes",
    nav_search: "Search",
    nav_bookings: "My bookings",
    nav_notifications: "Notifications",
    nav_admin: "Dashboard",
    sign_in: "Sign in",
    sign_out: "Sign out",
    register: "Create an account",
    switch_to: "Español",
    skip_to_content: "Skip to content",
    live_connected: "Live updates on",
    live_offline: "Live updates paused: reconnecting",
    all_notifications: "All notifications",
    close: "Close",

    search_title: "Find a place to play",
    search_label: "What are you looking for?",
    search_placeholder: "e.g. lit tennis court, pádel techado, indoor pool",
    search_button: "Search",
    search_hint: "Describe it in your own words, in English or Spanish.",
    filter_sport: "Sport",
    filter_any_sport: "Any sport",
    filter_when: "Free",
    filter_any_time: "Any time",
    filter_morning: "Morning (7–12)",
    filter_afternoon: "Afternoon (12–18)",
    filter_evening: "Evening (18–23)",
    filter_day: "On",
    results_for: "Results for",
    no_results: "Nothing matched. Try fewer or different words, or another sport or time.",
    all_facilities: "All facilities",
    matched_words: "Matched words",
    matched_all_words: "every word matched",
    matched_meaning: "similar in meaning",
    search_unavailable: "Search is turned off on this server; here is every facility instead.",
    per_slot: "per slot",
    free_of_charge: "Free of charge",
    see_week: "See the week",

    week_of: "Week of",
    previous_week: "Previous week",
    next_week: "Next week",
    this_week: "This week",
    times_in: "Times are in the club's time zone",
    state_free: "Free",
    state_held: "Held",
    state_booked: "Booked",
    state_closed: "Closed",
    action_hold: "hold it",
    action_wait: "join the waitlist",
    closed_all_day: "Closed all day",
    legend: "Free slots can be held; for a held or booked one you can join the waitlist.",
    sign_in_to_book: "Sign in to hold a slot or join a waitlist.",
    slot_taken: "Someone took that slot a moment ago.",
    alternatives: "These are free right now:",
    no_alternatives: "Nothing similar is free nearby; join the waitlist or pick another day.",
    waitlist_joined: "You are on the waitlist. If the slot frees, it is held for you and you are told at once.",
    grid_help: "Choose a free slot to hold it while you pay.",

    booking_title: "Your booking",
    hold_expires_in: "Held for you for",
    hold_expired: "The hold ran out: the slot is free for anyone again.",
    pay_on_site: "Confirm, pay at the club",
    pay_on_site_help: "Your booking is confirmed now; pay at the desk when you arrive.",
    pay_by_card: "Pay by card",
    card_help: "Card payments are taken by the club's payment provider.",
    mark_paid: "Mark paid at the desk",
    cancel: "Cancel",
    cancel_free_until: "Free cancellation until",
    cancel_fee_after: "after that the fee is",
    status_held: "Held, waiting for payment",
    status_confirmed: "Confirmed",
    status_cancelled: "Cancelled",
    status_expired: "Expired",
    price: "Price",
    when: "When",
    facility: "Facility",
    status: "Status",
    payments: "Payments",
    add_to_calendar: "Add to calendar",
    back_to_week: "Back to the week",
    done_cancelled: "Cancelled. The slot is free for others.",
    done_confirmed: "Confirmed. See you there!",
    done_paid: "Payment recorded and booking confirmed.",

    my_bookings_title: "My bookings",
    upcoming: "Upcoming",
    past: "Past and cancelled",
    nothing_upcoming: "No upcoming bookings. Search for a place to play.",
    nothing_past: "Nothing here yet.",
    my_waitlist: "Waiting for",
    leave_waitlist: "Leave the waitlist",
    waiting_position: "position",
    open: "Open",

    notifications_title: "Notifications",
    no_notifications: "No notifications yet.",
    mark_read: "Mark read",
    unread: "unread",

    login_title: "Sign in",
    register_title: "Create an account",
    email: "E-mail",
    password: "Password",
    password_help: "At least 8 characters.",
    name: "Your name",
    no_account: "New here?",
    have_account: "Already have an account?",
    wrong_credentials: "Wrong e-mail or password. Check both and try again.",
    demo_accounts: "Demo accounts",

    admin_title: "Club dashboard",
    range_from: "From",
    range_to: "To",
    club: "Club",
    all_clubs: "All clubs",
    show: "Show",
    occupancy: "Occupancy by weekday and hour",
    occupancy_help: "Share of open time booked, in the club's local time. Darker is busier; each cell shows its percentage.",
    utilisation: "Utilisation per day",
    peak_hours: "Peak hours",
    revenue: "Revenue",
    paid: "Paid",
    refunded: "Refunded",
    net: "Net",
    cancellations: "Cancellations",
    late_cancellations: "late",
    confirmed: "Confirmed bookings",
    expired_holds: "Expired holds",
    held_now: "Held right now",
    unmet_demand: "Unmet demand",
    conflicts: "Slots asked for but taken",
    searches_without_results: "Searches with no result",
    waitlist_depth: "Waiting lists",
    waiting_now: "Waiting now",
    joined: "Joined in the range",
    activity: "Live activity",
    activity_empty: "Holds, bookings and releases appear here as they happen.",
    hour: "Hour",
    day: "Day",
    count: "Count",
    query: "Query",
    nothing_yet: "None in this range.",

    error_title: "Something went wrong",
    not_found: "There is no such page.",
    go_home: "Go to the search",
    try_again: "Try again in a moment.",
    forbidden: "This page is for club staff.",

    weekdays: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    months: [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ],
};

pub static ES: Text = Text {
    brand_tagline: "Reserva pistas, piscinas y clases de tu club",
    nav_search: "Buscar",
    nav_bookings: "Mis reservas",
    nav_notifications: "Avisos",
    nav_admin: "Panel",
    sign_in: "Entrar",
    sign_out: "Salir",
    register: "Crear una cuenta",
    switch_to: "English",
    skip_to_content: "Saltar al contenido",
    live_connected: "Actualización en directo",
    live_offline: "Directo en pausa: reconectando",
    all_notifications: "Todos los avisos",
    close: "Cerrar",

    search_title: "Encuentra dónde jugar",
    search_label: "¿Qué buscas?",
    search_placeholder: "p. ej. tenis noche, pádel techado, piscina cubierta",
    search_button: "Buscar",
    search_hint: "Descríbelo con tus palabras, en español o en inglés.",
    filter_sport: "Deporte",
    filter_any_sport: "Cualquier deporte",
    filter_when: "Libre",
    filter_any_time: "A cualquier hora",
    filter_morning: "Mañana (7–12)",
    filter_afternoon: "Tarde (12–18)",
    filter_evening: "Noche (18–23)",
    filter_day: "El día",
    results_for: "Resultados para",
    no_results: "No hay coincidencias. Prueba con menos palabras u otras, u otro deporte u hora.",
    all_facilities: "Todas las instalaciones",
    matched_words: "Palabras encontradas",
    matched_all_words: "coinciden todas las palabras",
    matched_meaning: "de significado parecido",
    search_unavailable: "La búsqueda está desactivada en este servidor; aquí están todas las instalaciones.",
    per_slot: "por turno",
    free_of_charge: "Gratis",
    see_week: "Ver la semana",

    week_of: "Semana del",
    previous_week: "Semana anterior",
    next_week: "Semana siguiente",
    this_week: "Esta semana",
    times_in: "Horas en la zona horaria del club",
    state_free: "Libre",
    state_held: "Retenido",
    state_booked: "Reservado",
    state_closed: "Cerrado",
    action_hold: "reservar",
    action_wait: "apuntarse a la lista de espera",
    closed_all_day: "Cerrado todo el día",
    legend: "Los turnos libres se pueden retener; en uno retenido o reservado puedes apuntarte a la lista de espera.",
    sign_in_to_book: "Entra para retener un turno o apuntarte a una lista de espera.",
    slot_taken: "Alguien acaba de coger ese turno.",
    alternatives: "Estos están libres ahora mismo:",
    no_alternatives: "No hay nada parecido libre cerca; apúntate a la lista de espera o elige otro día.",
    waitlist_joined: "Estás en la lista de espera. Si el turno se libera, se retiene para ti y te avisamos al momento.",
    grid_help: "Elige un turno libre para retenerlo mientras pagas.",

    booking_title: "Tu reserva",
    hold_expires_in: "Retenido para ti durante",
    hold_expired: "La retención caducó: el turno vuelve a estar libre para todos.",
    pay_on_site: "Confirmar y pagar en el club",
    pay_on_site_help: "Tu reserva queda confirmada; paga en recepción al llegar.",
    pay_by_card: "Pagar con tarjeta",
    card_help: "Los pagos con tarjeta los cobra el proveedor de pagos del club.",
    mark_paid: "Marcar pagado en recepción",
    cancel: "Cancelar",
    cancel_free_until: "Cancelación gratuita hasta",
    cancel_fee_after: "después, la penalización es",
    status_held: "Retenida, pendiente de pago",
    status_confirmed: "Confirmada",
    status_cancelled: "Cancelada",
    status_expired: "Caducada",
    price: "Precio",
    when: "Cuándo",
    facility: "Instalación",
    status: "Estado",
    payments: "Pagos",
    add_to_calendar: "Añadir al calendario",
    back_to_week: "Volver a la semana",
    done_cancelled: "Cancelada. El turno queda libre para otros.",
    done_confirmed: "Confirmada. ¡Nos vemos allí!",
    done_paid: "Pago registrado y reserva confirmada.",

    my_bookings_title: "Mis reservas",
    upcoming: "Próximas",
    past: "Pasadas y canceladas",
    nothing_upcoming: "No tienes reservas próximas. Busca dónde jugar.",
    nothing_past: "Nada por aquí todavía.",
    my_waitlist: "En espera de",
    leave_waitlist: "Salir de la lista de espera",
    waiting_position: "puesto",
    open: "Abrir",

    notifications_title: "Avisos",
    no_notifications: "Todavía no hay avisos.",
    mark_read: "Marcar como leído",
    unread: "sin leer",

    login_title: "Entrar",
    register_title: "Crear una cuenta",
    email: "Correo electrónico",
    password: "Contraseña",
    password_help: "Al menos 8 caracteres.",
    name: "Tu nombre",
    no_account: "¿Eres nuevo?",
    have_account: "¿Ya tienes cuenta?",
    wrong_credentials: "Correo o contraseña incorrectos. Revisa ambos y vuelve a intentarlo.",
    demo_accounts: "Cuentas de demostración",

    admin_title: "Panel del club",
    range_from: "Desde",
    range_to: "Hasta",
    club: "Club",
    all_clubs: "Todos los clubes",
    show: "Mostrar",
    occupancy: "Ocupación por día de la semana y hora",
    occupancy_help: "Parte del horario abierto que está reservada, en hora local del club. Más oscuro es más lleno; cada celda muestra su porcentaje.",
    utilisation: "Uso por día",
    peak_hours: "Horas punta",
    revenue: "Ingresos",
    paid: "Cobrado",
    refunded: "Devuelto",
    net: "Neto",
    cancellations: "Cancelaciones",
    late_cancellations: "tardías",
    confirmed: "Reservas confirmadas",
    expired_holds: "Retenciones caducadas",
    held_now: "Retenidas ahora",
    unmet_demand: "Demanda no atendida",
    conflicts: "Turnos pedidos pero ocupados",
    searches_without_results: "Búsquedas sin resultados",
    waitlist_depth: "Listas de espera",
    waiting_now: "En espera ahora",
    joined: "Apuntados en el periodo",
    activity: "Actividad en directo",
    activity_empty: "Las retenciones, reservas y liberaciones aparecen aquí al momento.",
    hour: "Hora",
    day: "Día",
    count: "Veces",
    query: "Búsqueda",
    nothing_yet: "Nada en este periodo.",

    error_title: "Algo ha fallado",
    not_found: "Esa página no existe.",
    go_home: "Ir a la búsqueda",
    try_again: "Vuelve a intentarlo en un momento.",
    forbidden: "Esta página es para el personal del club.",

    weekdays: ["lun", "mar", "mié", "jue", "vie", "sáb", "dom"],
    months: [
        "ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sep", "oct", "nov", "dic",
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_str(value).unwrap(),
        );
        headers
    }

    #[test]
    fn the_browser_language_with_the_highest_weight_wins() {
        assert_eq!(
            Lang::negotiate(&accept("es-ES,es;q=0.9,en;q=0.8")),
            Lang::Es
        );
        assert_eq!(
            Lang::negotiate(&accept("fr-FR, en;q=0.5, es;q=0.7")),
            Lang::Es
        );
        assert_eq!(Lang::negotiate(&accept("de-DE")), Lang::En);
        assert_eq!(Lang::negotiate(&HeaderMap::new()), Lang::En);
    }

    #[test]
    fn the_cookie_overrides_the_browser() {
        let mut headers = accept("es");
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; clubpulse_lang=en"),
        );
        assert_eq!(Lang::negotiate(&headers), Lang::En);
    }

    #[test]
    fn money_uses_each_language_s_decimal_separator() {
        assert_eq!(Lang::En.money(1250, "EUR"), "12.50 EUR");
        assert_eq!(Lang::Es.money(1205, "EUR"), "12,05 EUR");
        assert_eq!(Lang::Es.money(-5, "USD"), "-0,05 USD");
    }

    #[test]
    fn days_are_named_in_the_language() {
        let date = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
        assert_eq!(Lang::En.day_label(date), "Wed 2 Dec");
        assert_eq!(Lang::Es.day_label(date), "mié 2 dic");
    }
}
