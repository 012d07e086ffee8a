//! The tables of `list`, `show`, `images` and `quota`, computed as the official client
//! computes them (`job_prepare_for_output`, `op_images`, `op_quota` of tjf_cli 16.1.14),
//! so that the output is the same byte for byte.

use serde_json::Value;

use crate::jobs::dict::{Dict, truthy};
use crate::pytext::{fill, py_str};
use crate::tabulate::{Format, tabulate};

/// The columns of `list` (normal): API key, header.
pub const HEADERS_SHORT: &[(&str, &str)] = &[
    ("name", "Job name:"),
    ("type", "Job type:"),
    ("status_short", "Status:"),
];

/// The columns of `list -o long` and the rows of `show`.
pub const HEADERS_LONG: &[(&str, &str)] = &[
    ("name", "Job name:"),
    ("cmd", "Command:"),
    ("type", "Job type:"),
    ("imagename", "Image:"),
    ("port", "Port:"),
    ("filelog", "File log:"),
    ("filelog_stdout", "Output log:"),
    ("filelog_stderr", "Error log:"),
    ("emails", "Emails:"),
    ("resources", "Resources:"),
    ("replicas", "Replicas:"),
    ("mount", "Mounts:"),
    ("retry", "Retry:"),
    ("timeout", "Timeout:"),
    ("health_check", "Health check:"),
    ("status_short", "Status:"),
    ("status_long", "Hints:"),
];

/// A job the official client could not have formatted either (it says
/// `Failed to format job table`): no `image_state`, no `imagename`, or a health check
/// that is not an object.
#[derive(Debug, PartialEq, Eq)]
pub struct Unformattable(pub &'static str);

impl std::fmt::Display for Unformattable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the job has {}", self.0)
    }
}

impl std::error::Error for Unformattable {}

/// `job_prepare_for_output`: turns an API job into the row of `headers`, keys renamed to
/// the headers. With hints (`show`), `status_long` is wrapped at 70 columns; the notes of
/// our server's `status` object (restarts, exit code) are added to it.
pub fn prepare_for_output(
    job: &mut Dict,
    headers: &[(&str, &str)],
    suppress_hints: bool,
) -> Result<(), Unformattable> {
    let job_type = if job.is_set("schedule") {
        let schedule = py_str(job.get("schedule").expect("is set"));
        job.pop("schedule");
        format!("schedule: {schedule}")
    } else if job.is_set("continuous") {
        job.pop("continuous");
        "continuous".to_owned()
    } else {
        "one-off".to_owned()
    };
    job.set("type", job_type);

    let filelog = truthy(job.get("filelog"));
    job.set("filelog", if filelog { "yes" } else { "no" });

    let retry = job.get("retry").cloned().unwrap_or(Value::Null);
    let retry_is_zero = match &retry {
        Value::Number(number) => number.as_f64() == Some(0.0),
        Value::Bool(flag) => !flag,
        _ => false,
    };
    job.set(
        "retry",
        if retry_is_zero {
            "no".to_owned()
        } else {
            format!("yes: {} time(s)", py_str(&retry))
        },
    );

    let timeout = job.get("timeout").cloned();
    job.set(
        "timeout",
        if truthy(timeout.as_ref()) {
            format!("yes: {}s", py_str(timeout.as_ref().expect("truthy")))
        } else {
            "no".to_owned()
        },
    );

    let health_check = match job.get("health_check") {
        None | Some(Value::Null) => "none".to_owned(),
        Some(Value::Object(check)) => {
            let null = Value::Null;
            let value = check
                .get("script")
                .unwrap_or_else(|| check.get("path").unwrap_or(&null));
            let kind = check
                .get("type")
                .unwrap_or_else(|| check.get("health_check_type").unwrap_or(&null));
            format!("{}: {}", py_str(kind), py_str(value))
        }
        Some(_) => return Err(Unformattable("a health check that is not an object")),
    };
    job.set("health_check", health_check);

    if !truthy(job.get("port")) {
        job.set("port", "none");
    }
    let default = Value::String("default".to_owned());
    let mem = job.pop("memory").unwrap_or_else(|| default.clone());
    let cpu = job.pop("cpu").unwrap_or_else(|| default.clone());
    let resources = if mem == default && cpu == default {
        "default".to_owned()
    } else {
        format!("mem: {}, cpu: {}", py_str(&mem), py_str(&cpu))
    };
    job.set("resources", resources);

    if suppress_hints {
        if job.is_set("status_long") {
            job.pop("status_long");
        }
    } else {
        let mut hints = match job.get("status_long") {
            None => "Unknown".to_owned(),
            Some(long) => py_str(long),
        };
        if let Some(notes) = status_notes(job) {
            hints.push_str(&format!(" Notes: {notes}."));
        }
        job.set("status_long", fill(&hints));
    }

    let image_state = job
        .get("image_state")
        .cloned()
        .ok_or(Unformattable("no image_state"))?;
    if image_state != Value::String("stable".to_owned()) {
        let image = job.get("imagename").ok_or(Unformattable("no imagename"))?;
        let shown = format!("{} ({})", py_str(image), py_str(&image_state));
        job.set("imagename", shown);
    }

    let keys: Vec<String> = job.keys().map(str::to_owned).collect();
    for key in keys {
        if !headers.iter().any(|(api_key, _)| *api_key == key) {
            job.pop(&key);
        }
    }
    for (api_key, header) in headers {
        if *api_key == "status_long" && suppress_hints {
            continue;
        }
        let value = job
            .pop(api_key)
            .unwrap_or_else(|| Value::String("Unknown".to_owned()));
        job.set(header, value);
    }
    Ok(())
}

