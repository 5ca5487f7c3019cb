//! The defaults tables of `docs/operations.md`, read and compared with the code, so a
//! documented default cannot drift from its constant.
//!
//! The rule: in a section (`## Title`), a *defaults table* is a Markdown table whose
//! header's second cell is `default`. In each of its rows the first cell names a setting
//! (matched as written, backticks included) and the second cell begins with its default.
//! The quantities of that cell are read in order: a number (thousands may be separated by
//! spaces: `2 000 000`; `×2` is 2) followed by an optional unit, `ms`, `s`, `min`, `h` (a
//! duration) or `B`, `bytes`, `KiB`, `MiB`, `GiB` (a size, in bytes); any other word after
//! a number (`16 per access key`, `16384 events`) leaves it a plain number. A row is
//! checked against the values its test gives for it, in order (more quantities in the cell
//! than values are prose, not checked), or against a text the cell must begin with. Every
//! row of every defaults table in the section must be named by its test, checked or
//! unchecked with a reason, and every row the test names must be in the doc.
#![allow(dead_code)]

use std::fmt;
use std::time::Duration;

/// A default as the doc writes it and the code holds it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Quantity {
    Duration(Duration),
    /// A count, a size in bytes, a factor or a version (`1.57`).
    Number(f64),
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Duration(d) => write!(f, "{d:?}"),
            Self::Number(n) => write!(f, "{n}"),
        }
    }
}

impl From<Duration> for Quantity {
    fn from(d: Duration) -> Self {
        Self::Duration(d)
    }
}

macro_rules! number_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Quantity {
            fn from(n: $t) -> Self {
                Self::Number(n as f64)
            }
        }
    )*};
}
number_from!(usize, u64, u32, u16, f32, f64);

