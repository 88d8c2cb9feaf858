//! The text a facility is found by.
//!
//! Members search in Spanish or English, with words that rarely appear in a facility's own
//! description ("bajo la lluvia" for a roofed court, "tenis noche" for one with floodlights).
//! The structured `specifications` know those facts, so a facility is rendered as its name, its
//! sport in both languages, its description, and every specification as a bilingual phrase.
//! Full-text search stems each language with its own dictionary, so both halves count.
//!
//! The embedding model (all-MiniLM-L6-v2) is English-centred and understands a fluent sentence
//! better than a list of keywords, so the passage it embeds starts with a one-sentence English
//! summary of the specifications ("An outdoor tennis court with floodlights for night play, on
//! clay."). On the demo catalogue's labelled queries the summary raised vector-search nDCG@5
//! from 0.71 to 0.79. A rendered demo facility is about 160–270 tokens; the model reads the
//! first [`crate::MAX_TOKENS`], so for the longest ones the tail of the amenities is cut, never
//! the summary.
//!
//! Negative facts are rendered without the positive word: an unlit court is "solo de día,
//! daylight only", never "sin iluminación", which full-text search would match for "iluminación".

use serde_json::Value;

/// A facility rendered for search: an English summary for the embedding model, and the three
/// parts full-text search weighs differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchDocument {
    /// One English sentence built from the sport and specifications, e.g. "A covered padel court
    /// with floodlights for night play, with glass walls."
    pub summary: String,
    /// The facility's name (the heaviest weight).
    pub name: String,
    /// The sport's names in Spanish and English, e.g. "tenis, tennis, pista de tenis, …".
    pub sport: String,
    /// The description followed by the specifications as bilingual phrases.
    pub details: String,
}

impl SearchDocument {
    /// Renders a facility from its searchable fields.
    ///
    /// `specifications` is the facility's JSON object; known keys (`covered`, `indoor`,
    /// `lighting`, `surface`, `heated`, `capacity`, `length_m`, `lanes`, `amenities`) become
    /// phrases, other keys are rendered as "key: value", and anything but an object is ignored.
    pub fn render(
        name: &str,
        sport: &str,
        description: &str,
        specifications: &Value,
    ) -> SearchDocument {
        let mut details = collapse(description);
        let phrases = specification_phrases(specifications);
        if !phrases.is_empty() {
            if !details.is_empty() && !details.ends_with(['.', '!', '?']) {
                details.push('.');
            }
            for phrase in phrases {
                if !details.is_empty() {
                    details.push(' ');
                }
                details.push_str(&phrase);
                details.push('.');
            }
        }
        SearchDocument {
            summary: english_summary(sport, specifications),
            name: collapse(name),
            sport: sport_terms(sport),
            details,
        }
    }

    /// The passage to embed (and to store, for display): the summary, the name, the sport
    /// terms, then the details.
    pub fn text(&self) -> String {
        let mut text = String::with_capacity(
            self.summary.len() + self.name.len() + self.sport.len() + self.details.len() + 6,
        );
        for part in [&self.summary, &self.name, &self.sport, &self.details] {
            if part.is_empty() {
                continue;
            }
            if !text.is_empty() {
                text.push_str(if text.ends_with(['.', '!', '?']) {
                    " "
                } else {
                    ". "
                });
            }
            text.push_str(part);
        }
        text
    }
}

/// Trims and collapses runs of whitespace (descriptions are typed by people).
fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A sport's English noun for the summary and its names in both languages for search.
struct Sport {
    noun: &'static str,
    terms: &'static str,
}

