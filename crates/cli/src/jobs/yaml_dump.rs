//! `yaml.dump(jobs)` as PyYAML 6 writes it, for the list of flat mappings `dump` prints:
//! block style, keys sorted, two-space indentation, `allow_unicode=False`.
//!
//! What is reproduced because it shows (and a generic YAML emitter does differently):
//! - a string is plain unless YAML 1.1 would read it back as something else (`'1'`, `'yes'`,
//!   `'@daily'`, `'2025-01-01'`, `''`) or it holds indicators, then single-quoted; with
//!   characters outside printable ASCII, double-quoted with `\xE9`-style escapes;
//! - long plain and quoted scalars are folded at single spaces once past column 80,
//!   continuing at column 4;
//! - floats are written as Python's `repr`, lower-case, with `.0` before an exponent.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::pytext::py_float_repr;

const BEST_WIDTH: usize = 80;
/// The indentation of a value continued on the next line (mapping in a sequence).
const VALUE_INDENT: usize = 4;

/// The YAML text of `entries`, ending with a newline.
pub fn dump(entries: &[BTreeMap<String, Value>]) -> String {
    if entries.is_empty() {
        return "[]\n".to_owned();
    }
    let mut out = Writer::default();
    for entry in entries {
        out.text("-");
        if entry.is_empty() {
            out.text(" {}");
            out.line_break();
            continue;
        }
        for (idx, (key, value)) in entry.iter().enumerate() {
            out.text(if idx == 0 { " " } else { "  " });
            out.whitespace = true;
            out.scalar(key);
            out.text(":");
            out.whitespace = false;
            match value {
                Value::String(text) => out.scalar(text),
                Value::Null => out.plain("null"),
                Value::Bool(flag) => out.plain(if *flag { "true" } else { "false" }),
                Value::Number(number) => match number.as_f64().filter(|_| number.is_f64()) {
                    Some(float) => out.plain(&yaml_float(float)),
                    None => out.plain(&number.to_string()),
                },
                // No server sends lists or mappings for these keys; flow JSON reads back.
                other => out.plain(&other.to_string()),
            }
            out.line_break();
        }
    }
    out.buffer
}

fn yaml_float(value: f64) -> String {
    if value.is_nan() {
        return ".nan".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { ".inf" } else { "-.inf" }.to_owned();
    }
    let text = py_float_repr(value).to_lowercase();
    if !text.contains('.') && text.contains('e') {
        text.replacen('e', ".0e", 1)
    } else {
        text
    }
}

/// The emitter's state that matters for folding: the column, and whether the last thing
/// written was whitespace.
#[derive(Default)]
struct Writer {
    buffer: String,
    column: usize,
    whitespace: bool,
}

impl Writer {
    fn text(&mut self, text: &str) {
        self.buffer.push_str(text);
        self.column += text.chars().count();
    }

    fn line_break(&mut self) {
        self.buffer.push('\n');
        self.column = 0;
        self.whitespace = true;
    }

    /// `write_indent` at [`VALUE_INDENT`] from within a line.
    fn indent(&mut self) {
        if self.column > VALUE_INDENT || (self.column == VALUE_INDENT && !self.whitespace) {
            self.line_break();
        }
        if self.column < VALUE_INDENT {
            let n_spaces = VALUE_INDENT - self.column;
            self.text(&" ".repeat(n_spaces));
            self.whitespace = true;
        }
    }

    /// A string, in the style PyYAML chooses for it.
    fn scalar(&mut self, text: &str) {
        let analysis = analyze(text);
        if !resolves_to_other_type(text) && analysis.allow_plain {
            self.plain(text);
        } else if analysis.allow_single_quoted {
            self.single_quoted(text);
        } else {
            self.double_quoted(text);
        }
    }

