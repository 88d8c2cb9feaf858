//! Demo data for `clubpulse seed --demo`: three clubs in different time zones
//! and about fifty facilities, plus a handful of demo users.
//!
//! The clubs live in Madrid (EUR), Buenos Aires (ARS) and New York (USD), so
//! two of them observe daylight saving time and one does not. Facility
//! descriptions are deliberately a mix of Spanish and English prose, and the
//! `specifications` objects share one vocabulary of keys (`covered`, `indoor`,
//! `lighting`, `surface`, `heated`, `capacity`, `length_m`, `lanes`,
//! `amenities`), so that natural-language search ("canchas para jugar bajo la
//! lluvia", "tenis noche", "indoor pool", "pádel techado", "cancha de fútbol 5
//! con césped sintético") has realistic material to work with.
//!
//! This module is pure data: it performs no I/O and never panics.

use serde_json::{Map, Value, json};

/// A demo club: display name, IANA time zone and ISO 4217 currency code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoClub {
    /// Display name of the club.
    pub name: &'static str,
    /// IANA time zone identifier, e.g. `Europe/Madrid`.
    pub timezone: &'static str,
    /// ISO 4217 currency code used for facility prices.
    pub currency: &'static str,
}

/// A bookable demo facility belonging to one of [`CLUBS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoFacility {
    /// Index into [`CLUBS`].
    pub club: usize,
    /// Facility name, unique within its club.
    pub name: String,
    /// Lower-case sport slug, e.g. `tennis`, `padel`, `football-5`.
    pub sport: &'static str,
    /// One to three sentences of free text, in Spanish, English or both.
    pub description: String,
    /// JSON object with facility characteristics (`covered`, `lighting`,
    /// `surface`, `amenities`, ...).
    pub specifications: Value,
    /// Length of one bookable slot in minutes.
    pub slot_minutes: i64,
    /// Buffer between consecutive slots in minutes.
    pub buffer_minutes: i64,
    /// Price per slot in the minor unit of the club currency.
    pub price_cents: i64,
    /// Weekly opening hours as `{"mon": [["07:00","23:00"]], ...}`; `None`
    /// means the default of 07:00-23:00 every day.
    pub opening_hours: Option<Value>,
}

/// A demo user account created by the seeder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoUser {
    /// Login e-mail address.
    pub email: &'static str,
    /// Display name.
    pub name: &'static str,
    /// Plain-text demo password (at least 8 characters).
    pub password: &'static str,
    /// Role: `"admin"`, `"staff"` or `"member"`.
    pub role: &'static str,
}

/// Index of "Club Deportivo Retiro" in [`CLUBS`].
const RETIRO: usize = 0;
/// Index of "Club Atlético Palermo" in [`CLUBS`].
const PALERMO: usize = 1;
/// Index of "Brooklyn Racquet & Swim Club" in [`CLUBS`].
const BROOKLYN: usize = 2;

/// The three demo clubs. Madrid and New York observe DST; Buenos Aires does not.
pub const CLUBS: [DemoClub; 3] = [
    DemoClub {
        name: "Club Deportivo Retiro",
        timezone: "Europe/Madrid",
        currency: "EUR",
    },
    DemoClub {
        name: "Club Atlético Palermo",
        timezone: "America/Argentina/Buenos_Aires",
        currency: "ARS",
    },
    DemoClub {
        name: "Brooklyn Racquet & Swim Club",
        timezone: "America/New_York",
        currency: "USD",
    },
];

/// Demo users: one admin, one staff member and four members.
pub const USERS: &[DemoUser] = &[
    DemoUser {
        email: "admin@clubpulse.test",
        name: "Club Pulse Admin",
        password: "admin-demo-2026",
        role: "admin",
    },
    DemoUser {
        email: "staff@clubpulse.test",
        name: "Marta Staff",
        password: "staff-demo-2026",
        role: "staff",
    },
    DemoUser {
        email: "ana@clubpulse.test",
        name: "Ana García",
        password: "member-demo-2026",
        role: "member",
    },
    DemoUser {
        email: "bruno@clubpulse.test",
        name: "Bruno Silva",
        password: "member-demo-2026",
        role: "member",
    },
    DemoUser {
        email: "chloe@clubpulse.test",
        name: "Chloe Smith",
        password: "member-demo-2026",
        role: "member",
    },
    DemoUser {
        email: "diego@clubpulse.test",
        name: "Diego Fernández",
        password: "member-demo-2026",
        role: "member",
    },
];

/// Day keys used in opening-hours objects, Monday first.
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Creates a facility with a 60-minute slot, no buffer, free of charge and
/// default opening hours; refine it with [`DemoFacility::booking`] and
/// [`DemoFacility::open`].
fn f(
    club: usize,
    name: &str,
    sport: &'static str,
    description: &str,
    specifications: Value,
) -> DemoFacility {
    DemoFacility {
        club,
        name: name.to_owned(),
        sport,
        description: description.to_owned(),
        specifications,
        slot_minutes: 60,
        buffer_minutes: 0,
        price_cents: 0,
        opening_hours: None,
    }
}

impl DemoFacility {
    /// Sets slot length, buffer (both in minutes) and price per slot.
    fn booking(mut self, slot_minutes: i64, buffer_minutes: i64, price_cents: i64) -> Self {
        self.slot_minutes = slot_minutes;
        self.buffer_minutes = buffer_minutes;
        self.price_cents = price_cents;
        self
    }

