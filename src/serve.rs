//! `ferrocast serve`: opens the database and storage, then starts what this process's roles need
//! (`api`: the REST API and web UI; `origin`: `/hls`; `ingest`: finalises videos a crash left live
//! and binds the RTMP and, when configured, RTMPS listeners; `worker`: transcode jobs). Every node
//! serves `/healthz`, `/readyz` and `/metrics`. Runs until SIGINT/SIGTERM, then drains: stops
//! accepting, ends every live video cleanly (ENDLIST written; on Postgres, hands it over to the
//! ingest node its publisher reconnects to instead), lets requests in flight finish, closes the
//! pool.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ferrocast_core::config::{MEDIA_DIR, SPOOL_DIR, UPLOADS_DIR, WORK_DIR};
use ferrocast_core::db::restreams;
use ferrocast_core::db::videos;
use ferrocast_core::live::LiveRegistry;
use ferrocast_core::playback_token::PlaybackKey;
use ferrocast_core::sealed::SealingKey;
use ferrocast_core::shutdown::Shutdown;
use ferrocast_core::storage::Storage;
use ferrocast_core::{Config, Db};
use ferrocast_ingest::restream::RestreamSettings;
use ferrocast_ingest::Ingest;
use tokio::net::TcpListener;

use crate::http_metrics;

/// How old a video row the origin serves by may be: users' changes to it are announced at once
/// (channel events); this bounds what is not, such as a live video moving to another ingest node.
const VIDEO_CACHE_TTL: Duration = Duration::from_secs(1);

