//! The page: one section under another, one column per run, inline SVG and plain HTML
//! tables, and nothing fetched from anywhere.

use super::RunFolder;
use super::compare::Divergence;
use super::sections::{self, Section};

/// Text made safe to put in HTML (element content or a quoted attribute).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
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

/// A table: a header row and rows of cells, all escaped.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut html = String::from("<table><tr>");
    for h in header {
        html += &format!("<th>{}</th>", escape(h));
    }
    html += "</tr>";
    for row in rows {
        html += "<tr>";
        for cell in row {
            html += &format!("<td>{}</td>", escape(cell));
        }
        html += "</tr>";
    }
    html + "</table>"
}

/// A JSON number as a reader wants it: whole numbers as they are, others to one decimal.
pub fn number(value: &serde_json::Value) -> String {
    match (value.as_u64(), value.as_f64()) {
        (Some(n), _) => n.to_string(),
        (None, Some(x)) => format!("{x:.1}"),
        _ => value.to_string(),
    }
}

/// What a section shows when the run holds nothing for it.
pub fn empty(why: &str) -> String {
    format!("<p class=\"empty\">{}</p>", escape(why))
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222;background:#fff}\
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}\
.caption{color:#555;max-width:60em}.runs{display:grid;gap:1.5em}\
.run{min-width:0;overflow-x:auto}.run h3{font-size:1em;color:#555;margin:0.3em 0}\
table{border-collapse:collapse;font-size:0.85em;margin:0.5em 0}\
td,th{border:1px solid #ddd;padding:2px 6px;text-align:left}\
.empty{color:#777;font-style:italic}.warn{color:#a40}\
.diverge{background:#fff6e0;padding:0.5em 1em;border:1px solid #e0c080}\
code{font-size:0.85em;word-break:break-all}svg{max-width:100%;height:auto}";

/// The whole page for `runs` (one, or two side by side).
pub fn render(runs: &[RunFolder], divergence: Option<&Divergence>) -> Result<String, String> {
    let names: Vec<String> = runs.iter().map(|r| r.dir.display().to_string()).collect();
    let title = match names.as_slice() {
        [a, b] => format!("Agora run report: {a} vs {b}"),
        _ => format!("Agora run report: {}", names.join(", ")),
    };
    let mut html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{}</title><style>{STYLE}</style></head><body><h1>{}</h1>",
        escape(&title),
        escape(&title)
    );
    if let Some(divergence) = divergence {
        html += &format!(
            "<div class=\"diverge\" id=\"divergence\">{}</div>",
            divergence.to_html()
        );
    }
    let per_run: Vec<Vec<Section>> = runs.iter().map(sections::all).collect::<Result<_, _>>()?;
    let columns = format!(
        "style=\"grid-template-columns:repeat({},minmax(0,1fr))\"",
        runs.len()
    );
    for (i, first) in per_run[0].iter().enumerate() {
        html += &format!(
            "<section id=\"{}\"><h2>{}</h2><p class=\"caption\">{}</p><div class=\"runs\" {columns}>",
            first.id,
            escape(first.title),
            escape(&first.caption)
        );
        for (run, sections) in names.iter().zip(&per_run) {
            html += "<div class=\"run\">";
            if runs.len() > 1 {
                html += &format!("<h3>{}</h3>", escape(run));
            }
            html += &sections[i].body;
            html += "</div>";
        }
        html += "</div></section>";
    }
    Ok(html + "</body></html>\n")
}
