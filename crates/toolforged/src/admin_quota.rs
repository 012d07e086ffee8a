//! `toolforged admin quota …`: per-tool quota overrides (design.md), both ends.
//!
//! - `quota show TOOL`: every key with its default, override and effective value.
//! - `quota set TOOL KEY=VALUE…`: overrides keys; every pair is validated
//!   ([`jobs_engine::quota::parse_assignments`]) before any is stored, so a bad pair
//!   changes nothing.
//! - `quota reset TOOL KEY…`: removes overrides, so the keys have their defaults again.
//!   A separate verb rather than `KEY=default`, so a value is always a quantity and a
//!   typo in a value can never silently mean "back to the default".
//!
//! Keys: `pods`, `jobs`, `cronjobs`, `continuous`, `envvars` (counts), `cpu`, `job-cpu`
//! (`2`, `500m`), `memory`, `job-memory` (`4Gi`). The jobs engine and the envvars service
//! read the overrides from the store on every check, so a change applies at once to new
//! jobs and envvars; what already runs is left alone.

use std::collections::BTreeMap;

use api_types::admin::{AdminError, AdminRequest, AdminResponse, QuotaEntryView, QuotaView};
use jobs_engine::ToolQuota;
use jobs_engine::quota::{QuotaKey, parse_assignments};

/// Answers a quota request; `None` for every other request.
pub async fn handle(
    store: &store::Store,
    secrets: &secrets::Secrets,
    request: &AdminRequest,
) -> Option<AdminResponse> {
    let res = match request {
        AdminRequest::QuotaShow { tool } => show(store, secrets, tool).await,
        AdminRequest::QuotaSet { tool, values } => {
            let pairs: Vec<(String, String)> = values
                .iter()
                .map(|pair| (pair.key.clone(), pair.value.clone()))
                .collect();
            set(store, secrets, tool, &pairs).await
        }
        AdminRequest::QuotaReset { tool, keys } => reset(store, secrets, tool, keys).await,
        _ => return None,
    };
    Some(match res {
        Ok(view) => AdminResponse::Ok(serde_json::to_value(&view).unwrap_or_default()),
        Err(Failure::Refused(message)) => AdminResponse::Error(AdminError {
            message,
            refused: true,
        }),
        Err(Failure::Store(store::Error::NotFound { what, name })) => {
            AdminResponse::Error(AdminError {
                message: format!("no {what} named '{name}'"),
                refused: true,
            })
        }
        Err(Failure::Store(err)) => {
            let message = crate::admin_server::render_error(&err);
            tracing::error!(command = "quota", error = %message, "admin command failed");
            AdminResponse::Error(AdminError {
                message,
                refused: false,
            })
        }
    })
}

enum Failure {
    /// The request breaks a rule; the message names it.
    Refused(String),
    Store(store::Error),
}

impl From<store::Error> for Failure {
    fn from(err: store::Error) -> Self {
        Failure::Store(err)
    }
}

async fn show(
    store: &store::Store,
    secrets: &secrets::Secrets,
    tool: &str,
) -> Result<QuotaView, Failure> {
    if store.get_tool(tool).await?.is_none() {
        return Err(Failure::Store(store::Error::NotFound {
            what: "tool",
            name: tool.to_owned(),
        }));
    }
    let overrides = store.quota_overrides(tool).await?;
    Ok(view(tool, &overrides, secrets.default_quota(), Vec::new()))
}

async fn set(
    store: &store::Store,
    secrets: &secrets::Secrets,
    tool: &str,
    pairs: &[(String, String)],
) -> Result<QuotaView, Failure> {
    let assignments = parse_assignments(pairs).map_err(|err| {
        Failure::Refused(format!(
            "nothing was changed: {err} (see `toolforged admin quota set --help`)"
        ))
    })?;
    let values: Vec<(&str, &str)> = assignments
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect();
    store
        .set_quota_overrides(tool, &values, time::OffsetDateTime::now_utc())
        .await?;
    let changed = assignments
        .iter()
        .map(|(key, _)| key.as_str().to_owned())
        .collect();
    let overrides = store.quota_overrides(tool).await?;
    Ok(view(tool, &overrides, secrets.default_quota(), changed))
}

async fn reset(
    store: &store::Store,
    secrets: &secrets::Secrets,
    tool: &str,
    keys: &[String],
) -> Result<QuotaView, Failure> {
    let mut parsed = Vec::new();
    let mut problems = Vec::new();
    if keys.is_empty() {
        problems.push("give at least one KEY".to_owned());
    }
    for key in keys {
        match QuotaKey::parse(key) {
            Ok(key) if !parsed.contains(&key) => parsed.push(key),
            Ok(_) => {}
            Err(err) => problems.push(err.0),
        }
    }
    if !problems.is_empty() {
        return Err(Failure::Refused(format!(
            "nothing was changed: {}",
            problems.join("; ")
        )));
    }
    let keys: Vec<&str> = parsed.iter().map(|key| key.as_str()).collect();
    let changed = store.reset_quota_overrides(tool, &keys).await?;
    let overrides = store.quota_overrides(tool).await?;
    Ok(view(tool, &overrides, secrets.default_quota(), changed))
}