    /// `write_plain`.
    fn plain(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        if !self.whitespace {
            self.text(" ");
        }
        self.whitespace = false;
        let chars: Vec<char> = text.chars().collect();
        let (mut start, mut spaces) = (0, false);
        for end in 0..=chars.len() {
            let ch = chars.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end && self.column > BEST_WIDTH {
                        self.indent();
                        self.whitespace = false;
                    } else {
                        self.text(&chars[start..end].iter().collect::<String>());
                    }
                    start = end;
                }
            } else if ch.is_none_or(|c| c == ' ') {
                self.text(&chars[start..end].iter().collect::<String>());
                start = end;
            }
            spaces = ch == Some(' ');
        }
    }

    /// `write_single_quoted`.
    fn single_quoted(&mut self, text: &str) {
        self.indicator("'", true);
        let chars: Vec<char> = text.chars().collect();
        let (mut start, mut spaces, mut breaks) = (0, false, false);
        for end in 0..=chars.len() {
            let ch = chars.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end
                        && self.column > BEST_WIDTH
                        && start != 0
                        && end != chars.len()
                    {
                        self.indent();
                    } else {
                        self.text(&chars[start..end].iter().collect::<String>());
                    }
                    start = end;
                }
            } else if breaks {
                if ch != Some('\n') {
                    if chars[start] == '\n' {
                        self.line_break();
                    }
                    for _ in start..end {
                        self.line_break();
                    }
                    self.indent();
                    start = end;
                }
            } else if (ch.is_none_or(|c| c == ' ' || c == '\n' || c == '\'')) && start < end {
                self.text(&chars[start..end].iter().collect::<String>());
                start = end;
            }
            if ch == Some('\'') {
                self.text("''");
                start = end + 1;
            }
            spaces = ch == Some(' ');
            breaks = ch == Some('\n');
        }
        self.indicator("'", false);
    }

    /// `write_double_quoted`, with PyYAML's escapes.
    fn double_quoted(&mut self, text: &str) {
        self.indicator("\"", true);
        let chars: Vec<char> = text.chars().collect();
        let mut start = 0;
        for end in 0..=chars.len() {
            let ch = chars.get(end).copied();
            let needs_escape =
                ch.is_none_or(|c| c == '"' || c == '\\' || !(' '..='~').contains(&c));
            if needs_escape {
                if start < end {
                    self.text(&chars[start..end].iter().collect::<String>());
                    start = end;
                }
                if let Some(c) = ch {
                    let escaped = match c {
                        '\0' => "\\0".to_owned(),
                        '\x07' => "\\a".to_owned(),
                        '\x08' => "\\b".to_owned(),
                        '\t' => "\\t".to_owned(),
                        '\n' => "\\n".to_owned(),
                        '\x0b' => "\\v".to_owned(),
                        '\x0c' => "\\f".to_owned(),
                        '\r' => "\\r".to_owned(),
                        '\x1b' => "\\e".to_owned(),
                        '"' => "\\\"".to_owned(),
                        '\\' => "\\\\".to_owned(),
                        '\u{85}' => "\\N".to_owned(),
                        '\u{a0}' => "\\_".to_owned(),
                        '\u{2028}' => "\\L".to_owned(),
                        '\u{2029}' => "\\P".to_owned(),
                        c if (c as u32) <= 0xff => format!("\\x{:02X}", c as u32),
                        c if (c as u32) <= 0xffff => format!("\\u{:04X}", c as u32),
                        c => format!("\\U{:08X}", c as u32),
                    };
                    self.text(&escaped);
                    start = end + 1;
                }
            }
            if end > 0
                && end + 1 < chars.len()
                && (ch == Some(' ') || start >= end)
                && self.column + end.saturating_sub(start) > BEST_WIDTH
            {
                let mut data: String = chars[start..end].iter().collect();
                data.push('\\');
                if start < end {
                    start = end;
                }
                self.text(&data);
                self.indent();
                self.whitespace = false;
                if chars[start] == ' ' {
                    self.text("\\");
                }
            }
        }
        self.indicator("\"", false);
    }

    fn indicator(&mut self, indicator: &str, need_whitespace: bool) {
        if !self.whitespace && need_whitespace {
            self.text(" ");
        }
        self.text(indicator);
        self.whitespace = false;
    }
}

/// What `analyze_scalar` decides for a block-context scalar.
struct Analysis {
    allow_plain: bool,
    allow_single_quoted: bool,
}

