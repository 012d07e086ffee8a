//! `toolforged admin web-stats [--tool T] [--since DURATION]`: the front proxy's access
//! log (`<data-dir>/logs/proxy/`) summarised the way admins used goaccess on the proxies:
//! requests, status codes, top paths, top clients and top tools.

use api_types::admin::{AdminError, AdminRequest, AdminResponse, WebStats, WebStatsCount};

/// Flags of `web-stats`.
#[derive(Debug, clap::Args)]
pub struct WebStatsArgs {
    /// Only requests for this tool.
    #[arg(long)]
    pub tool: Option<String>,
    /// Only requests of the last DURATION, e.g. 30m, 1h or 7d.
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
}

/// The request for `args`; a bad duration is refused here.
pub fn request(args: WebStatsArgs) -> Result<AdminRequest, String> {
    let since_secs = match args.since {
        Some(text) => Some(
            crate::config::parse_duration(&text)
                .map_err(|err| format!("invalid --since: {err:#}"))?
                .as_secs(),
        ),
        None => None,
    };
    Ok(AdminRequest::WebStats {
        tool: args.tool,
        since_secs,
    })
}

/// The access log's directory under the data directory.
pub fn log_dir(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("logs").join("proxy")
}

/// Summarises the access log in `data_dir`, off the async threads.
pub async fn handle(
    data_dir: &std::path::Path,
    tool: Option<String>,
    since_secs: Option<u64>,
) -> AdminResponse {
    let since = since_secs.map(|secs| {
        time::OffsetDateTime::now_utc()
            - time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 2))
    });
    let dir = log_dir(data_dir);
    let filter = proxy::access_log::StatsFilter { tool, since };
    let summary =
        tokio::task::spawn_blocking(move || proxy::access_log::summarize(&dir, &filter)).await;
    match summary {
        Ok(Ok(stats)) => AdminResponse::Ok(serde_json::to_value(stats).unwrap_or_default()),
        Ok(Err(err)) => AdminResponse::Error(AdminError {
            message: format!("cannot read the proxy's access log: {err}"),
            refused: false,
        }),
        Err(err) => AdminResponse::Error(AdminError {
            message: format!("summarising the access log failed: {err}"),
            refused: false,
        }),
    }
}

/// The summary as text.
pub fn render(value: &serde_json::Value) -> String {
    let Ok(stats) = serde_json::from_value::<WebStats>(value.clone()) else {
        return format!("{value}\n");
    };
    let mut out = String::new();
    let scope = match &stats.tool {
        Some(tool) => format!("tool {tool}"),
        None => "all tools".to_owned(),
    };
    let period = match (&stats.first, &stats.last) {
        (Some(first), Some(last)) => format!("{first} to {last}"),
        _ => "no requests".to_owned(),
    };
    out.push_str(&format!("Requests of {scope}: {period}\n"));
    if let Some(since) = &stats.since {
        out.push_str(&format!("Since:           {since}\n"));
    }
    out.push_str(&format!("Requests:        {}\n", stats.requests));
    out.push_str(&format!("Unique clients:  {}\n", stats.unique_clients));
    out.push_str(&format!("Bytes sent:      {}\n", stats.bytes_sent));
    out.push_str(&format!(
        "Duration:        p50 {:.1} ms, p99 {:.1} ms\n",
        stats.duration_p50_ms, stats.duration_p99_ms
    ));
    let section = |out: &mut String, title: &str, header: &str, rows: &[WebStatsCount]| {
        out.push('\n');
        out.push_str(title);
        out.push('\n');
        let rows = rows
            .iter()
            .map(|row| vec![row.key.clone(), row.requests.to_string()])
            .collect();
        out.push_str(&crate::admin_client::table(&[header, "REQUESTS"], rows));
    };
    section(&mut out, "Status codes", "STATUS", &stats.statuses);
    section(&mut out, "Top paths", "PATH", &stats.top_paths);
    section(&mut out, "Top clients", "CLIENT", &stats.top_clients);
    if stats.tool.is_none() {
        section(&mut out, "Top tools", "TOOL", &stats.top_tools);
    }
    out
}