/// Every key of `tool`'s quota. An override that does not parse (the database was edited
/// by hand) is shown but not effective, as the engine ignores it.
fn view(
    tool: &str,
    overrides: &BTreeMap<String, String>,
    envvars_default: u32,
    changed: Vec<String>,
) -> QuotaView {
    let defaults = ToolQuota::default();
    let quota = QuotaKey::ALL
        .into_iter()
        .map(|key| {
            let default = key.format_value(defaults.get(key).unwrap_or(u64::from(envvars_default)));
            let override_value = overrides.get(key.as_str()).cloned();
            let effective = override_value
                .as_deref()
                .and_then(|value| key.canonical_value(value).ok())
                .unwrap_or_else(|| default.clone());
            QuotaEntryView {
                key: key.as_str().to_owned(),
                default,
                override_value,
                effective,
            }
        })
        .collect();
    QuotaView {
        tool: tool.to_owned(),
        quota,
        changed,
    }
}

/// Splits the command line's `KEY=VALUE` pairs; the daemon validates keys and values.
pub fn split_assignments(
    pairs: Vec<String>,
) -> Result<Vec<api_types::admin::QuotaAssignment>, String> {
    pairs
        .into_iter()
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) => Ok(api_types::admin::QuotaAssignment {
                key: key.trim().to_owned(),
                value: value.trim().to_owned(),
            }),
            None => Err(format!(
                "'{pair}' is not KEY=VALUE (for example pods=20, cpu=500m or memory=4Gi); nothing was changed"
            )),
        })
        .collect()
}

/// The table `quota show` prints, after a line saying what `set` or `reset` changed.
pub fn render(request: &AdminRequest, value: &serde_json::Value) -> String {
    let Ok(view) = serde_json::from_value::<QuotaView>(value.clone()) else {
        return format!("{value}\n");
    };
    let mut out = match request {
        AdminRequest::QuotaSet { .. } => {
            format!("Set {} of {}.\n", view.changed.join(", "), view.tool)
        }
        AdminRequest::QuotaReset { .. } if view.changed.is_empty() => format!(
            "{} had no override of these keys: nothing was changed.\n",
            view.tool
        ),
        AdminRequest::QuotaReset { .. } => format!(
            "Reset {} of {} to the default.\n",
            view.changed.join(", "),
            view.tool
        ),
        _ => String::new(),
    };
    let rows: Vec<[&str; 4]> = view
        .quota
        .iter()
        .map(|entry| {
            [
                entry.key.as_str(),
                entry.default.as_str(),
                entry.override_value.as_deref().unwrap_or("-"),
                entry.effective.as_str(),
            ]
        })
        .collect();
    let header = ["KEY", "DEFAULT", "OVERRIDE", "EFFECTIVE"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_default_override_and_effective_for_every_key() {
        let overrides: BTreeMap<String, String> = [("continuous", "5"), ("job-memory", "1Gi")]
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect();
        let view = view("mytool", &overrides, 100, vec!["continuous".to_owned()]);
        let request = AdminRequest::QuotaSet {
            tool: "mytool".to_owned(),
            values: Vec::new(),
        };
        let text = render(&request, &serde_json::to_value(&view).unwrap());
        assert_eq!(
            text,
            "Set continuous of mytool.
KEY         DEFAULT  OVERRIDE  EFFECTIVE
pods        10       -         10
jobs        15       -         15
cronjobs    50       -         50
continuous  3        5         5
cpu         4        -         4
memory      8Gi      -         8Gi
job-cpu     1        -         1
job-memory  4Gi      1Gi       1Gi
envvars     100      -         100
"
        );
    }

    #[test]
    fn a_pair_without_an_equals_sign_is_refused_before_asking_the_daemon() {
        let err = split_assignments(vec!["pods=20".to_owned(), "cpu".to_owned()]).unwrap_err();
        assert_eq!(
            err,
            "'cpu' is not KEY=VALUE (for example pods=20, cpu=500m or memory=4Gi); nothing was changed"
        );
        let pairs = split_assignments(vec!["memory = 4Gi".to_owned()]).unwrap();
        assert_eq!(
            (pairs[0].key.as_str(), pairs[0].value.as_str()),
            ("memory", "4Gi")
        );
    }
}