pub async fn run(mut config: Config) -> anyhow::Result<()> {
    raise_open_files_limit(&config);
    ferrocast_media::elements::init().context("checking GStreamer")?;
    if !config.media.ladder.is_empty() {
        ferrocast_media::ladder::validate(&config.media.ladder).context("checking [media] ladder")?;
    }
    let metrics = http_metrics::install().context("installing the metrics recorder")?;

    let db = Db::connect(&config).await.with_context(|| format!("opening {}", config.database_description()))?;
    let jwt_secret = config.resolve_jwt_secret().context("loading the JWT secret")?;
    let storage = Storage::open(&config.storage, &config.data_dir.join(MEDIA_DIR)).context("opening media storage")?;
    storage.check().await.with_context(|| format!("reaching storage at {}", storage.describe()))?;
    // Versions that wrote segments to a spool dir before storing them left it behind; nothing
    // spools now (frames are packaged in memory), so it goes. Jobs' scratch space is per run.
    let _ = std::fs::remove_dir_all(config.data_dir.join(SPOOL_DIR));
    let _ = std::fs::remove_dir_all(config.data_dir.join(WORK_DIR));
    let roles = config.roles;
    let http = TcpListener::bind(config.http_addr).await.with_context(|| format!("binding HTTP on {}", config.http_addr))?;
    let node_url = match &config.node_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => derived_node_url(http.local_addr()?, &config),
    };
    if roles.ingest {
        // Only ingest nodes make live videos, so only they end the ones a crash left live.
        finalize_orphans(&db, &storage, &config, &node_url).await;
    }

    let (rtmp, rtmps) = match roles.ingest {
        true => {
            let rtmp = TcpListener::bind(config.rtmp_addr).await.with_context(|| format!("binding RTMP on {}", config.rtmp_addr))?;
            (Some(rtmp), bind_rtmps(&config).await?)
        }
        false => (None, None),
    };
    // The API tells the dashboard which ports were bound (the configured ones may be 0).
    if let Some(rtmp) = &rtmp {
        config.rtmp_addr = rtmp.local_addr()?;
    }
    if let Some((listener, _)) = &rtmps {
        config.rtmp.tls_addr = Some(listener.local_addr()?);
    }
    if config.public_url.is_none() {
        // Links must name the port actually bound (the configured one may be 0: any free port).
        config.public_url = Some(format!("http://localhost:{}", http.local_addr()?.port()));
    }

    let live = Arc::new(LiveRegistry::new());
    let mut api_state = ferrocast_api::AppState::new(db.clone(), storage.clone(), live.clone(), &config, &jwt_secret);
    api_state.mailer = ferrocast_api::mail::Mailer::from_config(&config.mail).map_err(anyhow::Error::msg)?.map(Arc::new);
    let live_events = api_state.live_events.clone();
    // The video rows the origin reads per request; dropped when their channel changes (on any node).
    let video_cache = ferrocast_origin::video_cache::VideoCache::new(VIDEO_CACHE_TTL);
    let caches_stop = tokio_util::sync::CancellationToken::new();
    if roles.origin || roles.ingest {
        tokio::spawn(video_cache.clone().follow(live_events.events().clone(), caches_stop.clone()));
    }
    // Every node answers health checks and /metrics, whatever its roles.
    let mut app = match roles.api {
        true => ferrocast_api::router(api_state.clone()),
        false => ferrocast_api::health_router(api_state.clone()),
    };
    // An ingest node serves its own streams' HLS too: origin nodes proxy live requests to it.
    let origin = match roles.origin || roles.ingest {
        true => Some(ferrocast_origin::OriginState {
            io: ferrocast_origin::PooledIo { runtime: tokio::runtime::Handle::current(), db: db.clone(), storage: storage.clone() },
            live: live.clone(),
            playback: PlaybackKey::derive(jwt_secret.expose().as_bytes()),
            viewer_window: Duration::from_secs(config.origin.viewer_window_secs),
            public_immutable: ferrocast_origin::public_immutable_cache(Duration::from_secs(config.origin.shared_cache_max_age_secs)),
            max_viewers_per_address: config.origin.max_viewers_per_address,
            node_url: node_url.clone(),
            proxy: proxy_client()?,
            videos: video_cache.clone(),
            objects: ferrocast_origin::object_cache::ObjectCache::new(config.origin.memory_cache_mb << 20),
        }),
        false => None,
    };
    if let Some(origin) = &origin {
        app = app.merge(ferrocast_origin::router(origin.clone()));
    }
    app = app.route("/metrics", axum::routing::get(move || std::future::ready(metrics.render())));
    if roles.api {
        app = crate::web::WebUi::from_env(config.rtmp_addr.port(), db.clone(), config.public_url()).serve(app);
    }
    let request_counters = http_metrics::RequestCounters::new();
    let app = http_metrics::layer(app, request_counters.clone()).layer(axum::middleware::map_response(nosniff));
    let origin = match origin {
        Some(state) => {
            let loops = crate::hls_loops::HlsLoops::start(config.http.hls_threads).context("starting the viewer threads")?;
            Some(Arc::new(crate::http_server::Origin { state, loops }))
        }
        None => None,
    };
    let app = crate::http_server::HttpApp { router: app, origin, request_counters };

    tracing::info!(
        roles = %roles,
        node_url = %node_url,
        http = %http.local_addr()?,
        rtmp = rtmp.as_ref().and_then(|l| l.local_addr().ok()).map(tracing::field::display),
        rtmps = config.rtmp.tls_addr.filter(|_| roles.ingest).map(tracing::field::display),
        public_url = %config.public_url(),
        database = %config.database_description(),
        storage = %storage.describe(),
        data_dir = %config.data_dir.display(),
        "ferrocast listening"
    );

    let shutdown = Shutdown::new();
    tokio::spawn(trigger_on_signal(shutdown.clone()));
    // Event streams and chat sockets never finish on their own: end them so connections drain.
    let signalled = shutdown.signalled();
    let events_to_close = live_events.clone();
    tokio::spawn(async move {
        signalled.await;
        events_to_close.close();
        caches_stop.cancel();
    });

    if roles.ingest || roles.origin {
        let window = Duration::from_secs(config.origin.viewer_window_secs);
        tokio::spawn(http_metrics::report_live_videos(live.clone(), db.clone(), window));
    }
    if roles.worker {
        let worker = Arc::new(ferrocast_media::worker::Worker {
            db: db.clone(),
            storage: storage.clone(),
            jobs: config.jobs.clone(),
            media: config.media.clone(),
            uploads_dir: config.data_dir.join(UPLOADS_DIR),
            work_dir: config.data_dir.join(WORK_DIR),
        });
        ferrocast_media::worker::spawn(worker, &shutdown);
    }
    if roles.api {
        tokio::spawn(remove_expired_uploads(api_state, Duration::from_secs(config.uploads.expiry_secs)));
        shutdown.spawn(ferrocast_api::webhook_delivery::run(db.clone(), config.webhooks.clone(), shutdown.clone()));
    }
    if let Some(rtmp) = rtmp {
        let mut ingest = Ingest::new(db.clone(), storage.clone(), live, config.rtmp.clone(), config.media.clone(), node_url.clone());
        ingest.viewer_window = Duration::from_secs(config.origin.viewer_window_secs);
        let sealing = SealingKey::derive(jwt_secret.expose().as_bytes(), restreams::SEALING_PURPOSE);
        let restream = RestreamSettings::new(config.restream.clone(), sealing).context("restream TLS settings")?;
        ingest.restream = Some(Arc::new(restream));
        ingest.channel_events = Some(live_events.events().clone());
        let ingest = Arc::new(ingest);
        tokio::spawn(ingest.clone().keep_leases(shutdown.clone()));
        if let Some((listener, acceptor)) = rtmps {
            shutdown.spawn(ferrocast_ingest::run_tls(listener, acceptor, ingest.clone(), shutdown.clone()));
        }
        shutdown.spawn(ferrocast_ingest::run(rtmp, ingest, shutdown.clone()));
    }

    shutdown.spawn(crate::http_server::run(http, app, config.http.clone(), shutdown.clone()));

    shutdown.drained().await;
    db.close().await;
    tracing::info!("shut down cleanly");
    Ok(())
}

