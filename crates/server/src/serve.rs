//! `steward serve`: logging, store, demo data, metrics, the HTTP server, the background job
//! worker, graceful shutdown (stop accepting, finish requests and the job round in hand).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use jiff::Timestamp;
use secrecy::ExposeSecret;
use steward_app::auth::Authenticator;
use steward_app::lifecycle::worker::{LocalJobs, PARALLEL, Worker};
use steward_app::ports::ManualClock;
use steward_app::{Clock, Services, SystemClock};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
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

/// Runs the server until SIGINT/SIGTERM. `test_clock` (tests only, checked by the caller)
/// replaces the system clock with a manual one starting there and mounts its routes.
pub async fn serve(cfg: Config, test_clock: Option<Timestamp>) -> anyhow::Result<()> {
    init_logging(&cfg)?;
    tracing::info!(config = ?cfg, "starting steward {}", env!("CARGO_PKG_VERSION"));
    // Writes that queue jobs hand them to this process's worker at once; it polls for the rest.
    let local = Arc::new(LocalJobs::default());
    let store = {
        let local = local.clone();
        crate::cli::open_store(&cfg, true).await?.on_jobs_queued(move |ids| local.queued(ids))
    };
    let manual = test_clock.map(|start| Arc::new(ManualClock::new(start)));
    let clock: Arc<dyn Clock> = match &manual {
        Some(m) => {
            tracing::warn!(start = %m.now(), "TEST CLOCK: time is manual and moved through /ops/clock; never use this in production");
            m.clone()
        }
        None => Arc::new(SystemClock),
    };
    let callouts = steward_connectors::callout::HttpCallouts::new().map_err(|e| anyhow::anyhow!(e))?;
    let mut services = Services::new(Arc::new(store), clock)
        .with_connection_setup(crate::config::connection_setup(&cfg)?)
        .with_callouts(Arc::new(callouts.clone()))
        .with_chat(Arc::new(callouts));
    if let Some(key) = crate::config::audit_key(&cfg) {
        services = services.with_audit_key(key);
    }
    if let Some(retention) = cfg.audit.retention() {
        services = services.with_audit_retention(retention);
    }
    // Notification email: rendered with links into the portal, one-click decision links signed
    // under a key from `secrets_key`, sent by the worker through the relay.
    services = services.with_notify_settings(cfg.notifications.settings()?);
    if let Some(url) = &cfg.public_url {
        services = services.with_public_url(url.clone());
    }
    if let Some(key) = crate::config::decision_key(&cfg) {
        services = services.with_decision_key(key);
    }
    if let Some(smtp) = &cfg.smtp {
        let settings = smtp.settings()?;
        tracing::info!(host = %settings.host, port = settings.port, "notification email through the SMTP relay");
        if cfg.public_url.is_none() {
            tracing::warn!("[smtp] is set without public_url: notification email will carry no links");
        }
        let mailer = steward_connectors::smtp::SmtpMailer::new(settings).map_err(|e| anyhow::anyhow!("[smtp]: {e}"))?;
        services = services.with_mailer(Arc::new(mailer));
    }
    // One worker per process: the background loops and the test drain share its round lock.
    // SQLite takes one writer at a time: deliveries side by side would only queue for it.
    let (parallel, loops) = if cfg.database_url().starts_with("postgres") { (PARALLEL, 2) } else { (1, 1) };
    let worker =
        Worker::new(services.clone(), crate::worker::owner_name()).with_parallelism(parallel).with_local_jobs(local);
    if cfg.demo {
        let n = crate::demo::seed(&services).await.context("seeding demo data failed")?;
        tracing::info!(created = n, "demo organization ready");
    }
    // Metrics reveal counts: collected and served only when a token to read them is set.
    let metrics_token = steward_app::metrics::ScrapeAuthenticator::new(cfg.metrics_token.as_ref());
    let metrics = if metrics_token.is_enabled() {
        let handle = steward_web::routes::ops::prometheus_builder()
            .and_then(|b| b.install_recorder())
            .map_err(|e| anyhow::anyhow!("cannot install the metrics recorder: {e}"))?;
        steward_app::metrics::describe();
        tracing::info!("Prometheus metrics at /metrics (bearer: metrics_token)");
        Some(handle)
    } else {
        None
    };
    let mut auth = Authenticator::new(cfg.bootstrap_admin_token.as_ref().map(|s| s.expose_secret()));
    let mut portal = steward_web::signin::Portal { sign_in: None, sessions: cfg.session.policy() };
    if let Some(o) = &cfg.oidc {
        // Discovered on first use, so Steward starts while the provider is still starting.
        let idp = steward_web::identity::IdentityProvider::new(o.provider_config())
            .map_err(|e| anyhow::anyhow!("[oidc]: {e}"))?;
        auth = auth.with_identity_provider(Arc::new(idp.clone()), o.claims.clone());
        let redirect_url = cfg.redirect_url().context("[oidc] needs public_url or oidc.redirect_url")?;
        tracing::info!(issuer = %o.issuer, %redirect_url, "sign-in through OpenID Connect at /auth/login");
        portal.sign_in = Some(steward_web::signin::SignIn {
            provider: idp,
            redirect_url,
            post_logout_redirect_url: cfg.post_logout_redirect_url(),
            scopes: o.scopes.clone(),
        });
    }
    let security = steward_web::security::SecurityOptions {
        trusted_proxies: cfg.trusted_proxies()?,
        tls: cfg.tls.is_some(),
        limits: steward_web::security::RateLimits::default(),
    };
    // Read before listening, so a bad certificate stops start-up at once.
    let tls = cfg.tls.as_ref().map(crate::tls::server_config).transpose()?;
    let scim = steward_app::scim::ScimAuthenticator::new(cfg.scim_token.as_ref());
    if scim.is_enabled() {
        tracing::info!("SCIM provisioning is enabled at /scim/v2");
    }
    let options = steward_web::Options {
        test_clock: manual.map(|clock| steward_web::TestClock::new(clock, worker.clone())),
        scim,
        portal,
        security,
        metrics_token,
    };
    let upkeep = metrics.clone();
    let app = steward_web::app_with(services, auth, cfg.public_url.clone(), metrics, options);
    let listener =
        tokio::net::TcpListener::bind(cfg.listen).await.with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening on {}://{addr}", if tls.is_some() { "https" } else { "http" });
    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    if let Some(handle) = upkeep {
        tasks.spawn(metrics_upkeep(handle, shutdown.clone()));
    }
    let signal = shutdown.clone();
    tasks.spawn(async move {
        tokio::select! {
            () = wait_for_signal() => {
                tracing::info!("shutting down: finishing requests and jobs in flight");
                signal.cancel();
            }
            () = signal.cancelled() => {}
        }
    });
    if cfg.worker.enabled {
        // On PostgreSQL two rounds overlap, so one round's reads and commits run while the
        // other's wait on the network; SQLite's single writer gains nothing from a second.
        for _ in 0..loops {
            tasks.spawn(crate::worker::run(worker.clone(), cfg.worker.poll_interval(), shutdown.clone()));
        }
    } else {
        tracing::info!("job worker disabled (worker.enabled = false): this process serves the API only");
    }
    // The peer address reaches handlers as `ConnectInfo<SocketAddr>` (`steward_web::client_ip`).
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let served = match tls {
        Some(config) => {
            use axum::serve::ListenerExt as _;
            // `tap_io` only to get axum's `ConnectInfo<SocketAddr>` for a listener of ours.
            let listener = crate::tls::TlsListener::new(listener, config)?.tap_io(|_| ());
            axum::serve(listener, app).with_graceful_shutdown(shutdown.clone().cancelled_owned()).await
        }
        None => axum::serve(listener, app).with_graceful_shutdown(shutdown.clone().cancelled_owned()).await,
    };
    // The server may also have stopped on an error: stop the worker either way, and wait for it.
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
    served.context("server failed")?;
    tracing::info!("stopped");
    Ok(())
}

/// Drains the recorder's histogram samples into their buckets now and then, so memory stays
/// bounded however rarely Prometheus scrapes (the exporter leaves this to its user when it
/// runs no listener of its own).
async fn metrics_upkeep(handle: metrics_exporter_prometheus::PrometheusHandle, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => handle.run_upkeep(),
            () = shutdown.cancelled() => return,
        }
    }
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