/// What a row's default must be.
pub enum Expected {
    /// These quantities, first in the cell, in order; each with the expression it came
    /// from, for the message.
    Quantities(Vec<(&'static str, Quantity)>),
    /// The cell begins with this text.
    Text(String),
    /// Not compared, and why (a behaviour rather than a value, or checked elsewhere).
    Unchecked(&'static str),
}

/// One documented setting and what its default must be.
pub struct Row {
    pub setting: &'static str,
    pub expected: Expected,
}

/// A row whose default cell begins with the values of these expressions:
/// `row!("`ClientConfig::connect_timeout`" => DEFAULT_CONNECT_TIMEOUT)` (declare the module
/// `#[macro_use] mod defaults_table;` at the crate root).
macro_rules! row {
    ($setting:literal => $($value:expr),+ $(,)?) => {
        $crate::defaults_table::Row {
            setting: $setting,
            expected: $crate::defaults_table::Expected::Quantities(vec![
                $((stringify!($value), $crate::defaults_table::Quantity::from($value))),+
            ]),
        }
    };
}

/// A row whose default cell begins with `text`.
pub fn text(setting: &'static str, text: impl Into<String>) -> Row {
    Row {
        setting,
        expected: Expected::Text(text.into()),
    }
}

/// A row that is not compared, and why.
pub fn unchecked(setting: &'static str, why: &'static str) -> Row {
    Row {
        setting,
        expected: Expected::Unchecked(why),
    }
}

/// Checks every defaults table of section `section` (a `## ` heading that begins with
/// it) of the document at `path` (relative to the workspace root) against `rows`;
/// panics naming every row that differs, is missing, or is not named.
pub fn check(path: &str, section: &str, rows: &[Row]) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = root
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").exists())
        .expect("the workspace root");
    let doc = std::fs::read_to_string(root.join(path)).expect("the document");
    let documented = defaults_rows(&doc, section);
    assert!(
        !documented.is_empty(),
        "{path}: no defaults table in section {section:?} (a table whose second header cell is `default`)"
    );
    let mut problems = Vec::new();
    for (line, setting, default) in &documented {
        let place = format!("{path}:{line}, section {section:?}, row {setting:?}");
        let Some(row) = rows.iter().find(|r| r.setting == setting) else {
            problems.push(format!(
                "{place}: not named by the test; add it, checked or unchecked with a reason"
            ));
            continue;
        };
        match &row.expected {
            Expected::Unchecked(_) => {}
            Expected::Text(text) => {
                if !default.starts_with(text.as_str()) {
                    problems.push(format!(
                        "{place}: the doc says {default:?}, the code {text:?}"
                    ));
                }
            }
            Expected::Quantities(values) => {
                let found = quantities(default);
                for (i, (expr, value)) in values.iter().enumerate() {
                    match found.get(i) {
                        Some(doc) if same(*doc, *value) => {}
                        Some(doc) => problems.push(format!(
                            "{place}: the doc says {doc} ({default:?}), the code {value} ({expr})"
                        )),
                        None => problems.push(format!(
                            "{place}: the doc gives no quantity {} ({default:?}); the code has {value} ({expr})",
                            i + 1
                        )),
                    }
                }
            }
        }
    }
    for row in rows {
        if !documented
            .iter()
            .any(|(_, setting, _)| setting == row.setting)
        {
            problems.push(format!(
                "{path}, section {section:?}: row {:?} is not in the doc's defaults tables",
                row.setting
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

fn same(a: Quantity, b: Quantity) -> bool {
    match (a, b) {
        (Quantity::Duration(a), Quantity::Duration(b)) => a == b,
        (Quantity::Number(a), Quantity::Number(b)) => (a - b).abs() < 1e-9,
        _ => false,
    }
}

/// The titles of the sections that hold a defaults table.
pub fn sections_with_defaults(doc: &str) -> Vec<String> {
    let mut sections = Vec::new();
    let mut current = String::new();
    for line in doc.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            current = title.to_owned();
        } else if !current.is_empty()
            && !sections.contains(&current)
            && !defaults_rows(doc, &current).is_empty()
        {
            sections.push(current.clone());
        }
    }
    sections
}

/// The rows of the defaults tables of `section`: (line number, first cell, second cell).
pub fn defaults_rows(doc: &str, section: &str) -> Vec<(usize, String, String)> {
    let mut rows = Vec::new();
    let mut in_section = false;
    let mut in_table = false;
    let lines: Vec<&str> = doc.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if let Some(title) = line.strip_prefix("## ") {
            in_section = title.starts_with(section);
            in_table = false;
            continue;
        }
        if !in_section {
            continue;
        }
        let is_row = line.trim_start().starts_with('|');
        if !is_row {
            in_table = false;
            continue;
        }
        let cells = cells(line);
        let next_is_rule = lines.get(i + 1).is_some_and(|l| l.contains("---"));
        if !in_table && next_is_rule {
            // A header: a defaults table when its second cell says so.
            in_table = cells.get(1).is_some_and(|c| c == "default");
            continue;
        }
        if in_table && !line.contains("---") && cells.len() >= 2 {
            rows.push((i + 1, cells[0].clone(), cells[1].clone()));
        }
    }
    rows
}

fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(|c| c.trim().to_owned()).collect()
}

/// The quantities of a cell, in order.
pub fn quantities(cell: &str) -> Vec<Quantity> {
    let chars: Vec<char> = cell.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let starts_number = chars[i].is_ascii_digit()
            && (i == 0
                || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_' || chars[i - 1] == '.'));
        if !starts_number {
            i += 1;
            continue;
        }
        let mut digits = String::new();
        while i < chars.len() && chars[i].is_ascii_digit() {
            digits.push(chars[i]);
            i += 1;
        }
        // Thousands separated by spaces: ` ddd` not followed by another digit.
        while i + 3 < chars.len()
            && chars[i] == ' '
            && chars[i + 1..=i + 3].iter().all(char::is_ascii_digit)
            && chars.get(i + 4).is_none_or(|c| !c.is_ascii_digit())
        {
            digits.extend(&chars[i + 1..=i + 3]);
            i += 4;
        }
        if i + 1 < chars.len() && chars[i] == '.' && chars[i + 1].is_ascii_digit() {
            digits.push('.');
            i += 1;
            while i < chars.len() && chars[i].is_ascii_digit() {
                digits.push(chars[i]);
                i += 1;
            }
        }
        let n: f64 = digits.parse().expect("digits");
        let mut j = i;
        while j < chars.len() && chars[j] == ' ' {
            j += 1;
        }
        let mut unit = String::new();
        while j < chars.len() && chars[j].is_alphabetic() {
            unit.push(chars[j]);
            j += 1;
        }
        let scaled = |factor: f64| Quantity::Number(n * factor);
        let duration = |secs: f64| Quantity::Duration(Duration::from_secs_f64(n * secs));
        let quantity = match unit.as_str() {
            "ms" => duration(1e-3),
            "s" => duration(1.0),
            "min" => duration(60.0),
            "h" => duration(3600.0),
            "B" | "bytes" => scaled(1.0),
            "KiB" => scaled(1024.0),
            "MiB" => scaled(1024.0 * 1024.0),
            "GiB" => scaled(1024.0 * 1024.0 * 1024.0),
            _ => Quantity::Number(n),
        };
        out.push(quantity);
    }
    out
}

#[test]
fn cells_read_as_the_rule_says() {
    assert_eq!(
        quantities("800 ms initial, ×2, 30 s max, reset after 2 min healthy"),
        [
            Quantity::Duration(Duration::from_millis(800)),
            Quantity::Number(2.0),
            Quantity::Duration(Duration::from_secs(30)),
            Quantity::Duration(Duration::from_secs(120)),
        ]
    );
    assert_eq!(quantities("2 000 000"), [Quantity::Number(2e6)]);
    assert_eq!(
        quantities("1 MiB, then 64 KiB and 256 bytes"),
        [
            Quantity::Number(1048576.0),
            Quantity::Number(65536.0),
            Quantity::Number(256.0)
        ]
    );
    assert_eq!(
        quantities("10 s (`DEFAULT_X2`), 16 per access key, at most 1.57"),
        [
            Quantity::Duration(Duration::from_secs(10)),
            Quantity::Number(16.0),
            Quantity::Number(1.57)
        ]
    );
    let doc = "## Limits here\n\n| limit | default | what |\n|---|---|---|\n| `a` | 5 s | x |\n| b | 4 KiB | y |\n\n| other | when |\n|---|---|\n| c | d |\n## Next\n| e | default |\n|---|---|\n| f | 1 s |\n";
    assert_eq!(
        defaults_rows(doc, "Limits"),
        [
            (5, "`a`".to_owned(), "5 s".to_owned()),
            (6, "b".to_owned(), "4 KiB".to_owned())
        ]
    );
}
