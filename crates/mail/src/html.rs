//! HTML escaping and the one page layout every message shares.
//!
//! Every value that reaches HTML goes through [`escape`]: a club or facility name is typed by
//! staff, a display name by anyone who registers.

/// Escapes text for an HTML element body or a double- or single-quoted attribute value.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole HTML document around `body` (already escaped HTML). `title` is escaped here.
pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n\
         <html lang=\"en\">\n\
         <head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title}</title></head>\n\
         <body style=\"margin:0;padding:24px;background:#f4f5f7;font-family:Helvetica,Arial,sans-serif;color:#1f2933;\">\n\
         <div style=\"max-width:560px;margin:0 auto;background:#ffffff;border-radius:8px;padding:24px;\">\n\
         {body}\
         <p style=\"margin-top:32px;font-size:12px;color:#7b8794;\">Club Pulse</p>\n\
         </div>\n\
         </body>\n\
         </html>\n",
        title = escape(title),
    )
}

/// A paragraph of escaped text.
pub(crate) fn paragraph(text: &str) -> String {
    format!("<p>{}</p>\n", escape(text))
}

/// A button-styled link; both `url` and `label` are escaped.
pub(crate) fn button(url: &str, label: &str) -> String {
    format!(
        "<p><a href=\"{url}\" style=\"display:inline-block;padding:10px 18px;background:#2563eb;\
         color:#ffffff;text-decoration:none;border-radius:6px;\">{label}</a></p>\n",
        url = escape(url),
        label = escape(label),
    )
}

/// A two-column table of label and value rows, all escaped.
pub(crate) fn table(rows: &[(&str, &str)]) -> String {
    let mut out = String::from("<table style=\"border-collapse:collapse;margin:16px 0;\">\n");
    for (label, value) in rows {
        out.push_str(&format!(
            "<tr><th style=\"text-align:left;padding:4px 16px 4px 0;color:#52606d;font-weight:normal;\">{}</th>\
             <td style=\"padding:4px 0;\">{}</td></tr>\n",
            escape(label),
            escape(value),
        ));
    }
    out.push_str("</table>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_characters_are_escaped() {
        assert_eq!(
            escape(r#"<script>alert("x&y")</script> O'Neil"#),
            "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt; O&#39;Neil"
        );
        assert_eq!(escape("Pádel Ñ"), "Pádel Ñ");
    }

    #[test]
    fn helpers_escape_what_they_are_given() {
        assert_eq!(paragraph("a<b"), "<p>a&lt;b</p>\n");
        let b = button("https://x.example/?a=1&b=\"2\"", "Go <now>");
        assert!(b.contains("href=\"https://x.example/?a=1&amp;b=&quot;2&quot;\""));
        assert!(b.contains(">Go &lt;now&gt;</a>"));
        let t = table(&[("Club", "A & B")]);
        assert!(t.contains("<td style=\"padding:4px 0;\">A &amp; B</td>"));
        assert!(page("<T>", "").contains("<title>&lt;T&gt;</title>"));
    }
}