    /// Sets custom weekly opening hours.
    fn open(mut self, opening_hours: Value) -> Self {
        self.opening_hours = Some(opening_hours);
        self
    }
}

/// Builds an opening-hours object from one interval list per day, Monday first.
/// An empty list means closed all day.
fn week(days: [&[[&str; 2]]; 7]) -> Value {
    let mut map = Map::new();
    for (day, intervals) in DAYS.iter().zip(days) {
        let list = intervals
            .iter()
            .map(|[open, close]| json!([open, close]))
            .collect();
        map.insert((*day).to_owned(), Value::Array(list));
    }
    Value::Object(map)
}

/// Builds an opening-hours object with one schedule for Monday to Friday and
/// another for Saturday and Sunday.
fn hours(weekday: &[[&str; 2]], weekend: &[[&str; 2]]) -> Value {
    week([
        weekday, weekday, weekday, weekday, weekday, weekend, weekend,
    ])
}

/// Builds an opening-hours object with the same schedule every day.
fn daily(intervals: &[[&str; 2]]) -> Value {
    hours(intervals, intervals)
}

/// All demo facilities, grouped by club.
#[must_use]
pub fn facilities() -> Vec<DemoFacility> {
    let pool_hours = hours(&[["06:30", "22:00"]], &[["08:00", "20:00"]]);

    let mut all = Vec::with_capacity(56);
    all.extend(retiro(&pool_hours));
    all.extend(palermo(&pool_hours));
    all.extend(brooklyn(&pool_hours));
    all
}

