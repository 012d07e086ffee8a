//! Python's text behaviour that the official jobs client's output depends on:
//! `str()` of JSON and YAML values, `format(x, "g")` and `textwrap.fill(text)` (width 70).
//!
//! Only what the jobs commands need is reproduced; where Python would show a `repr` of a
//! list or mapping the JSON text is shown instead (no server sends such values).

/// Python's `str()` of a JSON value as `json.loads` would give it.
pub fn py_str(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "None".to_owned(),
        serde_json::Value::Bool(true) => "True".to_owned(),
        serde_json::Value::Bool(false) => "False".to_owned(),
        serde_json::Value::Number(number) => match (number.as_i64(), number.as_f64()) {
            (Some(int), _) => int.to_string(),
            (None, Some(float)) if number.as_u64().is_none() => py_float_repr(float),
            _ => number.to_string(),
        },
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Python's `repr()` (and `str()`) of a float: the shortest text that reads back the same,
/// with `.0` for whole numbers and an exponent outside 1e-4 ≤ |x| < 1e16.
pub fn py_float_repr(value: f64) -> String {
    if value.is_nan() {
        return "nan".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    let abs = value.abs();
    if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
        // Rust's `{:e}` is the shortest round-trip mantissa too; Python writes `e+16`, `e-05`.
        let text = format!("{value:e}");
        let (mantissa, exponent) = text.split_once('e').expect("{:e} has an exponent");
        let exponent: i32 = exponent.parse().expect("{:e} exponent is an integer");
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.abs());
    }
    let text = format!("{value}");
    if text.contains('.') {
        text
    } else {
        format!("{text}.0")
    }
}

