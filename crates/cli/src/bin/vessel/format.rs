//! Output helpers shared by the `vessel` commands: docker's human sizes and
//! durations, its table layout, pretty JSON, and a small subset of its Go
//! templates for `--format`.

use std::io::{self, Write};

use anyhow::{anyhow, Result};
use serde_json::Value;

/// docker's `HumanSizeWithPrecision(n, 3)`: decimal units, 3 significant digits.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let mut s = format!("{v:.digits$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", UNITS[i])
}

/// docker's `HumanDuration` + " ago" for a UNIX time (`N/A` when unknown).
pub fn since(t: i64) -> String {
    if t <= 0 {
        return "N/A".into();
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let s = (now - t).max(0);
    let (m, h) = (s / 60, s / 3600);
    let d = if s < 1 {
        "Less than a second".to_string()
    } else if s == 1 {
        "1 second".into()
    } else if s < 60 {
        format!("{s} seconds")
    } else if m == 1 {
        "About a minute".into()
    } else if m < 60 {
        format!("{m} minutes")
    } else if h == 1 {
        "About an hour".into()
    } else if h < 48 {
        format!("{h} hours")
    } else if h < 24 * 7 * 2 {
        format!("{} days", h / 24)
    } else if h < 24 * 30 * 2 {
        format!("{} weeks", h / 24 / 7)
    } else if h < 24 * 365 * 2 {
        format!("{} months", h / 24 / 30)
    } else {
        format!("{} years", h / 24 / 365)
    };
    format!("{d} ago")
}

pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let cut: String = s.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}

/// Columns as docker's tabwriter sets them: at least 10 wide, 3 spaces apart.
pub fn print_table(head: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (n, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if n + 1 == cells.len() {
                s.push_str(c);
            } else {
                let pad = (w + 3).max(10) - c.chars().count();
                s.push_str(c);
                s.push_str(&" ".repeat(pad));
            }
        }
        println!("{}", s.trim_end());
    };
    line(head.to_vec());
    for r in &rows {
        line(r.iter().map(String::as_str).collect());
    }
}

/// Pretty JSON with docker's 4-space indentation.
pub fn print_json(v: &Value) -> Result<()> {
    let mut out = io::stdout().lock();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut out,
        serde_json::ser::PrettyFormatter::with_indent(b"    "),
    );
    serde::Serialize::serialize(v, &mut ser)?;
    writeln!(out)?;
    Ok(())
}

/// A small subset of docker's Go templates: `{{.A.B}}` (strings as they
/// are, other values as JSON) and `{{json .A}}`; `\t` and `\n` escapes.
pub fn render(template: &str, v: &Value) -> Result<String> {
    let template = template.replace("\\t", "\t").replace("\\n", "\n");
    let mut out = String::new();
    let mut rest = template.as_str();
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find("}}")
            .ok_or_else(|| anyhow!("Template {template:?}: unclosed {{{{"))?;
        let expr = rest[start + 2..start + end].trim();
        let (as_json, path) = match expr.strip_prefix("json ") {
            Some(p) => (true, p.trim()),
            None => (false, expr),
        };
        let path = path
            .strip_prefix('.')
            .ok_or_else(|| anyhow!("Template {template:?}: {expr:?} is not supported (use {{{{.Field}}}} or {{{{json .Field}}}})"))?;
        let mut cur = v;
        for part in path.split('.').filter(|p| !p.is_empty()) {
            cur = cur
                .get(part)
                .ok_or_else(|| anyhow!("Template {template:?}: no field {part:?}"))?;
        }
        match cur {
            Value::String(s) if !as_json => out.push_str(s),
            other => out.push_str(&other.to_string()),
        }
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Seconds since the UNIX epoch of an RFC 3339 UTC time
/// (`2026-11-21T10:00:00.123Z`); 0 when it does not parse.
pub fn unix_time(rfc3339: &str) -> i64 {
    let parse = || -> Option<i64> {
        let (date, time) = rfc3339.split_once('T')?;
        let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
        let (y, m, day) = (d.next()??, d.next()??, d.next()??);
        let mut t = time.get(..8)?.splitn(3, ':').map(|p| p.parse::<i64>().ok());
        let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
        // Days from civil (Howard Hinnant's algorithm).
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
    };
    parse().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_times_and_templates_read_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(12_345), "12.3kB");
        assert_eq!(human_size(4_260_000), "4.26MB");
        assert_eq!(unix_time("1970-01-01T00:00:10Z"), 10);
        assert_eq!(unix_time("2026-11-21T10:00:00.5Z"), 1_795_255_200);
        assert_eq!(unix_time("garbage"), 0);
        assert_eq!(since(0), "N/A");
        let v = serde_json::json!({"Id": "x", "Config": {"Cmd": ["sh"]}});
        assert_eq!(
            render("{{.Id}}\\t{{json .Config.Cmd}}", &v).unwrap(),
            "x\t[\"sh\"]"
        );
        assert!(render("{{.Nope}}", &v).is_err());
        assert_eq!(ellipsis("abcdef", 4), "abc…");
    }
}