/// Club Deportivo Retiro, Madrid (prices in euro cents).
fn retiro(pool_hours: &Value) -> Vec<DemoFacility> {
    vec![
        f(
            RETIRO,
            "Pista de Tenis 1",
            "tennis",
            "Pista de tierra batida al aire libre junto al estanque, con focos LED para los partidos de tarde-noche. Se riega y se pasa la estera antes de cada turno.",
            json!({
                "covered": false, "indoor": false, "lighting": true, "surface": "clay",
                "capacity": 4, "amenities": ["changing_rooms", "showers", "equipment_rental"]
            }),
        )
        .booking(60, 5, 1_600),
        f(
            RETIRO,
            "Pista de Tenis 2",
            "tennis",
            "Tierra batida descubierta y sin iluminación artificial: perfecta para las mañanas de fin de semana, pero solo se puede reservar con luz natural.",
            json!({
                "covered": false, "indoor": false, "lighting": false, "surface": "clay",
                "capacity": 4, "amenities": ["changing_rooms", "showers"]
            }),
        )
        .booking(60, 5, 1_200),
        f(
            RETIRO,
            "Pista de Tenis 3 (Cubierta)",
            "tennis",
            "Pista de resina bajo una cubierta metálica y con buena iluminación, así que se juega igual con lluvia que con sol. Covered hard court, playable in any weather.",
            json!({
                "covered": true, "indoor": false, "lighting": true, "surface": "hard",
                "capacity": 4, "amenities": ["changing_rooms", "showers", "lockers"]
            }),
        )
        .booking(60, 5, 2_000),
        f(
            RETIRO,
            "Pista de Tenis 4",
            "tennis",
            "Outdoor acrylic hard court next to the clubhouse terrace, floodlit until closing time. A favourite for league matches on weekday evenings.",
            json!({
                "covered": false, "indoor": false, "lighting": true, "surface": "hard",
                "capacity": 4, "amenities": ["cafe", "changing_rooms"]
            }),
        )
        .booking(60, 5, 1_500),
        f(
            RETIRO,
            "Pádel 1 Panorámica",
            "padel",
            "Pista de pádel cubierta con cristal panorámico, ideal para jugar aunque llueva. El césped es de última generación y los focos no deslumbran.",
            json!({
                "covered": true, "indoor": false, "lighting": true, "surface": "glass_walls",
                "capacity": 4, "amenities": ["equipment_rental", "changing_rooms", "showers"]
            }),
        )
        .booking(90, 0, 3_600),
        f(
            RETIRO,
            "Pádel 2",
            "padel",
            "Pista techada con paredes de cristal y hierba artificial. Los vestuarios están al lado y en recepción se alquilan palas y bolas.",
            json!({
                "covered": true, "indoor": false, "lighting": true, "surface": "artificial_turf",
                "capacity": 4, "amenities": ["equipment_rental", "changing_rooms"]
            }),
        )
        .booking(90, 0, 3_200),
        f(
            RETIRO,
            "Pádel 3",
            "padel",
            "Open-air padel court on the upper terrace with floodlights. Much cooler in the evenings during the Madrid summer.",
            json!({
                "covered": false, "indoor": false, "lighting": true, "surface": "artificial_turf",
                "capacity": 4, "amenities": ["equipment_rental"]
            }),
        )
        .booking(90, 0, 2_400),
        f(
            RETIRO,
            "Piscina Cubierta",
            "swimming",
            "Piscina climatizada de 25 metros con seis calles, abierta todo el año. Se reserva una calle para nado libre o entrenamiento.",
            json!({
                "covered": true, "indoor": true, "heated": true, "length_m": 25, "lanes": 6,
                "capacity": 12, "amenities": ["showers", "lockers", "changing_rooms", "accessible"]
            }),
        )
        .booking(60, 0, 800)
        .open(pool_hours.clone()),
        f(
            RETIRO,
            "Piscina de Verano",
            "swimming",
            "Outdoor 50-metre pool with a lawn for sunbathing, open during the summer season. Piscina exterior sin climatizar, con socorrista durante todo el horario.",
            json!({
                "covered": false, "indoor": false, "heated": false, "length_m": 50, "lanes": 8,
                "capacity": 40, "amenities": ["showers", "lockers", "cafe", "accessible"]
            }),
        )
        .booking(60, 0, 900)
        .open(daily(&[["10:00", "20:30"]])),
        f(
            RETIRO,
            "Fútbol 5 - Campo A",
            "football-5",
            "Campo de fútbol 5 con césped sintético de tercera generación e iluminación nocturna. En conserjería se prestan petos y balones.",
            json!({
                "covered": false, "indoor": false, "lighting": true, "surface": "artificial_turf",
                "capacity": 10, "amenities": ["changing_rooms", "showers", "equipment_rental"]
            }),
        )
        .booking(60, 10, 4_000),
        f(
            RETIRO,
            "Fútbol 7",
            "football-7",
            "Campo de hierba artificial con banquillos y marcador electrónico. Ideal para partidos entre amigos o entrenamientos de equipos infantiles.",
            json!({
                "covered": false, "indoor": false, "lighting": true, "surface": "artificial_turf",
                "capacity": 14, "amenities": ["changing_rooms", "showers", "parking"]
            }),
        )
        .booking(90, 15, 4_500),
        f(
            RETIRO,
            "Squash 1",
            "squash",
            "Indoor squash court with a maple floor and a glass back wall so friends can watch. Air-conditioned all year round.",
            json!({
                "covered": true, "indoor": true, "lighting": true, "surface": "parquet",
                "capacity": 2, "amenities": ["changing_rooms", "showers", "lockers"]
            }),
        )
        .booking(30, 5, 900),
        f(
            RETIRO,
            "Squash 2",
            "squash",
            "A second indoor court with solid walls, popular for coaching sessions and early-morning games before work.",
            json!({
                "covered": true, "indoor": true, "lighting": true, "surface": "parquet",
                "capacity": 2, "amenities": ["changing_rooms", "showers"]
            }),
        )
        .booking(30, 5, 800),
        f(
            RETIRO,
            "Pabellón de Baloncesto",
            "basketball",
            "Pabellón cerrado con parqué y canastas reglamentarias. Por las mañanas también se usa para fútbol sala escolar.",
            json!({
                "covered": true, "indoor": true, "lighting": true, "surface": "parquet",
                "capacity": 10, "amenities": ["changing_rooms", "showers", "accessible"]
            }),
        )
        .booking(60, 10, 3_000),
        f(
            RETIRO,
            "Sala de Fitness",
            "gym-room",
            "Sala de máquinas y peso libre con aire acondicionado. Se reserva por turnos para mantener un aforo reducido; cierra a mediodía entre semana.",
            json!({
                "covered": true, "indoor": true, "capacity": 20,
                "amenities": ["lockers", "showers", "changing_rooms"]
            }),
        )
        .booking(60, 0, 900)
        .open(hours(
            &[["07:00", "14:00"], ["16:00", "22:00"]],
            &[["09:00", "14:00"]],
        )),
        f(
            RETIRO,
            "Rocódromo",
            "climbing",
            "Indoor bouldering and top-rope wall, twelve metres high, with auto-belays. Rocódromo con alquiler de pies de gato y arnés en la propia sala.",
            json!({
                "covered": true, "indoor": true, "capacity": 15,
                "amenities": ["equipment_rental", "changing_rooms"]
            }),
        )
        .booking(60, 0, 1_200),
        f(
            RETIRO,
            "Sala de Tenis de Mesa",
            "table-tennis",
            "Sala interior con cuatro mesas de competición y redes reglamentarias. Los fines de semana solo abre por la mañana.",
            json!({
                "covered": true, "indoor": true, "lighting": true, "capacity": 8,
                "amenities": ["equipment_rental"]
            }),
        )
        .booking(60, 0, 800)
        .open(hours(&[["10:00", "22:00"]], &[["10:00", "14:00"]])),
        f(
            RETIRO,
            "Pista Polideportiva",
            "multi-sport",
            "Pista exterior de hormigón pintada para baloncesto, fútbol sala y balonmano, con focos. Muy usada por los campamentos de verano.",
            json!({
                "covered": false, "indoor": false, "lighting": true, "surface": "hard",
                "capacity": 14, "amenities": ["changing_rooms"]
            }),
        )
        .booking(60, 10, 1_800),
    ]
}

