//! Python's `tabulate` 0.9 in its `plain` format, as the official envvars client calls it:
//! `tabulate(rows, headers=[bold names], tablefmt="plain")`.
//!
//! What shows in the output, and is therefore reproduced:
//! - each column gets the most generic type of its cells (bool < int < float < str), parsed
//!   from the text as Python's `int()` and `float()` would; a number column is aligned right
//!   on its decimal points (`"1.5"` over `" 10  "`), float cells are re-formatted with
//!   `format(x, "g")` (`"1e5"` shows as `100000`), text is aligned left;
//! - text cells are stripped of surrounding whitespace (number cells are not);
//! - a column is at least as wide as its header plus 2;
//! - columns are separated by two spaces and every line is right-stripped;
//! - once any cell holds `\r` or `\n`, rows are split into lines (Python's `splitlines`),
//!   shorter cells padded with blank lines; a row whose cells are all empty then vanishes.
//!
//! Not reproduced: ANSI escape sequences inside cells count towards the width (tabulate
//! would not count them); widths count characters, as `tabulate` does without `wcwidth`.
//!
//! Headers are bold (`click.style(bold=True)`) when `bold` is set, as `click.echo` keeps the
//! escape codes only on a terminal.

/// A cell's type as tabulate infers it from the text, least generic first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum CellType {
    Bool,
    Int,
    Float,
    Str,
}

/// How a column is aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    /// Right, on the decimal point.
    Decimal,
}

/// The `plain` table of `rows` under `headers`, without a final newline.
pub fn plain_table(headers: &[&str], rows: &[Vec<String>], bold: bool) -> String {
    let is_multiline = rows
        .iter()
        .flatten()
        .any(|cell| cell.contains(['\r', '\n']));
    let n_columns = headers.len();
    let mut columns: Vec<Vec<String>> = Vec::with_capacity(n_columns);
    let mut aligns = Vec::with_capacity(n_columns);
    let mut widths = Vec::with_capacity(n_columns);
    for (column_idx, header) in headers.iter().enumerate() {
        let cells: Vec<&str> = rows
            .iter()
            .map(|row| row.get(column_idx).map_or("", String::as_str))
            .collect();
        let column_type = cells
            .iter()
            .map(|cell| cell_type(cell))
            .fold(CellType::Bool, Ord::max);
        let align = match column_type {
            CellType::Int | CellType::Float => Align::Decimal,
            CellType::Bool | CellType::Str => Align::Left,
        };
        let formatted: Vec<String> = cells
            .iter()
            .map(|cell| match column_type {
                CellType::Float => format_g(parse_py_float(cell).unwrap_or(f64::NAN)),
                _ => (*cell).to_owned(),
            })
            .collect();
        let min_width = header.chars().count() + 2;
        let (padded, width) = align_column(formatted, align, min_width, is_multiline);
        columns.push(padded);
        aligns.push(align);
        widths.push(width);
    }

    let mut lines = Vec::with_capacity(rows.len() + 1);
    let header_cells: Vec<String> = headers
        .iter()
        .zip(&aligns)
        .zip(&widths)
        .map(|((header, align), width)| {
            let padded = pad(header, *width, *align);
            if bold {
                padded.replacen(header, &format!("\x1b[1m{header}\x1b[0m"), 1)
            } else {
                padded
            }
        })
        .collect();
    lines.push(simple_row(&header_cells));
    for row_idx in 0..rows.len() {
        let cells: Vec<&str> = columns
            .iter()
            .map(|column| column[row_idx].as_str())
            .collect();
        if !is_multiline {
            lines.push(simple_row(&cells));
            continue;
        }
        let cell_lines: Vec<Vec<&str>> = cells.iter().map(|cell| splitlines(cell)).collect();
        let n_lines = cell_lines.iter().map(Vec::len).max().unwrap_or(0);
        for line_idx in 0..n_lines {
            let line: Vec<String> = cell_lines
                .iter()
                .zip(&widths)
                .map(|(cell, width)| match cell.get(line_idx) {
                    Some(text) => (*text).to_owned(),
                    None => " ".repeat(*width),
                })
                .collect();
            lines.push(simple_row(&line));
        }
    }
    lines.join("\n")
}

/// Cells joined by two spaces, right-stripped (`_build_simple_row`).
fn simple_row(cells: &[impl AsRef<str>]) -> String {
    let joined: Vec<&str> = cells.iter().map(AsRef::as_ref).collect();
    joined.join("  ").trim_end_matches(is_py_space).to_owned()
}

/// Strips (left) or decimal-aligns the cells, pads them to the column's width and returns
/// them with that width (`_align_column`).
fn align_column(
    cells: Vec<String>,
    align: Align,
    min_width: usize,
    is_multiline: bool,
) -> (Vec<String>, usize) {
    let cells: Vec<String> = match align {
        Align::Left => cells
            .iter()
            .map(|cell| cell.trim_matches(is_py_space).to_owned())
            .collect(),
        Align::Decimal => {
            let decimals: Vec<isize> = cells.iter().map(|cell| after_point(cell)).collect();
            let max_decimals = decimals.iter().copied().max().unwrap_or(-1);
            cells
                .into_iter()
                .zip(decimals)
                .map(|(cell, decimals)| {
                    let missing = usize::try_from(max_decimals - decimals).unwrap_or(0);
                    cell + &" ".repeat(missing)
                })
                .collect()
        }
    };
    let width = cells
        .iter()
        .map(|cell| width_of(cell, is_multiline))
        .max()
        .unwrap_or(0)
        .max(min_width);
    let padded = cells
        .iter()
        .map(|cell| {
            if is_multiline {
                splitlines(cell)
                    .into_iter()
                    .map(|line| pad(line, width, align))
                    .collect::<Vec<_>>()
                    .join("\n")
            } else {
                pad(cell, width, align)
            }
        })
        .collect();
    (padded, width)
}