/// The notes of our server's `status` object that tell something went wrong
/// (`restarted (2)`, `exitcode 1`), if any; a clean exit adds nothing, so the table stays
/// the official client's.
fn status_notes(job: &Dict) -> Option<String> {
    let notes: Vec<&str> = job
        .get("status")?
        .get("messages")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .filter(|note| *note != "exitcode 0")
        .collect();
    (!notes.is_empty()).then(|| notes.join(", "))
}

/// `list`: the `pretty` table of the prepared jobs (`tabulate(list, headers=headers)`).
pub fn list_table(jobs: &[Dict], headers: &[(&str, &str)]) -> String {
    let (columns, rows) = dict_rows(jobs);
    let header_names: Vec<String> = columns
        .iter()
        .map(|key| {
            headers
                .iter()
                .find(|(api_key, _)| api_key == key)
                .map_or_else(|| key.clone(), |(_, header)| (*header).to_owned())
        })
        .collect();
    tabulate(&rows, &header_names, Format::Pretty)
}

/// `show`: the `grid` table of one prepared job, a row per key.
pub fn show_table(job: &Dict) -> String {
    let rows: Vec<Vec<Value>> = job
        .iter()
        .map(|(key, value)| vec![Value::String(key.to_owned()), value.clone()])
        .collect();
    tabulate(&rows, &[], Format::Grid)
}

/// `images`: every key of the image objects is a column, `shortname` and `imagename`
/// renamed.
pub fn images_table(images: &[Dict]) -> String {
    let (columns, rows) = dict_rows(images);
    let headers: Vec<String> = columns
        .into_iter()
        .map(|key| match key.as_str() {
            "shortname" => "Short name".to_owned(),
            "imagename" => "Container image URL".to_owned(),
            _ => key,
        })
        .collect();
    tabulate(&rows, &headers, Format::Pretty)
}

/// `quota`: a `simple` table per category, the category's name heading the first column,
/// a `Used` column when the first item has `used`; separated by empty lines.
pub fn quota_tables(categories: &[Value]) -> Result<String, Unformattable> {
    let mut tables = Vec::new();
    for category in categories {
        let name = category
            .get("name")
            .ok_or(Unformattable("a quota category without name"))?;
        let items = category
            .get("items")
            .and_then(Value::as_array)
            .filter(|items| !items.is_empty())
            .ok_or(Unformattable("a quota category without items"))?;
        let has_used = items[0].get("used").is_some();
        let null = Value::Null;
        let rows: Vec<Vec<Value>> = items
            .iter()
            .map(|item| {
                let field = |key: &str| item.get(key).unwrap_or(&null).clone();
                if has_used {
                    vec![field("name"), field("used"), field("limit")]
                } else {
                    vec![field("name"), field("limit")]
                }
            })
            .collect();
        let mut headers = vec![py_str(name)];
        if has_used {
            headers.push("Used".to_owned());
        }
        headers.push("Limit".to_owned());
        tables.push(tabulate(&rows, &headers, Format::Simple));
    }
    Ok(tables.join("\n\n"))
}

/// `tabulate`'s rows of a list of dicts: the keys in first-seen order, a missing key an
/// empty cell.
fn dict_rows(dicts: &[Dict]) -> (Vec<String>, Vec<Vec<Value>>) {
    let mut columns: Vec<String> = Vec::new();
    for dict in dicts {
        for key in dict.keys() {
            if !columns.iter().any(|column| column == key) {
                columns.push(key.to_owned());
            }
        }
    }
    let rows = dicts
        .iter()
        .map(|dict| {
            columns
                .iter()
                .map(|column| dict.get(column).cloned().unwrap_or(Value::Null))
                .collect()
        })
        .collect();
    (columns, rows)
}

#[cfg(test)]
mod tests;