/// Club Atlético Palermo, Buenos Aires (prices in ARS centavos).
fn palermo(pool_hours: &Value) -> Vec<DemoFacility> {
    vec![
        f(
            PALERMO,
            "Cancha de Tenis Central",
            "tennis",
            "Cancha central de polvo de ladrillo con tribuna para doscientas personas y luz artificial para jugar de noche.",
            json!({
                "covered": false, "indoor": false, "lighting": true, "surface": "clay",
                "capacity": 4, "amenities": ["changing_rooms", "showers", "cafe"]
            }),
        )
        .booking(60, 10, 1_500_000),
        f(
            PALERMO,
            "Cancha de Tenis 2",
            "tennis",
            "Polvo de ladrillo al aire libre y sin reflectores: solo turnos diurnos. Se barre y se riega entre turno y turno.",
            json!({
                "covered": false, "indoor": false, "lighting": false, "surface": "clay",
                "capacity": 4, "amenities": ["changing_rooms"]
            }),
        )
        .booking(60, 10, 1_200_000),
        f(
            PALERMO,
            "Cancha de Tenis 3",
            "tennis",
            "Clay court under the jacaranda trees, with floodlights for after-work games. A quieter spot for practice sessions.",
            json!({
                "covered": false, "indoor": false, "lighting": true, "surface": "clay",
                "capacity": 4, "amenities": ["changing_rooms", "showers"]
            }),
        )
        .booking(60, 10, 1_300_000),
        f(
            PALERMO,
            "Cancha de Tenis Techada",
            "tennis",
            "Cancha techada de superficie sintética con buena iluminación, ideal para los días de lluvia. Covered court with lights, open whatever the weather.",
            json!({
                "covered": true, "indoor": false, "lighting": true, "surface": "synthetic",
                "capacity": 4, "amenities": ["changing_rooms", "showers", "lockers"]
            }),
        )
        .booking(60, 10, 2_000_000),
        f(
            PALERMO,
            "Pádel Techado 1",
            "padel",
            "Cancha de pádel bajo techo con blindex y alfombra sintética: se juega llueva o truene.",
            json!({
                "covered": true, "indoor": false, "lighting": true, "surface": "glass_walls",
                "capacity": 4, "amenities": ["equipment_rental", "changing_rooms", "cafe"]
            }),
        )
        .booking(90, 0, 2_800_000),
        f(
            PALERMO,
            "Pádel Techado 2",
            "padel",
            "Segunda cancha de pádel cubierta, con paredes de vidrio y luz LED. En el buffet se alquilan paletas y tubos de pelotas.",
            json!({
                "covered": true, "indoor": false, "lighting": true, "surface": "glass_walls",
                "capacity": 4, "amenities": ["equipment_rental", "cafe"]
            }),
        )
        .booking(90, 0, 2_800_000),
        f(
            PALERMO,
            "Pádel Descubierto",
            "padel",
            "Outdoor padel court with concrete walls and artificial grass, lit for night games. Cheaper than the roofed courts.",
            json!({
                "covered": false, "indoor": false, "lighting": true, "surface": "artificial_turf",
                "capacity": 4, "amenities": ["equipment_rental"]
            }),
        )
        .booking(90, 0, 2_200_000),
        f(
            PALERMO,
            "Fútbol 5 - Cancha 1 (Techada)",
            "football-5",
            "Cancha de fútbol 5 bajo techo parabólico, con césped sintético y red perimetral. Se juega con cualquier clima.",
            json!({
                "covered": true, "indoor": false, "lighting": true, "surface": "artificial_turf",
                "capacity": 10, "amenities": ["changing_rooms", "showers", "parking"]
            }),
        )
        .booking(60, 0, 3_800_000),
        f(
            PALERMO,
            "Fútbol 5 - Cancha 2",
            "football-5",
            "Cancha al aire libre con pasto sintético y reflectores, abierta hasta la medianoche todos los días.",
            json!({
                "covered": false, "indoor": false, "lighting": true, "surface": "artificial_turf",
                "capacity": 10, "amenities": ["changing_rooms", "showers", "cafe"]
            }),
        )
        .booking(60, 0, 3_500_000)
        .open(daily(&[["08:00", "24:00"]])),
        f(
            PALERMO,
            "Fútbol 5 - Cancha 3",
            "football-5",
            "Natural grass five-a-side pitch with no floodlights, so daytime bookings only. Pasto natural muy cuidado, como en los viejos tiempos.",
            json!({
                "covered": false, "indoor": false, "lighting": false, "surface": "grass",
                "capacity": 10, "amenities": ["changing_rooms"]
            }),
        )
        .booking(60, 0, 3_000_000),
        f(
            PALERMO,
            "Fútbol 7",
            "football-7",
            "Cancha de pasto natural para siete por lado, con iluminación y vestuarios con agua caliente.",
            json!({
                "covered": false, "indoor": false, "lighting": true, "surface": "grass",
                "capacity": 14, "amenities": ["changing_rooms", "showers", "parking"]
            }),
        )
        .booking(90, 15, 4_500_000),
        f(
            PALERMO,
            "Pileta Climatizada",
            "swimming",
            "Pileta cubierta y climatizada de 25 metros con cinco andariveles, ideal para nadar en invierno.",
            json!({
                "covered": true, "indoor": true, "heated": true, "length_m": 25, "lanes": 5,
                "capacity": 10, "amenities": ["showers", "lockers", "changing_rooms", "accessible"]
            }),
        )
        .booking(60, 0, 900_000)
        .open(pool_hours.clone()),
        f(
            PALERMO,
            "Pileta Descubierta",
            "swimming",
            "Outdoor summer pool with a shallow area for kids and a solarium. It is not heated and only opens in the warm months.",
            json!({
                "covered": false, "indoor": false, "heated": false, "length_m": 33, "lanes": 6,
                "capacity": 60, "amenities": ["showers", "changing_rooms", "cafe"]
            }),
        )
        .booking(60, 0, 800_000)
        .open(daily(&[["09:00", "20:00"]])),
        f(
            PALERMO,
            "Vóley de Playa",
            "beach-volleyball",
            "Cancha de vóley con arena fina y reflectores para jugar de noche en verano.",
            json!({
                "covered": false, "indoor": false, "lighting": true, "surface": "sand",
                "capacity": 4, "amenities": ["showers"]
            }),
        )
        .booking(60, 5, 1_500_000),
        f(
            PALERMO,
            "Estadio de Básquet",
            "basketball",
            "Indoor basketball arena with a sprung parquet floor and seating for three hundred. Home of the club's first team, so weekend slots are scarce.",
            json!({
                "covered": true, "indoor": true, "lighting": true, "surface": "parquet",
                "capacity": 10, "amenities": ["changing_rooms", "showers", "accessible"]
            }),
        )
        .booking(60, 15, 2_500_000),
        f(
            PALERMO,
            "Sala de Musculación",
            "gym-room",
            "Sala con máquinas, pesas libres y zona de entrenamiento funcional. Los sábados abre solo por la mañana y los domingos permanece cerrada.",
            json!({
                "covered": true, "indoor": true, "capacity": 25,
                "amenities": ["lockers", "showers", "changing_rooms"]
            }),
        )
        .booking(60, 0, 800_000)
        .open(week([
            &[["07:00", "23:00"]],
            &[["07:00", "23:00"]],
            &[["07:00", "23:00"]],
            &[["07:00", "23:00"]],
            &[["07:00", "23:00"]],
            &[["08:00", "14:00"]],
            &[],
        ])),
        f(
            PALERMO,
            "Cancha de Hockey",
            "field-hockey",
            "Cancha de hockey de sintético de agua con iluminación reglamentaria. Turnos de noventa minutos para partidos y entrenamientos.",
            json!({
                "covered": false, "indoor": false, "lighting": true, "surface": "artificial_turf",
                "capacity": 22, "amenities": ["changing_rooms", "showers", "parking"]
            }),
        )
        .booking(90, 15, 4_500_000),
    ]
}

