//! `load` and `dump`: a YAML entry becomes `run` arguments (`_job_to_arg_parser_args`),
//! an API job becomes a YAML entry (`job_prepare_for_dump`), with the official client's
//! rules and warnings (api-contract.md §4.2.10, §4.2.11, §3.1.9).

use std::collections::BTreeMap;

use serde_json::Value;
use serde_norway::Value as Yaml;

use crate::jobs::dict::{Dict, truthy};
use crate::jobs::run::is_buildservice_image;
use crate::pytext::{py_float_repr, py_str};

/// The long options of `run` (and `name`): the keys a dumped entry may keep.
pub const RUN_KEYS: &[&str] = &[
    "name",
    "command",
    "image",
    "no-filelog",
    "filelog",
    "filelog-stdout",
    "filelog-stderr",
    "retry",
    "mem",
    "cpu",
    "emails",
    "mount",
    "timeout",
    "schedule",
    "continuous",
    "wait",
    "health-check-script",
    "health-check-http",
    "port",
    "replicas",
];

/// `run` arguments of one entry of a `load` file, and the warnings to log first.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Converted {
    /// The name first (when the entry has a non-empty one), then `--key value` pairs.
    pub args: Vec<String>,
    /// `WARNING:` lines, in order.
    pub warnings: Vec<String>,
}

/// `_job_to_arg_parser_args`: `name` first, `wait`/`filelog`/`no-filelog`/`continuous` as
/// flags, every other `key: value` as `--key str(value)`.
///
/// YAML 1.1 booleans (`yes`, `on`, …), which PyYAML reads as `True`, count as true here
/// too, since our YAML parser reads them as text.
pub fn entry_to_run_args(entry: &serde_norway::Mapping) -> Converted {
    let mut out = Converted::default();
    let name = entry.get("name");
    let has_name = name.is_some_and(yaml_truthy);
    if let Some(name) = name.filter(|_| has_name) {
        out.args.push(yaml_py_str(name));
    }
    for (key, value) in entry {
        let key = yaml_py_str(key);
        if key == "name" && has_name {
            continue;
        }
        let flag = yaml11_bool(value);
        match key.as_str() {
            "wait" if flag == Some(false) => out.warnings.push(
                "Invalid key: 'wait' expects True or integer but got \"False\". omitting key..."
                    .to_owned(),
            ),
            "wait" if flag == Some(true) => out.args.push("--wait".to_owned()),
            "filelog" | "no-filelog" | "continuous" => {
                let text = value.as_str();
                if key == "filelog" && text == Some("yes") {
                    out.warnings.push(
                        "Assigning \"yes\" to filelog will be deprecated in future releases. \
                         Please use True unquoted instead."
                            .to_owned(),
                    );
                    out.args.push("--filelog".to_owned());
                } else if key == "no-filelog" && text == Some("true") {
                    out.warnings.push(
                        "Assigning \"true\" to no-filelog will be deprecated in future \
                         releases. Please use True unquoted instead."
                            .to_owned(),
                    );
                    out.args.push("--no-filelog".to_owned());
                } else if flag == Some(true) {
                    out.args.push(format!("--{key}"));
                } else {
                    out.warnings.push(format!(
                        "Invalid key: {key} expects True but got \"{}\". omitting key...",
                        yaml_py_str(value)
                    ));
                }
            }
            _ => {
                out.args.push(format!("--{key}"));
                out.args.push(yaml_py_str(value));
            }
        }
    }
    out
}