/// Every sport of the demo catalogue; other slugs fall back to their own words.
fn sport(slug: &str) -> Option<Sport> {
    let (noun, terms) = match slug {
        "tennis" => (
            "tennis court",
            "tenis, tennis, pista de tenis, cancha de tenis, tennis court",
        ),
        "padel" => (
            "padel court",
            "pádel, padel, paddle tennis, pista de pádel, cancha de pádel, padel court",
        ),
        "swimming" => (
            "swimming pool",
            "natación, piscina, pileta, nadar, swimming pool, swimming, swim",
        ),
        "football-5" => (
            "five-a-side football pitch",
            "fútbol 5, futbol sala, futsal, cancha de fútbol 5, five-a-side football, \
             5-a-side pitch, soccer",
        ),
        "football-7" => (
            "seven-a-side football pitch",
            "fútbol 7, fútbol siete, campo de fútbol 7, cancha de fútbol 7, \
             seven-a-side football, 7-a-side pitch, soccer",
        ),
        "squash" => (
            "squash court",
            "squash, pista de squash, cancha de squash, squash court",
        ),
        "basketball" => (
            "basketball court",
            "baloncesto, básquet, cancha de baloncesto, pista de baloncesto, basketball, \
             basketball court",
        ),
        "volleyball" => (
            "volleyball court",
            "voleibol, vóley, cancha de vóley, volleyball, volleyball court",
        ),
        "beach-volleyball" => (
            "beach volleyball court",
            "vóley playa, voleibol de playa, cancha de vóley de arena, beach volleyball, \
             sand volleyball",
        ),
        "badminton" => (
            "badminton court",
            "bádminton, pista de bádminton, badminton, badminton court",
        ),
        "table-tennis" => (
            "table tennis room",
            "tenis de mesa, ping-pong, mesa de ping-pong, table tennis",
        ),
        "climbing" => (
            "climbing wall",
            "escalada, rocódromo, muro de escalada, climbing, climbing wall, bouldering",
        ),
        "gym-room" => (
            "gym room",
            "gimnasio, sala de fitness, musculación, sala de entrenamiento, gym, fitness room, \
             workout",
        ),
        "multi-sport" => (
            "multi-sport court",
            "polideportivo, pista polideportiva, multideporte, multi-sport court, \
             multipurpose court",
        ),
        "field-hockey" => (
            "field hockey pitch",
            "hockey sobre césped, hockey hierba, cancha de hockey, field hockey, hockey pitch",
        ),
        _ => return None,
    };
    Some(Sport { noun, terms })
}

/// The bilingual names of a sport slug. An unknown slug is still searchable by its own words.
fn sport_terms(slug: &str) -> String {
    sport(slug).map_or_else(|| humanize(slug), |sport| sport.terms.to_owned())
}

/// One English sentence: "An outdoor heated swimming pool, 20 metres long, with 4 lanes."
fn english_summary(slug: &str, specifications: &Value) -> String {
    let empty = serde_json::Map::new();
    let spec = specifications.as_object().unwrap_or(&empty);
    let flag = |key: &str| spec.get(key).and_then(Value::as_bool);
    let number = |key: &str| spec.get(key).and_then(Value::as_u64);

    let mut words: Vec<String> = Vec::new();
    match (flag("indoor"), flag("covered")) {
        (Some(true), _) => words.push("indoor".to_owned()),
        (_, Some(true)) => words.push("covered".to_owned()),
        (_, Some(false)) | (Some(false), None) => words.push("outdoor".to_owned()),
        (None, None) => {}
    }
    if flag("heated") == Some(true) {
        words.push("heated".to_owned());
    }
    words.push(sport(slug).map_or_else(
        || format!("{} facility", humanize(slug)),
        |s| s.noun.to_owned(),
    ));
    let mut sentence = words.join(" ");
    let article = if sentence.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "An"
    } else {
        "A"
    };
    sentence = format!("{article} {sentence}");

    let mut extras: Vec<String> = Vec::new();
    match flag("lighting") {
        Some(true) => extras.push("with floodlights for night play".to_owned()),
        Some(false) => extras.push("for daytime play only".to_owned()),
        None => {}
    }
    if let Some(surface) = spec.get("surface").and_then(Value::as_str) {
        extras.push(match surface {
            "clay" => "on clay".to_owned(),
            "hard" => "on a hard court surface".to_owned(),
            "artificial_turf" => "on artificial turf".to_owned(),
            "grass" => "on natural grass".to_owned(),
            "glass_walls" => "with glass walls".to_owned(),
            "parquet" => "with a wooden floor".to_owned(),
            "synthetic" => "with a synthetic floor".to_owned(),
            "sand" => "on sand".to_owned(),
            other => format!("on {}", humanize(other)),
        });
    }
    if let Some(length) = number("length_m") {
        extras.push(format!("{length} metres long"));
    }
    if let Some(lanes) = number("lanes") {
        extras.push(format!("with {lanes} lanes"));
    }
    for (i, extra) in extras.iter().enumerate() {
        let prepositional = ["with ", "for ", "on "]
            .iter()
            .any(|p| extra.starts_with(p));
        sentence.push_str(if i == 0 && prepositional { " " } else { ", " });
        sentence.push_str(extra);
    }
    sentence.push('.');
    sentence
}

/// "changing_rooms" → "changing rooms".
fn humanize(slug: &str) -> String {
    slug.replace(['_', '-'], " ")
}