/// Brooklyn Racquet & Swim Club, New York (prices in US cents).
fn brooklyn(pool_hours: &Value) -> Vec<DemoFacility> {
    vec![
        f(
            BROOKLYN,
            "Har-Tru Court 1",
            "tennis",
            "Green clay court out in the open with no lights, so daylight play only. It drains quickly after a summer shower.",
            json!({
                "covered": false, "indoor": false, "lighting": false, "surface": "clay",
                "capacity": 4, "amenities": ["changing_rooms", "showers"]
            }),
        )
        .booking(60, 5, 4_500),
        f(
            BROOKLYN,
            "Har-Tru Court 2",
            "tennis",
            "Outdoor green clay court with LED floodlights for evening matches after work.",
            json!({
                "covered": false, "indoor": false, "lighting": true, "surface": "clay",
                "capacity": 4, "amenities": ["changing_rooms", "showers"]
            }),
        )
        .booking(60, 5, 5_000),
        f(
            BROOKLYN,
            "Bubble Court A",
            "tennis",
            "Hard court under the seasonal air dome, heated in winter and fully lit. Cancha bajo techo, perfecta para días de lluvia o nieve.",
            json!({
                "covered": true, "indoor": true, "lighting": true, "surface": "hard",
                "capacity": 4, "amenities": ["changing_rooms", "showers", "lockers"]
            }),
        )
        .booking(60, 5, 7_500),
        f(
            BROOKLYN,
            "Bubble Court B",
            "tennis",
            "The second court under the dome, with the same cushioned surface; great for doubles clinics.",
            json!({
                "covered": true, "indoor": true, "lighting": true, "surface": "hard",
                "capacity": 4, "amenities": ["changing_rooms", "showers", "lockers"]
            }),
        )
        .booking(60, 5, 7_500),
        f(
            BROOKLYN,
            "Rooftop Hard Court",
            "tennis",
            "Open-air court on the roof with skyline views and lights for night play. It can get windy on spring afternoons.",
            json!({
                "covered": false, "indoor": false, "lighting": true, "surface": "hard",
                "capacity": 4, "amenities": ["cafe"]
            }),
        )
        .booking(60, 5, 5_500),
        f(
            BROOKLYN,
            "Padel Court Indoor",
            "padel",
            "Panoramic padel court inside the former warehouse, climate-controlled all year. Pista de pádel cubierta con paredes de cristal.",
            json!({
                "covered": true, "indoor": true, "lighting": true, "surface": "glass_walls",
                "capacity": 4, "amenities": ["equipment_rental", "changing_rooms", "showers"]
            }),
        )
        .booking(90, 0, 8_000),
        f(
            BROOKLYN,
            "Padel Court Outdoor",
            "padel",
            "Courtyard padel court with artificial turf and floodlights until closing. Rackets can be rented at the front desk.",
            json!({
                "covered": false, "indoor": false, "lighting": true, "surface": "artificial_turf",
                "capacity": 4, "amenities": ["equipment_rental"]
            }),
        )
        .booking(90, 0, 6_000),
        f(
            BROOKLYN,
            "Indoor Lap Pool",
            "swimming",
            "Heated 25-metre lap pool with six lanes in the basement; book a single lane for half an hour.",
            json!({
                "covered": true, "indoor": true, "heated": true, "length_m": 25, "lanes": 6,
                "capacity": 12, "amenities": ["showers", "lockers", "changing_rooms", "accessible"]
            }),
        )
        .booking(30, 0, 2_500)
        .open(pool_hours.clone()),
        f(
            BROOKLYN,
            "Rooftop Pool",
            "swimming",
            "Seasonal outdoor pool on the roof, kept warm even on cool evenings, with loungers and a small juice bar.",
            json!({
                "covered": false, "indoor": false, "heated": true, "length_m": 20, "lanes": 4,
                "capacity": 30, "amenities": ["showers", "lockers", "cafe"]
            }),
        )
        .booking(60, 0, 3_500)
        .open(hours(&[["11:00", "20:00"]], &[["09:00", "20:00"]])),
        f(
            BROOKLYN,
            "Squash Court 1",
            "squash",
            "Glass-backed squash court with a hardwood floor and good ventilation; the gallery seats a dozen spectators.",
            json!({
                "covered": true, "indoor": true, "lighting": true, "surface": "parquet",
                "capacity": 2, "amenities": ["changing_rooms", "showers", "lockers"]
            }),
        )
        .booking(30, 5, 3_500),
        f(
            BROOKLYN,
            "Squash Court 2",
            "squash",
            "Pista de squash con suelo de madera, ideal para clases particulares. Good for lessons and solo drills.",
            json!({
                "covered": true, "indoor": true, "lighting": true, "surface": "parquet",
                "capacity": 2, "amenities": ["changing_rooms", "showers"]
            }),
        )
        .booking(30, 5, 3_000),
        f(
            BROOKLYN,
            "Basketball Gym",
            "basketball",
            "Full-size hardwood court with six baskets, pull-out bleachers and a scoreboard. Used for adult leagues on weeknights.",
            json!({
                "covered": true, "indoor": true, "lighting": true, "surface": "parquet",
                "capacity": 10, "amenities": ["changing_rooms", "showers", "accessible"]
            }),
        )
        .booking(60, 15, 9_000),
        f(
            BROOKLYN,
            "Outdoor Basketball Court",
            "basketball",
            "Asphalt court by the parking lot with lights, popular for pickup games on summer nights.",
            json!({
                "covered": false, "indoor": false, "lighting": true, "surface": "hard",
                "capacity": 10, "amenities": ["parking"]
            }),
        )
        .booking(60, 5, 3_500),
        f(
            BROOKLYN,
            "Badminton Hall",
            "badminton",
            "Draft-free hall with a cushioned synthetic floor and high ceilings, so shuttles fly true. Each booking covers one court.",
            json!({
                "covered": true, "indoor": true, "lighting": true, "surface": "synthetic",
                "capacity": 4, "amenities": ["equipment_rental", "changing_rooms"]
            }),
        )
        .booking(60, 5, 3_000),
        f(
            BROOKLYN,
            "Volleyball Court",
            "volleyball",
            "Indoor court with an adjustable net height, suitable for juniors and adults alike.",
            json!({
                "covered": true, "indoor": true, "lighting": true, "surface": "synthetic",
                "capacity": 12, "amenities": ["changing_rooms", "showers"]
            }),
        )
        .booking(60, 10, 6_500),
        f(
            BROOKLYN,
            "Yoga & Pilates Studio",
            "gym-room",
            "Bright studio with a sprung floor, mats and reformers. Sala polivalente para clases de yoga, pilates y estiramientos.",
            json!({
                "covered": true, "indoor": true, "capacity": 16,
                "amenities": ["lockers", "changing_rooms", "accessible"]
            }),
        )
        .booking(60, 15, 4_000),
        f(
            BROOKLYN,
            "Table Tennis Lounge",
            "table-tennis",
            "Relaxed lounge with two tables and a bar, open late until midnight every day.",
            json!({
                "covered": true, "indoor": true, "lighting": true, "capacity": 4,
                "amenities": ["cafe", "equipment_rental"]
            }),
        )
        .booking(30, 0, 1_500)
        .open(daily(&[["12:00", "24:00"]])),
        f(
            BROOKLYN,
            "Five-a-side Turf",
            "football-5",
            "Rooftop five-a-side pitch with floodlights and netting all around. Cancha de fútbol 5 con césped sintético, ideal para después del trabajo.",
            json!({
                "covered": false, "indoor": false, "lighting": true, "surface": "artificial_turf",
                "capacity": 10, "amenities": ["changing_rooms", "showers"]
            }),
        )
        .booking(60, 10, 9_000),
    ]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const SPEC_KEYS: [&str; 9] = [
        "covered",
        "indoor",
        "lighting",
        "surface",
        "heated",
        "capacity",
        "length_m",
        "lanes",
        "amenities",
    ];

    fn flag(facility: &DemoFacility, key: &str) -> bool {
        facility.specifications[key].as_bool() == Some(true)
    }

    fn surface(facility: &DemoFacility) -> Option<&str> {
        facility.specifications["surface"].as_str()
    }

    fn is_slug(s: &str) -> bool {
        let mut chars = s.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok =
            chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        first_ok && rest_ok && (2..=32).contains(&s.len())
    }

    /// Parses "HH:MM" into minutes since midnight; "24:00" is allowed.
    fn minutes(s: &str) -> Option<u32> {
        let (h, m) = s.split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        let h: u32 = h.parse().ok()?;
        let m: u32 = m.parse().ok()?;
        match (h, m) {
            (24, 0) => Some(1440),
            (0..=23, 0..=59) => Some(h * 60 + m),
            _ => None,
        }
    }

    fn custom_hours() -> Vec<(DemoFacility, Map<String, Value>)> {
        facilities()
            .into_iter()
            .filter_map(|fac| {
                let map = fac.opening_hours.as_ref()?.as_object()?.clone();
                Some((fac, map))
            })
            .collect()
    }

    #[test]
    fn total_facility_count_is_between_48_and_54() {
        let n = facilities().len();
        assert!((48..=54).contains(&n), "got {n} facilities");
    }

    #[test]
    fn every_club_has_at_least_fourteen_facilities() {
        let all = facilities();
        for (i, club) in CLUBS.iter().enumerate() {
            let n = all.iter().filter(|f| f.club == i).count();
            assert!(n >= 14, "{} has only {n} facilities", club.name);
        }
    }

    #[test]
    fn every_facility_belongs_to_an_existing_club() {
        assert!(facilities().iter().all(|f| f.club < CLUBS.len()));
    }

    #[test]
    fn facility_names_are_unique_within_each_club() {
        let mut seen = HashSet::new();
        for fac in facilities() {
            assert!(!fac.name.trim().is_empty());
            assert!(
                seen.insert((fac.club, fac.name.clone())),
                "duplicate name {} in club {}",
                fac.name,
                fac.club
            );
        }
    }

    #[test]
    fn sport_slugs_are_lower_case_and_well_formed() {
        for fac in facilities() {
            assert!(
                is_slug(fac.sport),
                "bad slug {:?} on {}",
                fac.sport,
                fac.name
            );
        }
    }

    #[test]
    fn descriptions_are_non_empty_sentences() {
        for fac in facilities() {
            let d = fac.description.trim();
            assert!(d.len() >= 20, "{} has a too short description", fac.name);
            assert!(d.ends_with('.') || d.ends_with('!'), "{}: {d}", fac.name);
        }
    }

    #[test]
    fn descriptions_mix_spanish_and_english() {
        let all = facilities();
        let spanish = all
            .iter()
            .filter(|f| {
                [" con ", " de ", " para ", " y "]
                    .iter()
                    .any(|w| f.description.contains(w))
            })
            .count();
        let english = all
            .iter()
            .filter(|f| {
                [" with ", " the ", " and ", " for "]
                    .iter()
                    .any(|w| f.description.contains(w))
            })
            .count();
        assert!(
            spanish * 3 >= all.len(),
            "only {spanish} Spanish descriptions"
        );
        assert!(
            english * 3 >= all.len(),
            "only {english} English descriptions"
        );
    }

    #[test]
    fn every_specifications_value_is_a_json_object() {
        for fac in facilities() {
            assert!(fac.specifications.is_object(), "{}", fac.name);
        }
    }

    #[test]
    fn specification_keys_come_from_the_shared_vocabulary_with_consistent_types() {
        for fac in facilities() {
            for (key, value) in fac.specifications.as_object().unwrap() {
                assert!(
                    SPEC_KEYS.contains(&key.as_str()),
                    "{}: unknown key {key}",
                    fac.name
                );
                let ok = match key.as_str() {
                    "covered" | "indoor" | "lighting" | "heated" => value.is_boolean(),
                    "surface" => value.is_string(),
                    "capacity" | "length_m" | "lanes" => value.as_u64().is_some_and(|n| n > 0),
                    "amenities" => value
                        .as_array()
                        .is_some_and(|a| a.iter().all(Value::is_string)),
                    _ => false,
                };
                assert!(ok, "{}: bad value for {key}: {value}", fac.name);
            }
        }
    }

    #[test]
    fn slot_minutes_are_multiples_of_five_between_5_and_480() {
        for fac in facilities() {
            assert!((5..=480).contains(&fac.slot_minutes), "{}", fac.name);
            assert_eq!(fac.slot_minutes % 5, 0, "{}", fac.name);
            assert!([30, 60, 90].contains(&fac.slot_minutes), "{}", fac.name);
        }
    }

    #[test]
    fn buffer_minutes_are_between_0_and_240() {
        for fac in facilities() {
            assert!((0..=240).contains(&fac.buffer_minutes), "{}", fac.name);
            assert!([0, 5, 10, 15].contains(&fac.buffer_minutes), "{}", fac.name);
        }
    }

    #[test]
    fn prices_are_non_negative_and_realistic_for_the_club_currency() {
        for fac in facilities() {
            assert!(fac.price_cents >= 0, "{}", fac.name);
            let range = match CLUBS[fac.club].currency {
                "EUR" => 800..=4_500,
                "ARS" => 800_000..=4_500_000,
                "USD" => 1_500..=9_000,
                other => panic!("unexpected currency {other}"),
            };
            assert!(
                range.contains(&fac.price_cents),
                "{}: {}",
                fac.name,
                fac.price_cents
            );
        }
    }

    #[test]
    fn custom_opening_hours_use_day_keys_and_sorted_hh_mm_intervals() {
        for (fac, map) in custom_hours() {
            for (day, intervals) in &map {
                assert!(DAYS.contains(&day.as_str()), "{}: bad day {day}", fac.name);
                let mut previous_close = 0;
                for interval in intervals.as_array().unwrap() {
                    let pair = interval.as_array().unwrap();
                    assert_eq!(pair.len(), 2, "{}", fac.name);
                    let open = minutes(pair[0].as_str().unwrap()).unwrap();
                    let close = minutes(pair[1].as_str().unwrap()).unwrap();
                    assert!(open < close, "{}: {interval}", fac.name);
                    assert!(open >= previous_close, "{}: overlapping {day}", fac.name);
                    previous_close = close;
                }
            }
        }
    }

    #[test]
    fn custom_opening_hours_cover_all_seven_days() {
        for (fac, map) in custom_hours() {
            assert_eq!(map.len(), 7, "{}", fac.name);
        }
    }

    #[test]
    fn about_ten_facilities_have_custom_opening_hours() {
        let n = custom_hours().len();
        assert!((8..=14).contains(&n), "{n} facilities with custom hours");
    }

    #[test]
    fn opening_hours_include_a_closed_sunday_a_split_day_and_a_midnight_close() {
        let hours = custom_hours();
        let closed_sunday = hours
            .iter()
            .any(|(_, m)| m["sun"].as_array().is_some_and(Vec::is_empty));
        let split_day = hours.iter().any(|(_, m)| {
            m.values()
                .any(|v| v.as_array().is_some_and(|a| a.len() > 1))
        });
        let midnight = hours.iter().any(|(_, m)| {
            m.values()
                .flat_map(|v| v.as_array().unwrap())
                .any(|i| i[1] == "24:00")
        });
        assert!(closed_sunday && split_day && midnight);
    }

    #[test]
    fn there_is_a_covered_tennis_court_with_lighting() {
        assert!(
            facilities()
                .iter()
                .any(|f| f.sport == "tennis" && flag(f, "covered") && flag(f, "lighting"))
        );
    }

    #[test]
    fn there_are_uncovered_tennis_courts_with_and_without_lighting() {
        let all = facilities();
        let uncovered = || {
            all.iter()
                .filter(|f| f.sport == "tennis" && f.specifications["covered"] == false)
        };
        assert!(uncovered().any(|f| flag(f, "lighting")));
        assert!(uncovered().any(|f| f.specifications["lighting"] == false));
    }

    #[test]
    fn there_is_a_covered_padel_court_and_an_outdoor_one() {
        let all = facilities();
        assert!(all.iter().any(|f| f.sport == "padel" && flag(f, "covered")));
        assert!(
            all.iter()
                .any(|f| f.sport == "padel" && f.specifications["covered"] == false)
        );
    }

    #[test]
    fn there_is_an_indoor_heated_pool_and_an_outdoor_pool() {
        let all = facilities();
        assert!(
            all.iter()
                .any(|f| f.sport == "swimming" && flag(f, "indoor") && flag(f, "heated"))
        );
        assert!(
            all.iter()
                .any(|f| f.sport == "swimming" && f.specifications["indoor"] == false)
        );
    }

    #[test]
    fn there_is_a_football_five_pitch_with_artificial_turf_and_one_with_grass() {
        let all = facilities();
        let f5 = || all.iter().filter(|f| f.sport == "football-5");
        assert!(f5().any(|f| surface(f) == Some("artificial_turf")));
        assert!(f5().any(|f| surface(f) == Some("grass")));
    }

    #[test]
    fn the_catalogue_covers_the_expected_sports() {
        let sports: HashSet<_> = facilities().iter().map(|f| f.sport).collect();
        for sport in [
            "tennis",
            "padel",
            "swimming",
            "football-5",
            "football-7",
            "squash",
            "basketball",
            "volleyball",
            "beach-volleyball",
            "badminton",
            "climbing",
            "table-tennis",
            "gym-room",
            "multi-sport",
        ] {
            assert!(sports.contains(sport), "missing {sport}");
        }
    }

    #[test]
    fn clubs_use_the_expected_time_zones_and_currencies() {
        assert_eq!(CLUBS[RETIRO].timezone, "Europe/Madrid");
        assert_eq!(CLUBS[RETIRO].currency, "EUR");
        assert_eq!(CLUBS[PALERMO].timezone, "America/Argentina/Buenos_Aires");
        assert_eq!(CLUBS[PALERMO].currency, "ARS");
        assert_eq!(CLUBS[BROOKLYN].timezone, "America/New_York");
        assert_eq!(CLUBS[BROOKLYN].currency, "USD");
    }

    #[test]
    fn users_have_exactly_one_admin() {
        assert_eq!(USERS.iter().filter(|u| u.role == "admin").count(), 1);
        assert_eq!(USERS.iter().filter(|u| u.role == "staff").count(), 1);
        assert_eq!(USERS.iter().filter(|u| u.role == "member").count(), 4);
    }

    #[test]
    fn users_have_valid_roles_unique_emails_and_long_passwords() {
        let mut emails = HashSet::new();
        for user in USERS {
            assert!(["admin", "staff", "member"].contains(&user.role));
            assert!(user.password.chars().count() >= 8, "{}", user.email);
            assert!(user.email.ends_with("@clubpulse.test"));
            assert!(emails.insert(user.email), "duplicate {}", user.email);
        }
    }
}
