//! The settings of `toolforge webservice`: the `service.template` file, the
//! `service.manifest` state file, and how they combine with the command line (the command
//! line wins over the template, which wins over the manifest, which wins over defaults).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_norway::Value;

/// The keys a `service.template` may hold.
pub const TEMPLATE_KEYS: [&str; 8] = [
    "backend",
    "cpu",
    "mem",
    "replicas",
    "type",
    "extra_args",
    "buildservice-image",
    "mount",
];

/// The keys of `service.manifest` that describe the webservice (removed by `stop`).
const MANIFEST_WEB_KEYS: [&str; 9] = [
    "distribution",
    "release",
    "web",
    "buildservice-image",
    "backend",
    "cpu",
    "memory",
    "replicas",
    "web::extra_args",
];

/// The manifest version the original writes.
const MANIFEST_VERSION: u64 = 4;

/// The backends `--backend` accepts.
pub const BACKENDS: [&str; 2] = ["gridengine", "kubernetes"];

/// `Ok(quantity)` when `text` is a Kubernetes quantity as the original checks it
/// (`<digits><suffix>`, suffix one of Ki Mi Gi Ti Pi Ei n u m k M G T P E or none).
pub fn kube_quant(text: &str) -> Result<String, String> {
    const SUFFIXES: [&str; 16] = [
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "", "k", "M", "G", "T", "P", "E",
    ];
    let digits = text.chars().take_while(char::is_ascii_digit).count();
    let suffix = &text[digits..];
    if digits > 0 && SUFFIXES.contains(&suffix) {
        Ok(text.to_owned())
    } else {
        Err(format!("{text} is not a valid Kubernetes quantity"))
    }
}

/// `Ok(n)` when `text` is a whole number of replicas, at least 1.
pub fn replicas(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "{text} is not a valid number of replicas (a whole number, at least 1)"
        )),
    }
}

/// What a `service.template` sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Template {
    /// `backend`.
    pub backend: Option<String>,
    /// `cpu`.
    pub cpu: Option<String>,
    /// `mem`.
    pub mem: Option<String>,
    /// `replicas`.
    pub replicas: Option<u32>,
    /// `type`.
    pub wstype: Option<String>,
    /// `extra_args`.
    pub extra_args: Option<Vec<String>>,
    /// `buildservice-image`.
    pub buildservice_image: Option<String>,
    /// `mount`.
    pub mount: Option<String>,
}

/// Why a template was refused: the lines to print on standard error (exit 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(pub String);

impl Template {
    /// Parses the text of the template at `path` (named in the errors).
    pub fn parse(path: &Path, text: &str) -> Result<Template, TemplateError> {
        let errors = |message: String| {
            TemplateError(format!(
                "Your template file ({}) contains errors:\n  {message}",
                path.display()
            ))
        };
        let value: Value = serde_norway::from_str(text).map_err(|err| errors(err.to_string()))?;
        let mapping = match value {
            Value::Null => return Ok(Template::default()),
            Value::Mapping(mapping) => mapping,
            _ => return Err(errors("it must be a YAML mapping of settings".to_owned())),
        };
        let mut unknown = Vec::new();
        for key in mapping.keys() {
            let name = scalar(key).unwrap_or_else(|| format!("{key:?}"));
            if !TEMPLATE_KEYS.contains(&name.as_str()) {
                unknown.push(name);
            }
        }
        if !unknown.is_empty() {
            return Err(TemplateError(format!(
                "Your template file ({}) contains unknown keys: {}\n  allowed keys: {}",
                path.display(),
                unknown.join(", "),
                TEMPLATE_KEYS.join(", ")
            )));
        }
        let text_of = |key: &str| -> Result<Option<String>, TemplateError> {
            match mapping.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(value) => scalar(value)
                    .map(Some)
                    .ok_or_else(|| errors(format!("{key}: must be a single value"))),
            }
        };
        let backend = text_of("backend")?;
        if let Some(backend) = &backend
            && !BACKENDS.contains(&backend.as_str())
        {
            return Err(errors(format!(
                "backend: invalid choice: '{backend}' (choose from 'gridengine', 'kubernetes')"
            )));
        }
        let quantity = |key: &str| -> Result<Option<String>, TemplateError> {
            text_of(key)?
                .map(|value| kube_quant(&value).map_err(|err| errors(format!("{key}: {err}"))))
                .transpose()
        };
        let cpu = quantity("cpu")?;
        let mem = quantity("mem")?;
        let replicas = text_of("replicas")?
            .map(|value| replicas(&value).map_err(|err| errors(format!("replicas: {err}"))))
            .transpose()?;
        let mount = text_of("mount")?;
        if let Some(mount) = &mount
            && mount != "all"
            && mount != "none"
        {
            return Err(errors(format!(
                "mount: invalid choice: '{mount}' (choose from 'all', 'none')"
            )));
        }
        let extra_args = match mapping.get("extra_args") {
            None | Some(Value::Null) => None,
            Some(Value::Sequence(items)) => Some(
                items
                    .iter()
                    .map(|item| {
                        scalar(item).ok_or_else(|| {
                            errors("extra_args: every item must be a single value".to_owned())
                        })
                    })
                    .collect::<Result<Vec<String>, TemplateError>>()?,
            ),
            Some(value) => Some(vec![scalar(value).ok_or_else(|| {
                errors("extra_args: must be a list of arguments".to_owned())
            })?]),
        };
        Ok(Template {
            backend,
            cpu,
            mem,
            replicas,
            wstype: text_of("type")?,
            extra_args,
            buildservice_image: text_of("buildservice-image")?,
            mount,
        })
    }
}