/// How other nodes reach this one when `node_url` is not set: the bound address; when bound to
/// all interfaces, the address this host reaches the database from (the network the nodes share,
/// a container's own address included), else the host's name.
fn derived_node_url(bound: SocketAddr, config: &Config) -> String {
    if !bound.ip().is_unspecified() {
        return format!("http://{bound}");
    }
    if let Some(ip) = config.database_url.as_ref().and_then(|url| address_towards(url.expose())) {
        return format!("http://{}", SocketAddr::new(ip, bound.port()));
    }
    let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    let host = if host.is_empty() { "localhost".to_string() } else { host };
    format!("http://{host}:{}", bound.port())
}

/// This host's address on the route to the host of `url` (`scheme://user:pass@host:port/db`). A
/// connected UDP socket only picks the route; nothing is sent.
fn address_towards(url: &str) -> Option<std::net::IpAddr> {
    use std::net::ToSocketAddrs;
    let authority = url.split_once("://")?.1.split(['/', '?']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host_port = if host_port.contains(':') { host_port.to_string() } else { format!("{host_port}:5432") };
    let target = host_port.to_socket_addrs().ok()?.next()?;
    let socket =
        std::net::UdpSocket::bind(SocketAddr::new(if target.is_ipv4() { [0, 0, 0, 0].into() } else { [0u16; 8].into() }, 0)).ok()?;
    socket.connect(target).ok()?;
    Some(socket.local_addr().ok()?.ip())
}

/// The client origin nodes pass live requests with. A blocking reload may be held for up to three
/// target durations at the owner, so the whole request may take that long; connecting may not.
fn proxy_client() -> anyhow::Result<reqwest::Client> {
    // Idle connections are dropped before the other node's header deadline would close them
    // (a request on a connection closing under it would fail); no HTTP_PROXY between nodes.
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(30))
        .pool_idle_timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .context("building the HTTP client for live requests to other nodes")
}

/// The RTMPS listener and its TLS acceptor when `rtmp.tls_addr` is set (config validation made sure
/// the certificate and key files are named too). An unreadable or unusable file is an error naming it.
async fn bind_rtmps(config: &Config) -> anyhow::Result<Option<(TcpListener, ferrocast_ingest::TlsAcceptor)>> {
    let (Some(addr), Some(cert), Some(key)) = (config.rtmp.tls_addr, &config.rtmp.tls_cert_file, &config.rtmp.tls_key_file) else {
        return Ok(None);
    };
    let acceptor = ferrocast_ingest::tls::acceptor(cert, key).context("loading the RTMPS certificate and key")?;
    let listener = TcpListener::bind(addr).await.with_context(|| format!("binding RTMPS on {addr}"))?;
    Ok(Some((listener, acceptor)))
}

