//! The front proxy inside the daemon: the `proxy` crate over the accounts store (tools
//! and maintainers) and the jobs engine (webservice replicas), with bans loaded from the
//! store at start and again whenever the admin socket or the dashboard changes them.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use proxy::{BoxFuture, Directory, DirectoryError, ToolInfo};
use store::Store;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ProxySettings;

/// What the proxy needs from the rest of the daemon.
pub struct FrontProxy<'a> {
    pub settings: &'a ProxySettings,
    pub public_domain: &'a str,
    pub data_dir: &'a Path,
    pub dashboard_url: String,
    pub store: Store,
    pub engine: jobs_engine::JobsEngine,
    /// Notified after every change of the bans.
    pub bans_changed: Arc<Notify>,
}

impl FrontProxy<'_> {
    /// Loads TLS and the bans, starts the access log, the ban reloader and the
    /// listener's accept loop on `tracker`.
    pub async fn start(
        self,
        listener: TcpListener,
        tracker: &TaskTracker,
        cancel: CancellationToken,
    ) -> anyhow::Result<()> {
        let tls = match &self.settings.tls {
            Some((cert, key)) => Some(
                proxy::tls::server_config(cert, key)
                    .context("while loading --proxy-tls-cert and --proxy-tls-key")?,
            ),
            None => None,
        };
        let log_dir = crate::admin_web_stats::log_dir(self.data_dir);
        let access_log = proxy::AccessLog::start(
            &log_dir,
            proxy::access_log::Rotation::default(),
            tracker,
            cancel.clone(),
        )
        .with_context(|| format!("while opening the access log in {}", log_dir.display()))?;
        let config = proxy::ProxyConfig {
            upstream_timeout: self.settings.upstream_timeout,
            max_body: self.settings.max_body,
            max_connections_per_tool: self.settings.max_connections_per_tool,
            dashboard_url: Some(self.dashboard_url),
            mail_domain: None,
            errors_dir: Some(self.data_dir.join("proxy").join("errors")),
            ..proxy::ProxyConfig::new(self.public_domain)
        };
        let directory = Arc::new(StoreDirectory {
            store: self.store.clone(),
            engine: self.engine,
        });
        let proxy = proxy::Proxy::new(
            config,
            directory,
            Some(access_log),
            tracker.clone(),
            cancel.clone(),
        );
        // Bans apply before the first request is accepted.
        reload_bans(&proxy, &self.store)
            .await
            .context("while loading the banned addresses")?;
        tracker.spawn(ban_reloader(
            proxy.clone(),
            self.store,
            self.bans_changed,
            cancel.clone(),
        ));
        if tls.is_some() {
            tracing::info!("the front proxy terminates TLS (HTTP/2 by ALPN)");
        }
        tracker.spawn(proxy::serve(proxy, listener, tls, cancel, tracker.clone()));
        Ok(())
    }
}

async fn reload_bans(proxy: &proxy::Proxy, store: &Store) -> anyhow::Result<()> {
    let bans: Vec<proxy::Ban> = store
        .list_bans()
        .await?
        .into_iter()
        .map(|ban| proxy::Ban {
            net: ban.network,
            reason: ban.reason,
        })
        .collect();
    let n_bans = bans.len();
    proxy.set_bans(proxy::BanList::new(&bans));
    tracing::debug!(n_bans, "the front proxy's ban list is loaded");
    Ok(())
}

async fn ban_reloader(
    proxy: Arc<proxy::Proxy>,
    store: Store,
    bans_changed: Arc<Notify>,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = bans_changed.notified() => {}
        }
        if let Err(err) = reload_bans(&proxy, &store).await {
            tracing::error!(error = %format!("{err:#}"), "reloading the banned addresses failed; the previous list stays");
        }
    }
}

/// Tools from the store, webservice replicas from the jobs engine.
struct StoreDirectory {
    store: Store,
    engine: jobs_engine::JobsEngine,
}

impl Directory for StoreDirectory {
    fn upstreams<'a>(&'a self, tool: &'a str) -> BoxFuture<'a, Vec<SocketAddr>> {
        let upstreams = self.engine.web_upstreams(tool);
        Box::pin(async move { upstreams })
    }

    fn tool<'a>(
        &'a self,
        tool: &'a str,
    ) -> BoxFuture<'a, Result<Option<ToolInfo>, DirectoryError>> {
        Box::pin(async move {
            let failed = |err: store::Error| DirectoryError(err.to_string());
            if self.store.get_tool(tool).await.map_err(failed)?.is_none() {
                return Ok(None);
            }
            let maintainers = self
                .store
                .maintainers(tool)
                .await
                .map_err(failed)?
                .into_iter()
                .map(|(name, kind)| proxy::Maintainer {
                    name,
                    kind: match kind {
                        store::PrincipalKind::User => proxy::MaintainerKind::User,
                        store::PrincipalKind::Tool => proxy::MaintainerKind::Tool,
                    },
                })
                .collect();
            Ok(Some(ToolInfo { maintainers }))
        })
    }

    fn tool_names(&self) -> BoxFuture<'_, Result<Vec<String>, DirectoryError>> {
        Box::pin(async move {
            let tools = self
                .store
                .list_tools()
                .await
                .map_err(|err| DirectoryError(err.to_string()))?;
            Ok(tools.into_iter().map(|tool| tool.name).collect())
        })
    }
}
