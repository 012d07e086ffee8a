//! Python's `json.dumps(value, indent=4)`, which the official envvars client prints for
//! `--json`: four spaces per level, `", "`-free separators (`","` at line ends, `": "`),
//! `[]` and `{}` when empty, and every character outside printable ASCII escaped
//! (`ensure_ascii`: `\n`, `\u00e9`, surrogate pairs beyond the BMP).
//!
//! Key order: the official client prints the keys in the order the server sent them.
//! The answer reaches us as a `serde_json::Value`, whose objects are sorted by key, so the
//! keys of the envvars API are put back in the order its server sends them
//! ([`KEY_ORDER`]: `envvar`, `messages`; `name`, `value`; `info`, `warning`, `error`; …);
//! keys it does not know follow, sorted.

use std::fmt::Write;

use serde_json::Value;

/// The envvars API's keys, in the order of its answers (api-contract.md §3.2).
const KEY_ORDER: &[&str] = &[
    "envvars", "envvar", "quota", "name", "value", "used", "messages", "info", "warning", "error",
];

/// `value` as `json.dumps(value, indent=4)` prints it, without a final newline.
pub fn dumps(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value, 0);
    out
}

fn write_value(out: &mut String, value: &Value, level: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => out.push_str(&number.to_string()),
        Value::String(text) => write_string(out, text),
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Array(items) => {
            out.push('[');
            for (idx, item) in items.iter().enumerate() {
                out.push_str(if idx == 0 { "\n" } else { ",\n" });
                indent(out, level + 1);
                write_value(out, item, level + 1);
            }
            out.push('\n');
            indent(out, level);
            out.push(']');
        }
        Value::Object(object) if object.is_empty() => out.push_str("{}"),
        Value::Object(object) => {
            let mut entries: Vec<(&String, &Value)> = object.iter().collect();
            entries.sort_by_key(|(key, _)| {
                KEY_ORDER
                    .iter()
                    .position(|known| known == key)
                    .unwrap_or(KEY_ORDER.len())
            });
            out.push('{');
            for (idx, (key, item)) in entries.into_iter().enumerate() {
                out.push_str(if idx == 0 { "\n" } else { ",\n" });
                indent(out, level + 1);
                write_string(out, key);
                out.push_str(": ");
                write_value(out, item, level + 1);
            }
            out.push('\n');
            indent(out, level);
            out.push('}');
        }
    }
}

fn indent(out: &mut String, level: usize) {
    out.push_str(&"    ".repeat(level));
}

/// A JSON string with `ensure_ascii` escapes.
fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    // Writing to a String cannot fail.
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}