fn analyze(text: &str) -> Analysis {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return Analysis {
            allow_plain: true,
            allow_single_quoted: true,
        };
    }
    let is_space_or_break = |c: char| {
        matches!(
            c,
            '\0' | ' ' | '\t' | '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}'
        )
    };
    let is_break = |c: char| matches!(c, '\n' | '\u{85}' | '\u{2028}' | '\u{2029}');
    let mut block_indicators = text.starts_with("---") || text.starts_with("...");
    let mut line_breaks = false;
    let mut special = false;
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut previous_space, mut previous_break) = (false, false);
    let mut preceded_by_whitespace = true;
    let mut followed_by_whitespace = chars.len() == 1 || is_space_or_break(chars[1]);
    for (idx, &ch) in chars.iter().enumerate() {
        if idx == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(ch) {
                block_indicators = true;
            }
            if (ch == '?' || ch == ':') && followed_by_whitespace {
                block_indicators = true;
            }
            if ch == '-' && followed_by_whitespace {
                block_indicators = true;
            }
        } else {
            if ch == ':' && followed_by_whitespace {
                block_indicators = true;
            }
            if ch == '#' && preceded_by_whitespace {
                block_indicators = true;
            }
        }
        if is_break(ch) {
            line_breaks = true;
        }
        if !(ch == '\n' || (' '..='~').contains(&ch)) {
            // allow_unicode=False: anything outside printable ASCII needs double quotes.
            special = true;
        }
        if ch == ' ' {
            leading_space |= idx == 0;
            trailing_space |= idx == chars.len() - 1;
            break_space |= previous_break;
            previous_space = true;
            previous_break = false;
        } else if is_break(ch) {
            leading_break |= idx == 0;
            trailing_break |= idx == chars.len() - 1;
            space_break |= previous_space;
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = is_space_or_break(ch);
        followed_by_whitespace = idx + 2 >= chars.len() || is_space_or_break(chars[idx + 2]);
    }
    let mut allow_plain = true;
    let mut allow_single_quoted = true;
    if leading_space || leading_break || trailing_space || trailing_break {
        allow_plain = false;
    }
    if break_space {
        allow_plain = false;
        allow_single_quoted = false;
    }
    if space_break || special {
        allow_plain = false;
        allow_single_quoted = false;
    }
    if line_breaks || block_indicators {
        allow_plain = false;
    }
    Analysis {
        allow_plain,
        allow_single_quoted,
    }
}

/// Whether PyYAML's implicit resolvers (YAML 1.1) read `text`, written plain, as anything
/// but a string: null, bool, int, float, timestamp, merge or value.
fn resolves_to_other_type(text: &str) -> bool {
    matches!(
        text,
        "" | "~"
            | "null"
            | "Null"
            | "NULL"
            | "<<"
            | "="
            | "yes"
            | "Yes"
            | "YES"
            | "no"
            | "No"
            | "NO"
            | "true"
            | "True"
            | "TRUE"
            | "false"
            | "False"
            | "FALSE"
            | "on"
            | "On"
            | "ON"
            | "off"
            | "Off"
            | "OFF"
            | ".inf"
            | ".Inf"
            | ".INF"
            | "-.inf"
            | "-.Inf"
            | "-.INF"
            | "+.inf"
            | "+.Inf"
            | "+.INF"
            | ".nan"
            | ".NaN"
            | ".NAN"
    ) || is_yaml11_int(text)
        || is_yaml11_float(text)
        || is_yaml11_timestamp(text)
}

fn all(text: &str, allowed: impl Fn(char) -> bool) -> bool {
    !text.is_empty() && text.chars().all(allowed)
}

/// `[-+]?(0b[01_]+|0[0-7_]+|(0|[1-9][0-9_]*)|0x[0-9a-fA-F_]+|[1-9][0-9_]*(:[0-5]?[0-9])+)`.
fn is_yaml11_int(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if let Some(bits) = digits.strip_prefix("0b") {
        return all(bits, |c| c == '0' || c == '1' || c == '_');
    }
    if let Some(hex) = digits.strip_prefix("0x") {
        return all(hex, |c| c.is_ascii_hexdigit() || c == '_');
    }
    if digits == "0" {
        return true;
    }
    if let Some(octal) = digits.strip_prefix('0') {
        return all(octal, |c| ('0'..='7').contains(&c) || c == '_');
    }
    let mut parts = digits.split(':');
    let first = parts.next().unwrap_or("");
    if !(first.starts_with(|c: char| ('1'..='9').contains(&c))
        && all(first, |c| c.is_ascii_digit() || c == '_'))
    {
        return false;
    }
    parts.all(is_sexagesimal_part)
}

/// `[0-5]?[0-9]`.
fn is_sexagesimal_part(part: &str) -> bool {
    let bytes = part.as_bytes();
    match bytes {
        [d] => d.is_ascii_digit(),
        [t, d] => (b'0'..=b'5').contains(t) && d.is_ascii_digit(),
        _ => false,
    }
}

