//! Output for people: aligned columns, rates with units, ETAs, percents.

use bittide_driver::units::human;

/// Columns of text, padded to the widest cell; numeric columns are
/// right-aligned.
pub(crate) struct Table {
    headers: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these columns: `(header, right-aligned)`.
    pub(crate) fn new(columns: &[(&'static str, bool)]) -> Table {
        Table {
            headers: columns.iter().map(|c| c.0).collect(),
            right: columns.iter().map(|c| c.1).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (one cell per column).
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table, one line per row after the header; trailing spaces
    /// trimmed.
    pub(crate) fn render(&self) -> String {
        let width = |i: usize| {
            self.rows
                .iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .chain([self.headers[i].len()])
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..self.headers.len()).map(width).collect();
        let header: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        let mut out = String::new();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                let w = widths.get(i).copied().unwrap_or(0);
                let pad = " ".repeat(w.saturating_sub(cell.chars().count()));
                if i > 0 {
                    line.push_str("  ");
                }
                if self.right.get(i) == Some(&true) {
                    line.push_str(&pad);
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.push_str(&pad);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `text` cut to `max` characters, the cut marked with `…`.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A rate in bytes/s: `1.5 MiB/s`, or `-` for nothing.
pub(crate) fn rate(bytes_per_second: u64) -> String {
    if bytes_per_second == 0 {
        "-".to_owned()
    } else {
        format!("{}/s", human(bytes_per_second))
    }
}

/// Time left: `45s`, `3m20s`, `2h05m`, `3d04h`, or `-` when unknown.
pub(crate) fn eta(seconds: Option<u64>) -> String {
    let Some(s) = seconds else {
        return "-".to_owned();
    };
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

/// A 0–1 fraction as a percentage with one decimal, never showing 100%
/// before it is complete.
pub(crate) fn percent(fraction: f64) -> String {
    let p = (fraction * 1000.0).floor() / 10.0;
    format!("{:.1}%", p.clamp(0.0, 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up() {
        let mut t = Table::new(&[("NAME", false), ("SIZE", true)]);
        t.row(vec!["a".into(), "10 B".into()]);
        t.row(vec!["longer".into(), "1.5 KiB".into()]);
        assert_eq!(
            t.render(),
            "NAME       SIZE\na          10 B\nlonger  1.5 KiB\n"
        );
    }

    #[test]
    fn values_for_people() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
        assert_eq!(rate(0), "-");
        assert_eq!(rate(1536), "1.5 KiB/s");
        assert_eq!(eta(None), "-");
        assert_eq!(eta(Some(45)), "45s");
        assert_eq!(eta(Some(200)), "3m20s");
        assert_eq!(eta(Some(7500)), "2h05m");
        assert_eq!(eta(Some(3 * 86400 + 4 * 3600)), "3d04h");
        assert_eq!(percent(0.9999), "99.9%");
        assert_eq!(percent(1.0), "100.0%");
        assert_eq!(percent(0.0), "0.0%");
    }
}
