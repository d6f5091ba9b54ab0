//! `steward serve`: logging, store, demo data, metrics, the HTTP server, graceful shutdown.

use std::sync::Arc;

use anyhow::Context;
use secrecy::ExposeSecret;
use steward_app::auth::Authenticator;
use steward_app::{Services, SystemClock};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

fn init_logging(cfg: &Config) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&cfg.log).with_context(|| format!("invalid log filter '{}'", cfg.log))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(true);
    let result = match cfg.log_format {
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot initialise logging: {e}"))
}

pub async fn serve(cfg: Config) -> anyhow::Result<()> {
    init_logging(&cfg)?;
    tracing::info!(config = ?cfg, "starting steward {}", env!("CARGO_PKG_VERSION"));
    let store = crate::cli::open_store(&cfg, true).await?;
    let services = Services::new(Arc::new(store), Arc::new(SystemClock));
    if cfg.demo {
        let n = crate::demo::seed(&services).await.context("seeding demo data failed")?;
        tracing::info!(created = n, "demo organization ready");
    }
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| anyhow::anyhow!("cannot install the metrics recorder: {e}"))?;
    let auth = Authenticator::new(cfg.bootstrap_admin_token.as_ref().map(|s| s.expose_secret()));
    let app = steward_web::app(services, auth, cfg.public_url.clone(), Some(metrics));
    let listener =
        tokio::net::TcpListener::bind(cfg.listen).await.with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening on http://{addr}");
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: finishing requests in flight");
        signal.cancel();
    });
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await.context("server failed")?;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