/// The width of a cell: of its longest line (split at `\r` and `\n`) when multi-line.
fn width_of(cell: &str, is_multiline: bool) -> usize {
    if is_multiline {
        cell.split(['\r', '\n'])
            .map(|line| line.chars().count())
            .max()
            .unwrap_or(0)
    } else {
        cell.chars().count()
    }
}

/// `text` padded with spaces to `width` characters, on the right (left-aligned) or left.
fn pad(text: &str, width: usize, align: Align) -> String {
    let fill = " ".repeat(width.saturating_sub(text.chars().count()));
    match align {
        Align::Left => format!("{text}{fill}"),
        Align::Decimal => format!("{fill}{text}"),
    }
}

/// The type tabulate gives a cell (`_type` on a string).
fn cell_type(cell: &str) -> CellType {
    if cell == "True" || cell == "False" {
        CellType::Bool
    } else if is_py_int(cell) {
        CellType::Int
    } else if is_py_number(cell) {
        CellType::Float
    } else {
        CellType::Str
    }
}

/// Characters after the decimal point (or the exponent's `e`); -1 for integers and text
/// (`_afterpoint`).
fn after_point(cell: &str) -> isize {
    if !is_py_number(cell) || is_py_int(cell) {
        return -1;
    }
    let pos = cell.rfind('.').or_else(|| cell.to_lowercase().rfind('e'));
    match pos {
        Some(pos) => isize::try_from(cell.len() - pos - 1).unwrap_or(isize::MAX),
        None => -1,
    }
}

/// Python's `str.isspace`: Unicode white space and the separators `\x1c`–`\x1f`.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// Python's `str.splitlines()`: the lines, without their ends, and no empty last line.
pub fn splitlines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((idx, c)) = chars.next() {
        let is_break = matches!(
            c,
            '\n' | '\r'
                | '\x0b'
                | '\x0c'
                | '\x1c'
                | '\x1d'
                | '\x1e'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if !is_break {
            continue;
        }
        lines.push(&text[start..idx]);
        let mut end = idx + c.len_utf8();
        if c == '\r'
            && let Some((next_idx, '\n')) = chars.peek().copied()
        {
            chars.next();
            end = next_idx + 1;
        }
        start = end;
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// Whether Python's `int(text)` accepts `text` (ASCII digits only: Python also takes other
/// Unicode decimal digits).
fn is_py_int(text: &str) -> bool {
    let text = text.trim_matches(is_py_space);
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    is_digit_part(digits)
}

/// Digits, with single underscores between them.
fn is_digit_part(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with('_')
        && !text.ends_with('_')
        && !text.contains("__")
        && text.chars().all(|c| c.is_ascii_digit() || c == '_')
}

/// `float(text)` as Python parses it, or `None` when Python refuses it.
fn parse_py_float(text: &str) -> Option<f64> {
    let text = text.trim_matches(is_py_space);
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let lower = unsigned.to_ascii_lowercase();
    if matches!(lower.as_str(), "inf" | "infinity" | "nan") {
        return text.to_ascii_lowercase().parse().ok();
    }
    let (mantissa, exponent) = match lower.split_once('e') {
        Some((mantissa, exponent)) => (mantissa, Some(exponent)),
        None => (lower.as_str(), None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((whole, fraction)) => {
            (whole.is_empty() || is_digit_part(whole))
                && (fraction.is_empty() || is_digit_part(fraction))
                && !(whole.is_empty() && fraction.is_empty())
        }
        None => is_digit_part(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|exponent| {
        is_digit_part(exponent.strip_prefix(['+', '-']).unwrap_or(exponent))
    });
    if !(mantissa_ok && exponent_ok) {
        return None;
    }
    text.replace('_', "").parse().ok()
}

/// tabulate's `_isnumber`: `float()` accepts it, and it is finite unless spelled `inf`,
/// `-inf` or `nan`.
fn is_py_number(text: &str) -> bool {
    match parse_py_float(text) {
        Some(value) if value.is_finite() => true,
        Some(_) => matches!(text.to_lowercase().as_str(), "inf" | "-inf" | "nan"),
        None => false,
    }
}

/// Python's `format(value, "g")`: 6 significant digits, trailing zeros removed, an exponent
/// (at least two digits) below 1e-4 and from 1e6.
pub fn format_g(value: f64) -> String {
    if value.is_nan() {
        return "nan".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    let scientific = format!("{value:.5e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("`{:e}` always writes an exponent");
    let exponent: i32 = exponent.parse().expect("`{:e}` writes an integer exponent");
    if !(-4..6).contains(&exponent) {
        let mantissa = trim_fraction(mantissa);
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs());
    }
    let decimals = usize::try_from(5 - exponent).unwrap_or(0);
    trim_fraction(&format!("{value:.decimals$}")).to_owned()
}

/// `text` without trailing zeros after a decimal point, nor a bare point.
fn trim_fraction(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}
