//! The three table formats of Python's `tabulate` 0.9 that the official jobs client prints:
//! `pretty` (`list`, `images`), `grid` (`show`) and `simple` (`quota`).
//!
//! Cells are JSON values standing for the Python values the client hands to `tabulate`
//! (`null` is `None`). What is reproduced, because it shows in the output:
//! - each column gets the most generic type of its cells (none < bool < int < float < str);
//!   except in `pretty`, strings that look like numbers are numbers (`"1.0"` is a float
//!   shown as `1`, with Python's `format(x, "g")`);
//! - numbers are aligned on their decimal point (right), text left; `pretty` centres all;
//! - a header is at least as wide as its text plus 2 (`pretty`: plus 0);
//! - cells are stripped of surrounding whitespace, `None` is an empty cell;
//! - cells with newlines make every row multi-line;
//! - `simple` rows and lines are right-stripped.
//!
//! Widths count characters, as `tabulate` does without the `wcwidth` package.

use crate::pytext::{format_g, py_str};

/// A `tablefmt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `+---+` lines, `|` columns, everything centred, numbers never parsed from text.
    Pretty,
    /// `+---+` lines between every row, `=` under the header.
    Grid,
    /// Dashes under the header, two spaces between columns.
    Simple,
}

/// A horizontal line: begin, fill, column separator, end.
struct Line(&'static str, char, &'static str, &'static str);

/// A row: begin, column separator, end.
struct Row(&'static str, &'static str, &'static str);

struct TableFormat {
    line_above: Option<Line>,
    line_below_header: Option<Line>,
    line_between_rows: Option<Line>,
    line_below: Option<Line>,
    row: Row,
    padding: usize,
    /// `with_header_hide`: the lines above and below are hidden when there is a header.
    hide_outer_lines_with_header: bool,
}

impl Format {
    fn table_format(self) -> TableFormat {
        match self {
            Format::Pretty => TableFormat {
                line_above: Some(Line("+", '-', "+", "+")),
                line_below_header: Some(Line("+", '-', "+", "+")),
                line_between_rows: None,
                line_below: Some(Line("+", '-', "+", "+")),
                row: Row("|", "|", "|"),
                padding: 1,
                hide_outer_lines_with_header: false,
            },
            Format::Grid => TableFormat {
                line_above: Some(Line("+", '-', "+", "+")),
                line_below_header: Some(Line("+", '=', "+", "+")),
                line_between_rows: Some(Line("+", '-', "+", "+")),
                line_below: Some(Line("+", '-', "+", "+")),
                row: Row("|", "|", "|"),
                padding: 1,
                hide_outer_lines_with_header: false,
            },
            Format::Simple => TableFormat {
                line_above: Some(Line("", '-', "  ", "")),
                line_below_header: Some(Line("", '-', "  ", "")),
                line_between_rows: None,
                line_below: Some(Line("", '-', "  ", "")),
                row: Row("", "  ", ""),
                padding: 0,
                hide_outer_lines_with_header: true,
            },
        }
    }
}

/// `tabulate(rows, headers, tablefmt)`; `headers` empty for none. No trailing newline.
pub fn tabulate(rows: &[Vec<serde_json::Value>], headers: &[String], format: Format) -> String {
    let n_cols = rows
        .iter()
        .map(Vec::len)
        .chain(std::iter::once(headers.len()))
        .max()
        .unwrap_or(0);
    let mut headers = headers.to_vec();
    if !headers.is_empty() && !rows.is_empty() && headers.len() < rows[0].len() {
        let mut padded = vec![String::new(); rows[0].len() - headers.len()];
        padded.append(&mut headers);
        headers = padded;
    }
    let pretty = format == Format::Pretty;
    let min_padding = if pretty { 0 } else { 2 };
    let num_parse = !pretty;

    let null = serde_json::Value::Null;
    let mut cols: Vec<Vec<String>> = Vec::with_capacity(n_cols);
    let mut aligns = Vec::with_capacity(n_cols);
    for col_idx in 0..n_cols {
        let cells: Vec<&serde_json::Value> = rows
            .iter()
            .map(|row| row.get(col_idx).unwrap_or(&null))
            .collect();
        let col_type = cells
            .iter()
            .map(|cell| cell_type(cell, num_parse))
            .fold(CellType::Bool, CellType::max);
        cols.push(
            cells
                .iter()
                .map(|cell| format_cell(cell, col_type))
                .collect(),
        );
        aligns.push(match (col_type, pretty) {
            (_, true) => Align::Center,
            (CellType::Int | CellType::Float, false) => Align::Decimal,
            _ => Align::Left,
        });
    }
    let multiline = cols
        .iter()
        .flatten()
        .chain(headers.iter())
        .any(|text| text.contains(['\n', '\r']));

    let mut widths = Vec::with_capacity(n_cols);
    for (col_idx, col) in cols.iter_mut().enumerate() {
        let min_width = headers
            .get(col_idx)
            .map_or(0, |header| width(header) + min_padding);
        *col = align_column(col, aligns[col_idx], min_width, multiline);
        widths.push(
            col.iter()
                .map(|cell| width(cell))
                .max()
                .unwrap_or(0)
                .max(min_width),
        );
    }
    let headers: Vec<String> = headers
        .iter()
        .enumerate()
        .map(|(col_idx, header)| {
            header
                .split('\n')
                .map(|line| pad(aligns[col_idx], widths[col_idx], line))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    let rows: Vec<Vec<String>> = (0..rows.len())
        .map(|row_idx| cols.iter().map(|col| col[row_idx].clone()).collect())
        .collect();
    format_table(&format.table_format(), &headers, &rows, &widths, multiline)
}

/// Python types in `tabulate`'s order of generality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum CellType {
    None,
    Bool,
    Int,
    Float,
    Str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Center,
    Decimal,
}

fn cell_type(cell: &serde_json::Value, num_parse: bool) -> CellType {
    match cell {
        serde_json::Value::Null => CellType::None,
        serde_json::Value::Bool(_) => CellType::Bool,
        serde_json::Value::String(text) if text == "True" || text == "False" => CellType::Bool,
        serde_json::Value::Number(number) if num_parse => {
            if number.is_f64() {
                CellType::Float
            } else {
                CellType::Int
            }
        }
        serde_json::Value::String(text) if num_parse && is_int(text) => CellType::Int,
        serde_json::Value::String(text) if num_parse && is_number(text) => CellType::Float,
        _ => CellType::Str,
    }
}

fn format_cell(cell: &serde_json::Value, col_type: CellType) -> String {
    match (cell, col_type) {
        (serde_json::Value::Null, _) => String::new(),
        (serde_json::Value::Number(number), CellType::Float) => {
            format_g(number.as_f64().unwrap_or(f64::NAN))
        }
        (serde_json::Value::String(text), CellType::Float) => {
            format_g(parse_float(text).unwrap_or(f64::NAN))
        }
        (other, _) => py_str(other),
    }
}

/// Python's `int(text)` succeeds: optional sign, digits with single underscores between.
fn is_int(text: &str) -> bool {
    let text = text.trim();
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.chars().all(|c| c.is_ascii_digit() || c == '_')
}

/// Python's `float(text)`, as far as numbers in tables go.
fn parse_float(text: &str) -> Option<f64> {
    let text = text.trim();
    if text.contains("__") || text.starts_with('_') || text.ends_with('_') {
        return None;
    }
    let cleaned: String = text.chars().filter(|c| *c != '_').collect();
    cleaned.parse::<f64>().ok()
}

/// `tabulate._isnumber`: `float(text)` succeeds, and infinities and NaN only when spelt
/// `inf`, `-inf` or `nan`.
fn is_number(text: &str) -> bool {
    match parse_float(text) {
        None => false,
        Some(value) if value.is_infinite() || value.is_nan() => {
            ["inf", "-inf", "nan"].contains(&text.to_lowercase().as_str())
        }
        Some(_) => true,
    }
}

/// `tabulate._afterpoint`: digits after the decimal point (or exponent); -1 for integers
/// and text.
fn after_point(text: &str) -> isize {
    if !is_number(text) || is_int(text) {
        return -1;
    }
    let chars: Vec<char> = text.chars().collect();
    let pos = chars
        .iter()
        .rposition(|c| *c == '.')
        .or_else(|| chars.iter().rposition(|c| c.eq_ignore_ascii_case(&'e')));
    match pos {
        Some(pos) => (chars.len() - pos - 1) as isize,
        None => -1,
    }
}

fn width(text: &str) -> usize {
    text.split(['\n', '\r'])
        .map(|line| line.chars().count())
        .max()
        .unwrap_or(0)
}

/// `_align_column`.
fn align_column(cells: &[String], align: Align, min_width: usize, multiline: bool) -> Vec<String> {
    let cells: Vec<String> = match align {
        Align::Left | Align::Center => cells.iter().map(|cell| cell.trim().to_owned()).collect(),
        Align::Decimal => {
            let decimals: Vec<isize> = cells.iter().map(|cell| after_point(cell)).collect();
            let max_decimals = decimals.iter().copied().max().unwrap_or(-1);
            cells
                .iter()
                .zip(decimals)
                .map(|(cell, decimals)| {
                    format!("{cell}{}", " ".repeat((max_decimals - decimals) as usize))
                })
                .collect()
        }
    };
    let max_width = cells
        .iter()
        .map(|cell| width(cell))
        .max()
        .unwrap_or(0)
        .max(min_width);
    cells
        .iter()
        .map(|cell| {
            if multiline {
                lines(cell)
                    .iter()
                    .map(|line| pad(align, max_width, line))
                    .collect::<Vec<_>>()
                    .join("\n")
            } else {
                pad(align, max_width, cell)
            }
        })
        .collect()
}

/// `_padright`, `_padboth` (the odd space goes right, as `format(s, "^n")`) or `_padleft`.
fn pad(align: Align, width: usize, text: &str) -> String {
    let missing = width.saturating_sub(text.chars().count());
    match align {
        Align::Left => format!("{text}{}", " ".repeat(missing)),
        Align::Center => {
            let left = missing / 2;
            format!("{}{text}{}", " ".repeat(left), " ".repeat(missing - left))
        }
        Align::Decimal => format!("{}{text}", " ".repeat(missing)),
    }
}

/// Python's `str.splitlines()` for `\n`, `\r\n` and `\r`.
fn lines(text: &str) -> Vec<&str> {
    let mut out: Vec<&str> = text.split('\n').collect();
    if out.last() == Some(&"") {
        out.pop();
    }
    out.into_iter()
        .flat_map(|line| line.strip_suffix('\r').unwrap_or(line).split('\r'))
        .collect()
}

/// `_format_table`.
fn format_table(
    format: &TableFormat,
    headers: &[String],
    rows: &[Vec<String>],
    widths: &[usize],
    multiline: bool,
) -> String {
    let mut out: Vec<String> = Vec::new();
    let hide = !headers.is_empty() && format.hide_outer_lines_with_header;
    let padded_widths: Vec<usize> = widths.iter().map(|w| w + 2 * format.padding).collect();
    let line = |fmt: &Line| -> String {
        let cells: Vec<String> = padded_widths
            .iter()
            .map(|w| fmt.1.to_string().repeat(*w))
            .collect();
        format!("{}{}{}", fmt.0, cells.join(fmt.2), fmt.3)
            .trim_end()
            .to_owned()
    };
    let push_row = |out: &mut Vec<String>, cells: &[String]| {
        let cell_lines: Vec<Vec<&str>> = cells
            .iter()
            .map(|cell| {
                if multiline {
                    lines(cell)
                } else {
                    vec![cell.as_str()]
                }
            })
            .collect();
        let n_lines = cell_lines.iter().map(Vec::len).max().unwrap_or(0);
        for line_idx in 0..n_lines {
            let padded: Vec<String> = cell_lines
                .iter()
                .zip(widths)
                .map(|(cell, width)| {
                    let text = cell
                        .get(line_idx)
                        .map_or_else(|| " ".repeat(*width), |line| (*line).to_owned());
                    let padding = " ".repeat(format.padding);
                    format!("{padding}{text}{padding}")
                })
                .collect();
            let row = &format.row;
            out.push(
                format!("{}{}{}", row.0, padded.join(row.1), row.2)
                    .trim_end()
                    .to_owned(),
            );
        }
    };
    if let Some(above) = &format.line_above
        && !hide
    {
        out.push(line(above));
    }
    if !headers.is_empty() {
        push_row(&mut out, headers);
        if let Some(below_header) = &format.line_below_header {
            out.push(line(below_header));
        }
    }
    for (row_idx, row) in rows.iter().enumerate() {
        push_row(&mut out, row);
        if let Some(between) = &format.line_between_rows
            && row_idx + 1 < rows.len()
        {
            out.push(line(between));
        }
    }
    if let Some(below) = &format.line_below
        && !hide
    {
        out.push(line(below));
    }
    if headers.is_empty() && rows.is_empty() {
        return String::new();
    }
    out.join("\n")
}

#[cfg(test)]
mod tests;