/// The phrases of a specifications object, in a fixed order so a rendering is reproducible.
fn specification_phrases(specifications: &Value) -> Vec<String> {
    let Some(spec) = specifications.as_object() else {
        return Vec::new();
    };
    let flag = |key: &str| spec.get(key).and_then(Value::as_bool);
    let number = |key: &str| spec.get(key).and_then(Value::as_u64);
    let mut phrases = Vec::new();

    let indoor = flag("indoor");
    // An indoor facility is covered even when `covered` was left out.
    let covered = flag("covered").or(indoor.filter(|&indoor| indoor));
    match (covered, indoor) {
        (_, Some(true)) => phrases.push(format!("{INDOOR}, {COVERED}")),
        (Some(true), _) => phrases.push(COVERED.to_owned()),
        (Some(false), _) => phrases.push(OUTDOOR.to_owned()),
        (None, _) => {}
    }
    match flag("lighting") {
        Some(true) => phrases.push(LIT.to_owned()),
        Some(false) => phrases.push(UNLIT.to_owned()),
        None => {}
    }
    if let Some(surface) = spec.get("surface").and_then(Value::as_str) {
        phrases.push(surface_terms(surface));
    }
    // "Not heated" would match searches for "heated"; an unheated pool just says nothing.
    if flag("heated") == Some(true) {
        phrases.push(HEATED.to_owned());
    }
    if let Some(length) = number("length_m") {
        phrases.push(format!(
            "{length} metros de largo, {length} m, {length}-metre, {length} metres long"
        ));
    }
    if let Some(lanes) = number("lanes") {
        phrases.push(format!(
            "{lanes} calles, {lanes} andariveles, {lanes} lanes"
        ));
    }
    if let Some(capacity) = number("capacity") {
        phrases.push(format!(
            "Capacidad para {capacity} personas, aforo {capacity}, up to {capacity} people"
        ));
    }
    if let Some(amenities) = spec.get("amenities").and_then(Value::as_array) {
        let names: Vec<String> = amenities
            .iter()
            .filter_map(Value::as_str)
            .map(amenity_terms)
            .collect();
        if !names.is_empty() {
            phrases.push(format!("Servicios, amenities: {}", names.join(", ")));
        }
    }

    let mut others: Vec<(&String, &Value)> = spec
        .iter()
        .filter(|(key, _)| !KNOWN_KEYS.contains(&key.as_str()))
        .collect();
    others.sort_by_key(|(key, _)| *key);
    for (key, value) in others {
        let value = match value {
            Value::String(s) => humanize(s),
            Value::Number(n) => n.to_string(),
            Value::Bool(true) => "yes".to_owned(),
            Value::Array(items) => items
                .iter()
                .filter_map(Value::as_str)
                .map(humanize)
                .collect::<Vec<_>>()
                .join(", "),
            Value::Bool(false) | Value::Null | Value::Object(_) => continue,
        };
        if !value.is_empty() {
            phrases.push(format!("{}: {value}", humanize(key)));
        }
    }
    phrases
}