/// A YAML scalar as text (`1` → `"1"`); `None` for sequences and mappings.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// `$HOME/service.manifest`: what the last `start` recorded (type, backend, resources).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Manifest {
    path: PathBuf,
    entries: BTreeMap<String, Value>,
}

impl Manifest {
    /// Reads `home/service.manifest`; a missing file is an empty manifest.
    pub fn load(home: &Path) -> Result<Manifest, String> {
        let path = home.join("service.manifest");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(err) => return Err(format!("could not read {}: {err}", path.display())),
        };
        let entries = match serde_norway::from_str::<Value>(&text) {
            Ok(Value::Null) => BTreeMap::new(),
            Ok(Value::Mapping(mapping)) => mapping
                .into_iter()
                .filter_map(|(key, value)| scalar(&key).map(|key| (key, value)))
                .collect(),
            Ok(_) | Err(_) => {
                return Err(format!(
                    "{} is not a YAML mapping; remove it and try again",
                    path.display()
                ));
            }
        };
        Ok(Manifest { path, entries })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A text entry (`web`, `backend`, `cpu`, `memory`, `buildservice-image`).
    pub fn get(&self, key: &str) -> Option<String> {
        self.entries.get(key).and_then(scalar)
    }

    /// `replicas`.
    pub fn replicas(&self) -> Option<u32> {
        self.get("replicas").and_then(|text| replicas(&text).ok())
    }

    /// `web::extra_args`.
    pub fn extra_args(&self) -> Option<Vec<String>> {
        match self.entries.get("web::extra_args")? {
            Value::Sequence(items) => items.iter().map(scalar).collect(),
            value => scalar(value).map(|arg| vec![arg]),
        }
    }

    /// Sets `key`.
    pub fn set(&mut self, key: &str, value: Value) {
        self.entries.insert(key.to_owned(), value);
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &str) {
        self.entries.remove(key);
    }

    /// Whether the manifest records a webservice (`web`).
    pub fn has_web(&self) -> bool {
        self.entries.contains_key("web")
    }

    /// Records a started webservice, as the original's `update_manifest(start)`.
    pub fn record_start(&mut self, started: &Started<'_>) {
        self.set("web", Value::String(started.wstype.to_owned()));
        match started.buildservice_image {
            Some(image) => self.set("buildservice-image", Value::String(image.to_owned())),
            None => self.remove("buildservice-image"),
        }
        self.remove("release");
        if started.replicas == 1 {
            self.remove("replicas");
        } else {
            self.set(
                "replicas",
                Value::Number(u64::from(started.replicas).into()),
            );
        }
        if let Some(cpu) = started.cpu {
            self.set("cpu", Value::String(cpu.to_owned()));
        }
        if let Some(memory) = started.memory {
            self.set("memory", Value::String(memory.to_owned()));
        }
        if !started.extra_args.is_empty() {
            self.set(
                "web::extra_args",
                Value::Sequence(
                    started
                        .extra_args
                        .iter()
                        .map(|arg| Value::String(arg.clone()))
                        .collect(),
                ),
            );
        }
    }

    /// Forgets the webservice, as the original's `update_manifest(stop)`; `false` when
    /// there was nothing to forget (the file is then left alone).
    pub fn record_stop(&mut self) -> bool {
        if !self.has_web() {
            return false;
        }
        for key in MANIFEST_WEB_KEYS {
            self.entries.remove(key);
        }
        true
    }

    /// Writes the manifest (through `service.manifest~` and a rename, as the original), with
    /// the original's header and `version`.
    pub fn save(&mut self, now: time::OffsetDateTime) -> std::io::Result<()> {
        self.set("version", Value::Number(MANIFEST_VERSION.into()));
        let body = if self.entries.is_empty() {
            "{}\n".to_owned()
        } else {
            serde_norway::to_string(&self.entries).map_err(std::io::Error::other)?
        };
        let text = format!(
            "# This file is used by Toolforge infrastructure.\n\
             # Please do not edit manually at this time.\n\
             # {}\n{body}",
            c_locale_date(now)
        );
        let tilde = self.path.with_file_name("service.manifest~");
        std::fs::write(&tilde, text)?;
        std::fs::rename(&tilde, &self.path)
    }
}

/// What `start` recorded in the manifest.
#[derive(Debug, Clone, Copy)]
pub struct Started<'a> {
    /// The type.
    pub wstype: &'a str,
    /// `--buildservice-image`.
    pub buildservice_image: Option<&'a str>,
    /// Replicas.
    pub replicas: u32,
    /// `--cpu`.
    pub cpu: Option<&'a str>,
    /// `--mem`.
    pub memory: Option<&'a str>,
    /// The extra arguments.
    pub extra_args: &'a [String],
}

/// `now` as C's `%c` in the C locale (`Sun Nov 29 22:48:27 2026`).
fn c_locale_date(now: time::OffsetDateTime) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        DAYS[usize::from(now.weekday().number_days_from_monday())],
        MONTHS[usize::from(u8::from(now.month())) - 1],
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.year()
    )
}

#[cfg(test)]
mod tests;