/// `[-+]?([0-9][0-9_]*)\.[0-9_]*([eE][-+][0-9]+)?`, `\.[0-9][0-9_]*([eE][-+][0-9]+)?`,
/// `[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]*` (infinities and NaN are matched by name).
fn is_yaml11_float(text: &str) -> bool {
    let exponent_ok = |exp: &str| {
        let Some(rest) = exp.strip_prefix(['e', 'E']) else {
            return exp.is_empty();
        };
        let Some(digits) = rest.strip_prefix(['-', '+']) else {
            return false;
        };
        all(digits, |c| c.is_ascii_digit())
    };
    let split_exponent = |text: &str| -> (String, String) {
        match text.find(['e', 'E']) {
            Some(pos) => (text[..pos].to_owned(), text[pos..].to_owned()),
            None => (text.to_owned(), String::new()),
        }
    };
    if let Some(rest) = text.strip_prefix('.') {
        let (fraction, exp) = split_exponent(rest);
        return fraction.starts_with(|c: char| c.is_ascii_digit())
            && all(&fraction, |c| c.is_ascii_digit() || c == '_')
            && exponent_ok(&exp);
    }
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let Some((whole, rest)) = unsigned.split_once('.') else {
        return false;
    };
    let whole_ok = |part: &str| {
        part.starts_with(|c: char| c.is_ascii_digit())
            && all(part, |c| c.is_ascii_digit() || c == '_')
    };
    if whole.contains(':') {
        let mut parts = whole.split(':');
        return whole_ok(parts.next().unwrap_or(""))
            && parts.all(is_sexagesimal_part)
            && rest.chars().all(|c| c.is_ascii_digit() || c == '_');
    }
    let (fraction, exp) = split_exponent(rest);
    whole_ok(whole) && fraction.chars().all(|c| c.is_ascii_digit() || c == '_') && exponent_ok(&exp)
}

/// `YYYY-MM-DD`, or a date and time: `YYYY-M-D` (one or two digits), `T`/`t`/blanks,
/// `H:MM:SS`, an optional fraction, an optional `Z` or `±H[:MM]` zone after optional blanks.
fn is_yaml11_timestamp(text: &str) -> bool {
    let b = text.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    if b.len() == 10 && (0..4).all(digit) && b[4] == b'-' && digit(5) && digit(6) && b[7] == b'-' {
        return digit(8) && digit(9);
    }
    let mut pos = 0;
    let digits = |pos: &mut usize, min: usize, max: usize| -> bool {
        let start = *pos;
        while *pos < b.len() && *pos - start < max && b[*pos].is_ascii_digit() {
            *pos += 1;
        }
        *pos - start >= min
    };
    let expect = |pos: &mut usize, c: u8| -> bool {
        if b.get(*pos) == Some(&c) {
            *pos += 1;
            true
        } else {
            false
        }
    };
    if !(digits(&mut pos, 4, 4) && expect(&mut pos, b'-') && digits(&mut pos, 1, 2)) {
        return false;
    }
    if !(expect(&mut pos, b'-') && digits(&mut pos, 1, 2)) {
        return false;
    }
    if matches!(b.get(pos), Some(b'T' | b't')) {
        pos += 1;
    } else {
        let start = pos;
        while matches!(b.get(pos), Some(b' ' | b'\t')) {
            pos += 1;
        }
        if pos == start {
            return false;
        }
    }
    if !(digits(&mut pos, 1, 2)
        && expect(&mut pos, b':')
        && digits(&mut pos, 2, 2)
        && expect(&mut pos, b':')
        && digits(&mut pos, 2, 2))
    {
        return false;
    }
    if expect(&mut pos, b'.') {
        digits(&mut pos, 0, usize::MAX);
    }
    while matches!(b.get(pos), Some(b' ' | b'\t')) {
        pos += 1;
    }
    if pos == b.len() {
        return true;
    }
    if expect(&mut pos, b'Z') {
        return pos == b.len();
    }
    if !matches!(b.get(pos), Some(b'-' | b'+')) {
        return false;
    }
    pos += 1;
    if !digits(&mut pos, 1, 2) {
        return false;
    }
    if expect(&mut pos, b':') && !digits(&mut pos, 2, 2) {
        return false;
    }
    pos == b.len()
}

#[cfg(test)]
mod tests;