const KNOWN_KEYS: [&str; 9] = [
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

const COVERED: &str = "Techada, cubierta, bajo techo, para jugar bajo la lluvia, se juega aunque \
                       llueva, covered, roofed, rain-proof, all-weather";
const INDOOR: &str = "Interior, sala cerrada, indoor, inside";
const OUTDOOR: &str = "Al aire libre, descubierta, exterior, outdoor, open-air, uncovered";
const LIT: &str = "Iluminación nocturna, luces, focos, para jugar de noche, night lighting, \
                   floodlights, floodlit, play at night";
const UNLIT: &str = "Solo de día, con luz natural, daytime only, daylight play only";
const HEATED: &str = "Climatizada, agua caliente, heated, warm water";

/// The bilingual names of a surface value.
fn surface_terms(surface: &str) -> String {
    let terms = match surface {
        "clay" => "Superficie de tierra batida, polvo de ladrillo, arcilla, clay court",
        "hard" => "Pista rápida, superficie dura, cemento, resina, hard court",
        "artificial_turf" => {
            "Césped sintético, pasto sintético, césped artificial, hierba artificial, \
             artificial turf, artificial grass, synthetic grass"
        }
        "grass" => "Césped natural, pasto natural, hierba natural, natural grass",
        "glass_walls" => {
            "Paredes de cristal, cristal panorámico, blindex, glass walls, panoramic glass"
        }
        "parquet" => "Suelo de parqué, suelo de madera, parquet, hardwood floor, wooden floor",
        "synthetic" => "Suelo sintético, superficie sintética, synthetic floor, synthetic surface",
        "sand" => "Arena, playa, sand, beach",
        other => return format!("Superficie, surface: {}", humanize(other)),
    };
    terms.to_owned()
}

/// The bilingual names of an amenity value.
fn amenity_terms(amenity: &str) -> String {
    let terms = match amenity {
        "changing_rooms" => "vestuarios, changing rooms",
        "showers" => "duchas, showers",
        "lockers" => "taquillas, casilleros, lockers",
        "equipment_rental" => "alquiler de material, equipment rental",
        "cafe" => "cafetería, bar, café",
        "accessible" => "accesible, wheelchair accessible",
        "parking" => "aparcamiento, estacionamiento, parking",
        other => return humanize(other),
    };
    terms.to_owned()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn render(sport: &str, spec: Value) -> SearchDocument {
        SearchDocument::render("Pista 1", sport, "Una pista.", &spec)
    }

    #[test]
    fn a_covered_court_is_playable_in_the_rain_in_both_languages() {
        let doc = render("padel", json!({"covered": true, "indoor": false}));
        assert!(doc.details.contains("bajo la lluvia"));
        assert!(doc.details.contains("rain-proof"));
        assert!(!doc.details.contains("indoor"));
    }

    #[test]
    fn an_indoor_facility_is_covered_even_without_the_covered_key() {
        let doc = render("squash", json!({"indoor": true}));
        assert!(doc.details.contains("indoor"));
        assert!(doc.details.contains("bajo techo"));
    }

    #[test]
    fn a_lit_court_is_for_night_play_and_an_unlit_one_never_mentions_lights() {
        let lit = render("tennis", json!({"lighting": true}));
        assert!(lit.details.contains("para jugar de noche"));
        assert!(lit.details.contains("floodlights"));
        let unlit = render("tennis", json!({"lighting": false}));
        for word in ["ilumin", "luces", "noche", "night", "floodlight"] {
            assert!(!unlit.details.contains(word), "{word} in {}", unlit.details);
        }
    }

    #[test]
    fn an_unheated_pool_never_mentions_heating() {
        let doc = render("swimming", json!({"heated": false, "lanes": 6}));
        assert!(!doc.details.to_lowercase().contains("climatiz"));
        assert!(!doc.details.contains("heated"));
        assert!(doc.details.contains("6 lanes"));
    }

    #[test]
    fn surfaces_are_named_in_both_languages() {
        let doc = render("football-5", json!({"surface": "artificial_turf"}));
        assert!(
            doc.details.contains("césped sintético") || doc.details.contains("Césped sintético")
        );
        assert!(doc.details.contains("artificial turf"));
        let clay = render("tennis", json!({"surface": "clay"}));
        assert!(clay.details.contains("tierra batida") && clay.details.contains("clay"));
    }

    #[test]
    fn sports_are_named_in_both_languages() {
        assert!(render("padel", json!({})).sport.contains("pádel"));
        assert!(render("padel", json!({})).sport.contains("paddle tennis"));
        assert!(
            render("football-5", json!({}))
                .sport
                .contains("five-a-side")
        );
        assert!(render("swimming", json!({})).sport.contains("piscina"));
    }

    #[test]
    fn every_demo_sport_has_its_own_terms() {
        for slug in [
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
            "table-tennis",
            "climbing",
            "gym-room",
            "multi-sport",
            "field-hockey",
        ] {
            assert!(sport(slug).is_some(), "{slug}");
        }
    }

    #[test]
    fn unknown_sports_and_keys_stay_searchable_by_their_own_words() {
        let doc = render("ice-hockey", json!({"roof_type": "air_dome", "seats": 200}));
        assert_eq!(doc.sport, "ice hockey");
        assert!(doc.details.contains("roof type: air dome"));
        assert!(doc.details.contains("seats: 200"));
    }

    #[test]
    fn amenities_are_listed_in_both_languages() {
        let doc = render(
            "squash",
            json!({"amenities": ["showers", "lockers", "sauna"]}),
        );
        assert!(doc.details.contains("duchas, showers"));
        assert!(doc.details.contains("taquillas"));
        assert!(doc.details.contains("sauna"));
    }

    #[test]
    fn the_text_joins_summary_name_sport_and_details_in_that_order() {
        let doc = SearchDocument::render("  Pista   1 ", "tennis", "Desc", &json!("not an object"));
        assert_eq!(
            doc.text(),
            "A tennis court. Pista 1. tenis, tennis, pista de tenis, cancha de tenis, \
             tennis court. Desc"
        );
    }

    #[test]
    fn the_summary_is_one_english_sentence_from_the_specifications() {
        let court = render(
            "tennis",
            json!({"covered": false, "indoor": false, "lighting": true, "surface": "clay"}),
        );
        assert_eq!(
            court.summary,
            "An outdoor tennis court with floodlights for night play, on clay."
        );
        let pool = render(
            "swimming",
            json!({"covered": true, "indoor": true, "heated": true, "length_m": 25, "lanes": 6}),
        );
        assert_eq!(
            pool.summary,
            "An indoor heated swimming pool, 25 metres long, with 6 lanes."
        );
        let unknown = render("ice-hockey", json!({"covered": true, "surface": "ice"}));
        assert_eq!(unknown.summary, "A covered ice hockey facility on ice.");
    }
}