/// `job_prepare_for_dump`: the `load` entry of an API job, keys sorted, and the warnings
/// to log. `Err` names a key the official client requires (it fails on them too).
pub fn job_to_entry(
    mut job: Dict,
    tool: &str,
) -> Result<(BTreeMap<String, Value>, Vec<String>), MissingKey> {
    let mut warnings = Vec::new();
    let cmd = job.get("cmd").cloned().ok_or(MissingKey("cmd"))?;
    job.set("command", cmd);
    let name = py_str(job.get("name").ok_or(MissingKey("name"))?);
    let image = job.pop("imagename").ok_or(MissingKey("imagename"))?;
    let buildservice = is_buildservice_image(&py_str(&image));

    let filelog = truthy(job.pop("filelog").as_ref());
    if filelog && buildservice {
        job.set("filelog", "yes");
    } else if !filelog && !buildservice {
        job.set("no-filelog", "true");
    }
    for (api_key, key, suffix) in [
        ("filelog_stdout", "filelog-stdout", "out"),
        ("filelog_stderr", "filelog-stderr", "err"),
    ] {
        if let Some(path) = job.get(api_key).filter(|path| truthy(Some(path))) {
            let path = py_str(path);
            if !is_default_filelog(&path, &name, suffix, tool) {
                job.set(key, shorten_filelog_path(&path, tool));
            }
        }
    }
    let mount = job.get("mount").and_then(Value::as_str).map(str::to_owned);
    match mount.as_deref() {
        Some("none") if buildservice => {
            job.pop("mount");
        }
        Some("all") if !buildservice => {
            job.pop("mount");
        }
        _ => {}
    }
    let retry_is_zero = match job.get("retry") {
        None => true,
        Some(Value::Number(number)) => number.as_f64() == Some(0.0),
        Some(Value::Bool(flag)) => !flag,
        Some(_) => false,
    };
    if retry_is_zero {
        job.pop("retry").ok_or(MissingKey("retry"))?;
    }
    if job.get("emails").and_then(Value::as_str) == Some("none") {
        job.pop("emails");
    }
    if let Some(port) = job.pop("port").filter(|port| truthy(Some(port))) {
        job.set("port", port);
    }
    if let Some(replicas) = job
        .pop("replicas")
        .filter(|replicas| truthy(Some(replicas)))
        && job.is_set("continuous")
        && truthy(job.get("continuous"))
    {
        job.set("replicas", replicas);
    }
    if let Some(memory) = job.get("memory").filter(|memory| truthy(Some(memory))) {
        let memory = memory.clone();
        job.set("mem", memory);
    }
    if let Some(check) = job.get("health_check").filter(|check| truthy(Some(check))) {
        let check = check.clone();
        let kind = check
            .get("type")
            .or_else(|| check.get("health_check_type"))
            .and_then(Value::as_str);
        match kind {
            Some("script") => job.set(
                "health-check-script",
                check.get("script").cloned().ok_or(MissingKey("script"))?,
            ),
            Some("http") => job.set(
                "health-check-http",
                check.get("path").cloned().ok_or(MissingKey("path"))?,
            ),
            _ => warnings.push(format!(
                "unknown health_check from jobs-api: {}",
                py_repr(&check)
            )),
        }
    }
    for key in [
        "cmd",
        "memory",
        "image_state",
        "status_short",
        "status_long",
        "schedule_actual",
        "filelog_stdout",
        "filelog_stderr",
        "health_check",
    ] {
        job.pop(key);
    }
    job.set("image", image);
    let mut entry = BTreeMap::new();
    for (key, value) in job.iter() {
        if RUN_KEYS.contains(&key) {
            entry.insert(key.to_owned(), value.clone());
        } else {
            warnings.push(format!(
                "unexpected key '{key}' in job, omitting it from dump"
            ));
        }
    }
    Ok((entry, warnings))
}

/// An API job without a key the dump needs.
#[derive(Debug, PartialEq, Eq)]
pub struct MissingKey(pub &'static str);

impl std::fmt::Display for MissingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a job from the API has no '{}'", self.0)
    }
}

impl std::error::Error for MissingKey {}

fn is_default_filelog(path: &str, job: &str, suffix: &str, tool: &str) -> bool {
    path.is_empty()
        || path == format!("$TOOL_DATA_DIR/{job}.{suffix}")
        || path == format!("/data/project/{tool}/{job}.{suffix}")
}

fn shorten_filelog_path(path: &str, tool: &str) -> String {
    let path = path.strip_prefix("$TOOL_DATA_DIR/").unwrap_or(path);
    let prefix = format!("/data/project/{tool}/");
    path.strip_prefix(&prefix).unwrap_or(path).to_owned()
}

/// PyYAML's booleans (YAML 1.1), from a real boolean or its plain-text spellings.
fn yaml11_bool(value: &Yaml) -> Option<bool> {
    match value {
        Yaml::Bool(flag) => Some(*flag),
        Yaml::String(text) => match text.as_str() {
            "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Some(true),
            "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn yaml_truthy(value: &Yaml) -> bool {
    match value {
        Yaml::Null => false,
        Yaml::Bool(flag) => *flag,
        Yaml::Number(number) => number.as_f64().is_some_and(|n| n != 0.0),
        Yaml::String(text) => !text.is_empty(),
        Yaml::Sequence(items) => !items.is_empty(),
        Yaml::Mapping(map) => !map.is_empty(),
        Yaml::Tagged(tagged) => yaml_truthy(&tagged.value),
    }
}

/// Python's `str()` of what PyYAML would have loaded.
pub fn yaml_py_str(value: &Yaml) -> String {
    match value {
        Yaml::Null => "None".to_owned(),
        Yaml::Bool(true) => "True".to_owned(),
        Yaml::Bool(false) => "False".to_owned(),
        Yaml::Number(number) => match (number.as_i64(), number.as_u64(), number.as_f64()) {
            (Some(int), _, _) => int.to_string(),
            (None, Some(int), _) => int.to_string(),
            (None, None, Some(float)) => py_float_repr(float),
            _ => number.to_string(),
        },
        Yaml::String(text) => text.clone(),
        Yaml::Tagged(tagged) => yaml_py_str(&tagged.value),
        other => serde_json::to_value(other).map_or_else(|_| String::new(), |v| py_repr(&v)),
    }
}

/// Python's `repr()` of a JSON value (for lists and mappings in messages).
pub fn py_repr(value: &Value) -> String {
    match value {
        Value::String(text) => {
            if text.contains('\'') && !text.contains('"') {
                format!("\"{text}\"")
            } else {
                format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
            }
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(py_repr).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", py_repr(&Value::String(k.clone())), py_repr(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        other => py_str(other),
    }
}

#[cfg(test)]
mod tests;