/// Videos still marked live that belonged to a process that died: end them with what was
/// recorded. A SQLite database has one server, so every one of them is an orphan; on Postgres only
/// those whose owner's lease ran out more than the grace period ago (nobody continued them), and
/// those last ingested at this node's address (by the process this one replaces); the others may
/// be other nodes' streams, and `Ingest::keep_leases` ends them if their node is gone.
async fn finalize_orphans(db: &Db, storage: &Storage, config: &Config, node_url: &str) {
    let grace = chrono::Duration::seconds(config.rtmp.reconnect_grace_secs as i64);
    let found = match db {
        Db::Sqlite(_) => videos::live_ids(db).await,
        Db::Postgres(_) => videos::abandoned_live(db, chrono::Utc::now() - grace, Some(node_url), None).await,
    };
    let orphans = match found {
        Ok(ids) => ids,
        Err(e) => {
            tracing::error!(error = %e, "cannot list orphaned live videos");
            return;
        }
    };
    let segment_duration = Duration::from_secs(config.media.segment_duration_secs);
    // On Postgres each is claimed first (for as long as ending may take): one another node took
    // over meanwhile, or whose previous owner's lease still runs, is left alone.
    let finisher = ferrocast_core::ids::new_id();
    let until = chrono::Utc::now() + chrono::Duration::minutes(10);
    for video_id in orphans {
        if matches!(db, Db::Postgres(_)) && !matches!(videos::claim_live(db, &video_id, &finisher, node_url, until).await, Ok(true)) {
            continue;
        }
        match ferrocast_media::recording::finalize_orphan(db, storage, &video_id, segment_duration).await {
            Ok(()) => tracing::info!(%video_id, "finalised a live video left over from a previous run"),
            Err(e) => tracing::error!(%video_id, error = %e, "could not finalise a left-over live video"),
        }
    }
}

/// Deletes unfinished uploads past their expiry, checking a few times per expiry period.
async fn remove_expired_uploads(state: ferrocast_api::AppState, expiry: Duration) {
    let mut tick = tokio::time::interval((expiry / 4).clamp(Duration::from_secs(60), Duration::from_secs(3600)));
    loop {
        tick.tick().await;
        match ferrocast_api::routes::uploads::remove_expired(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(uploads = n, "expired uploads removed"),
            Err(e) => tracing::warn!(error = %e, "could not remove expired uploads"),
        }
    }
}

async fn trigger_on_signal(shutdown: Shutdown) {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received; shutting down"),
        () = terminate => tracing::info!("SIGTERM received; shutting down"),
    }
    shutdown.trigger();
}

/// The router's side of [`crate::http_server::add_nosniff`].
async fn nosniff(mut response: axum::response::Response) -> axum::response::Response {
    crate::http_server::add_nosniff(&mut response);
    response
}

/// The most descriptors asked for: far above any limit below, and what Linux allows by default.
const MAX_OPEN_FILES: u64 = 1 << 20;

/// Raises this process's soft limit of open files to its hard limit. Every connection is a
/// descriptor (`http.max_connections` alone is 4096 by default), so is every segment file the
/// origin keeps open for `sendfile`; a shell's soft limit is often 1024, past which `accept` fails.
fn raise_open_files_limit(config: &Config) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let wanted = config.http.max_connections as u64 + config.rtmp.max_connections as u64;
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(limits) => limits,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the open files limit");
            return;
        }
    };
    let raised = hard.min(MAX_OPEN_FILES);
    let limit = if soft < raised {
        match setrlimit(Resource::RLIMIT_NOFILE, raised, hard) {
            Ok(()) => raised,
            Err(e) => {
                tracing::warn!(error = %e, soft, hard, "could not raise the open files limit");
                soft
            }
        }
    } else {
        soft
    };
    // Room beside the connections for segment files, the database, GStreamer's pipes and sockets.
    if limit < wanted + 1024 {
        tracing::warn!(
            limit,
            wanted,
            "the open files limit is low for the configured connections (raise the hard limit, e.g. LimitNOFILE=)"
        );
    }
}