/// Python's `format(value, "g")`: 6 significant digits, trailing zeros removed, scientific
/// notation when the exponent is below -4 or at least 6.
pub fn format_g(value: f64) -> String {
    const PRECISION: i32 = 6;
    if value.is_nan() {
        return "nan".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    let scientific = format!("{:.*e}", (PRECISION - 1) as usize, value);
    let (mantissa, exponent) = scientific.split_once('e').expect("{:e} has an exponent");
    let exponent: i32 = exponent.parse().expect("{:e} exponent is an integer");
    if (-4..PRECISION).contains(&exponent) {
        let decimals = (PRECISION - 1 - exponent) as usize;
        strip_fraction_zeros(&format!("{value:.decimals$}"))
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!(
            "{}e{sign}{:02}",
            strip_fraction_zeros(mantissa),
            exponent.abs()
        )
    }
}

fn strip_fraction_zeros(text: &str) -> String {
    if !text.contains('.') {
        return text.to_owned();
    }
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Python's `textwrap.fill(text)` with its defaults: width 70, tabs expanded, every
/// whitespace character made a space, breaks at spaces and after hyphens inside words,
/// words longer than a line broken.
pub fn fill(text: &str) -> String {
    wrap(text, 70).join("\n")
}

/// `textwrap.wrap(text, width)`.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let munged = munge_whitespace(text);
    let mut chunks: Vec<Vec<char>> = split_chunks(&munged);
    chunks.reverse();
    let is_space = |chunk: &[char]| chunk.iter().all(|c| *c == ' ');
    let mut lines = Vec::new();
    while !chunks.is_empty() {
        let mut line: Vec<Vec<char>> = Vec::new();
        let mut len = 0;
        if chunks.last().is_some_and(|chunk| is_space(chunk)) && !lines.is_empty() {
            chunks.pop();
        }
        while let Some(chunk) = chunks.last() {
            if len + chunk.len() <= width {
                len += chunk.len();
                line.push(chunks.pop().expect("just looked at it"));
            } else {
                break;
            }
        }
        if chunks.last().is_some_and(|chunk| chunk.len() > width) {
            // `_handle_long_word`: break it, after its last hyphen that fits if any.
            let space_left = if width < 1 { 1 } else { width - len };
            let chunk = chunks.last_mut().expect("just looked at it");
            let mut end = space_left;
            if chunk.len() > space_left
                && let Some(hyphen) = chunk[..space_left].iter().rposition(|c| *c == '-')
                && hyphen > 0
                && chunk[..hyphen].iter().any(|c| *c != '-')
            {
                end = hyphen + 1;
            }
            let rest = chunk.split_off(end);
            line.push(std::mem::replace(chunk, rest));
        }
        if line.last().is_some_and(|chunk| is_space(chunk)) {
            line.pop();
        }
        if !line.is_empty() {
            lines.push(line.concat().into_iter().collect());
        }
    }
    lines
}

/// `expandtabs()` then every ASCII whitespace character becomes a space.
fn munge_whitespace(text: &str) -> Vec<char> {
    let mut out = Vec::new();
    let mut column = 0;
    for c in text.chars() {
        match c {
            '\t' => {
                let n_spaces = 8 - column % 8;
                out.extend(std::iter::repeat_n(' ', n_spaces));
                column += n_spaces;
            }
            '\n' | '\r' => {
                out.push(' ');
                column = 0;
            }
            '\x0b' | '\x0c' => {
                out.push(' ');
                column += 1;
            }
            other => {
                out.push(other);
                column += 1;
            }
        }
    }
    out
}

/// `TextWrapper.wordsep_re`: runs of spaces, and words split after a hyphen that has two
/// letters (or letter, hyphen, letter) before it and a letter (maybe after a hyphen) and a
/// letter after it.
fn split_chunks(text: &[char]) -> Vec<Vec<char>> {
    let letter = |c: char| c.is_alphabetic() || c == '_';
    let mut chunks = Vec::new();
    let mut idx = 0;
    while idx < text.len() {
        let start = idx;
        if text[idx] == ' ' {
            while idx < text.len() && text[idx] == ' ' {
                idx += 1;
            }
            chunks.push(text[start..idx].to_vec());
            continue;
        }
        while idx < text.len() && text[idx] != ' ' {
            let c = text[idx];
            idx += 1;
            if c != '-' || idx - start < 2 {
                continue;
            }
            let hyphen = idx - 1;
            let before_two_letters =
                hyphen >= start + 2 && letter(text[hyphen - 1]) && letter(text[hyphen - 2]);
            let before_letter_hyphen_letter = hyphen >= start + 3
                && letter(text[hyphen - 1])
                && text[hyphen - 2] == '-'
                && letter(text[hyphen - 3]);
            let at = |pos: usize| text.get(pos).copied();
            let after = match (at(idx), at(idx + 1), at(idx + 2)) {
                (Some(a), Some('-'), Some(b)) => letter(a) && letter(b),
                (Some(a), Some(b), _) => letter(a) && letter(b),
                _ => false,
            };
            if (before_two_letters || before_letter_hyphen_letter) && after {
                break;
            }
        }
        chunks.push(text[start..idx].to_vec());
    }
    chunks
}

#[cfg(test)]
mod tests {
    use crate::pytext::{fill, format_g, py_float_repr};

    #[test]
    fn g_format_matches_python() {
        // Expected values from CPython: `format(x, "g")`.
        for (value, expected) in [
            (1.0, "1"),
            (4.0, "4"),
            (0.5, "0.5"),
            (8.25, "8.25"),
            (123456.0, "123456"),
            (1234567.0, "1.23457e+06"),
            (0.0001, "0.0001"),
            (0.00001234, "1.234e-05"),
            (1e16, "1e+16"),
            (-2.5, "-2.5"),
            (0.0, "0"),
        ] {
            assert_eq!(format_g(value), expected, "{value}");
        }
    }

    #[test]
    fn float_repr_matches_python() {
        for (value, expected) in [
            (2.0, "2.0"),
            (0.25, "0.25"),
            (1e16, "1e+16"),
            (1.5e-5, "1.5e-05"),
            (123.456, "123.456"),
        ] {
            assert_eq!(py_float_repr(value), expected, "{value}");
        }
    }

    #[test]
    fn fill_matches_python_textwrap() {
        // Expected values from CPython 3.11: `textwrap.fill(text)`.
        let status = "Last run at 2025-06-19T12:00:00Z. Pod in 'Running' phase. State 'running'. Started at '2025-06-19T12:00:01Z'.";
        assert_eq!(
            fill(status),
            "Last run at 2025-06-19T12:00:00Z. Pod in 'Running' phase. State\n'running'. Started at '2025-06-19T12:00:01Z'."
        );
        assert_eq!(
            fill(&"x".repeat(150)),
            format!("{}\n{}\n{}", "x".repeat(70), "x".repeat(70), "x".repeat(10))
        );
        assert_eq!(fill(""), "");
        assert_eq!(
            fill(
                "The job could not be started: the image is not available on this well-known-host for now, sorry."
            ),
            "The job could not be started: the image is not available on this well-\nknown-host for now, sorry."
        );
        assert_eq!(fill("a\tb\nc   d"), "a       b c   d");
    }
}
