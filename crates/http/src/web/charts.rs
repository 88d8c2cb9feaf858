//! The dashboard's charts as server-rendered SVG: no chart library, no script. Every mark carries
//! its number as text and a `<title>`, so nothing rests on colour alone, and each chart sits beside
//! a table of the same numbers for screen readers and for copying.

use std::fmt::Write as _;

/// One cell of the weekday × hour heatmap.
#[derive(Debug, Clone, Copy)]
pub struct HeatCell {
    /// 0 = Monday … 6 = Sunday.
    pub weekday: usize,
    pub hour: usize,
    /// 0.0 ..= 1.0.
    pub rate: f64,
}

/// Greens from pale to dark; text turns white on the darker half.
fn shade(rate: f64) -> (&'static str, &'static str) {
    const STEPS: [&str; 6] = [
        "#f1f5f3", "#cfe9da", "#9fd3b5", "#5fb487", "#2e8a5a", "#0b5d3b",
    ];
    let step = ((rate.clamp(0.0, 1.0) * 5.0).round()) as usize;
    (STEPS[step], if step >= 3 { "#ffffff" } else { "#1b1f23" })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The occupancy heatmap: weekdays down, the hours that have any opening across. A weekday-hour
/// with no cell was closed throughout and shows "–".
pub fn heatmap(cells: &[HeatCell], weekdays: &[&str; 7], title: &str) -> String {
    let mut hours: Vec<usize> = cells.iter().map(|c| c.hour).collect();
    hours.sort_unstable();
    hours.dedup();
    if hours.is_empty() {
        hours = (7..23).collect();
    }
    let (cell_w, cell_h, left, top) = (34.0, 26.0, 40.0, 18.0);
    let width = left + cell_w * hours.len() as f64;
    let height = top + cell_h * 7.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart heatmap" viewBox="0 0 {width} {height}" width="{}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        width * 1.5,
        escape(title)
    );
    for (i, hour) in hours.iter().enumerate() {
        let x = left + cell_w * i as f64 + cell_w / 2.0;
        let _ = write!(
            svg,
            r#"<text x="{x}" y="12" text-anchor="middle">{hour:02}</text>"#
        );
    }
    for (day, name) in weekdays.iter().enumerate() {
        let y = top + cell_h * day as f64;
        let _ = write!(
            svg,
            r#"<text x="0" y="{}">{}</text>"#,
            y + cell_h / 2.0 + 4.0,
            escape(name)
        );
        for (i, hour) in hours.iter().enumerate() {
            let rate = cells
                .iter()
                .find(|c| c.weekday == day && c.hour == *hour)
                .map(|c| c.rate);
            let at = (left + cell_w * i as f64, y, cell_w - 2.0, cell_h - 2.0);
            heat_cell(&mut svg, day, *hour, name, at, rate);
        }
    }
    svg.push_str("</svg>");
    svg
}

/// One weekday-hour: its share in green with the percentage written on it, or "–" when closed.
fn heat_cell(
    svg: &mut String,
    day: usize,
    hour: usize,
    name: &str,
    (x, y, w, h): (f64, f64, f64, f64),
    rate: Option<f64>,
) {
    let (fill, stroke, ink, text, data) = match rate {
        Some(rate) => {
            let (fill, ink) = shade(rate);
            let percent = (rate * 100.0).round();
            (
                fill,
                "#ffffff",
                ink,
                format!("{percent}"),
                format!(r#" data-rate="{rate:.4}""#),
            )
        }
        None => (
            "#ffffff",
            "#c9d1cd",
            "#4a5560",
            "–".to_owned(),
            String::new(),
        ),
    };
    let title = if rate.is_some() {
        format!("{text} %")
    } else {
        text.clone()
    };
    let _ = write!(
        svg,
        r#"<g data-weekday="{}" data-hour="{hour}"{data}><title>{} {hour:02}:00 {title}</title><rect x="{x}" y="{y}" width="{w}" height="{h}" rx="3" fill="{fill}" stroke="{stroke}"/><text x="{}" y="{}" text-anchor="middle" fill="{ink}">{text}</text></g>"#,
        day + 1,
        escape(name),
        x + w / 2.0,
        y + h / 2.0 + 4.0,
    );
}

/// Vertical bars, one per label, each with its value written above it.
pub fn bars(values: &[(String, f64)], title: &str) -> String {
    let (bar_w, gap, plot_h, top, bottom) = (14.0, 4.0, 120.0, 16.0, 28.0);
    let width = (bar_w + gap) * values.len().max(1) as f64 + gap;
    let height = top + plot_h + bottom;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart bars" viewBox="0 0 {width} {height}" width="{}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        (width * 2.0).max(120.0),
        escape(title)
    );
    let _ = write!(
        svg,
        r##"<line x1="0" y1="{0}" x2="{width}" y2="{0}" stroke="#4a5560"/>"##,
        top + plot_h
    );
    let every = (values.len() / 10).max(1);
    for (i, (label, rate)) in values.iter().enumerate() {
        let rate = rate.clamp(0.0, 1.0);
        let h = (plot_h * rate).max(1.0);
        let x = gap + (bar_w + gap) * i as f64;
        let y = top + plot_h - h;
        let percent = (rate * 100.0).round();
        let _ = write!(
            svg,
            r##"<g data-label="{0}" data-rate="{rate:.4}"><title>{0}: {percent} %</title><rect x="{x}" y="{y}" width="{bar_w}" height="{h}" fill="#0b5d3b"/>"##,
            escape(label)
        );
        if values.len() <= 16 {
            let _ = write!(
                svg,
                r#"<text x="{}" y="{}" text-anchor="middle">{percent}</text>"#,
                x + bar_w / 2.0,
                y - 3.0
            );
        }
        svg.push_str("</g>");
        if i % every == 0 {
            let _ = write!(
                svg,
                r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
                x + bar_w / 2.0,
                top + plot_h + 14.0,
                escape(label.rsplit('-').next().unwrap_or(label))
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

    #[test]
    fn every_heatmap_cell_writes_its_percentage() {
        let svg = heatmap(
            &[
                HeatCell {
                    weekday: 0,
                    hour: 9,
                    rate: 0.5,
                },
                HeatCell {
                    weekday: 6,
                    hour: 10,
                    rate: 1.0,
                },
            ],
            &DAYS,
            "Occupancy <by hour>",
        );
        assert!(svg.contains(r#"data-weekday="1" data-hour="9" data-rate="0.5000""#));
        assert!(svg.contains(">50</text>"));
        assert!(svg.contains(">100</text>"));
        assert_eq!(svg.matches("<rect").count(), 7 * 2);
        assert_eq!(
            svg.matches(">–</text>").count(),
            7 * 2 - 2,
            "the closed hours"
        );
        assert!(svg.contains("aria-label=\"Occupancy &lt;by hour&gt;\""));
    }

    #[test]
    fn bars_are_as_tall_as_their_rate() {
        let svg = bars(
            &[("2026-12-01".into(), 0.25), ("2026-12-02".into(), 0.0)],
            "Use",
        );
        assert!(svg.contains(r#"height="30""#), "{svg}");
        assert!(svg.contains("<title>2026-12-02: 0 %</title>"));
    }
}
