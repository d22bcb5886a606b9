//! Prometheus metrics: the recorder every crate's `metrics::counter!`/`gauge!` writes to, rendered
//! at `/metrics`, and a layer counting HTTP requests by route template and status.

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrocast_core::db::videos::{self, Visibility};
use ferrocast_core::live::LiveRegistry;
use ferrocast_core::Db;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;

/// How often per-video gauges (viewers, dropped frames, encode speed) are refreshed.
const LIVE_REPORT_INTERVAL: Duration = Duration::from_secs(5);

pub fn install() -> anyhow::Result<PrometheusHandle> {
    // Per-video gauges of ended videos stop being updated; they disappear instead of lingering.
    let builder = PrometheusBuilder::new().idle_timeout(MetricKindMask::GAUGE, Some(LIVE_REPORT_INTERVAL * 6));
    Ok(builder.install_recorder()?)
}

/// Counts every request as `ferrocast_http_requests_total{route, method, status}`. The route is
/// the template (`/api/videos/{id}`), never the raw path, so ids do not explode the label set.
pub fn layer(router: Router, counters: Arc<RequestCounters>) -> Router {
    router.layer(axum::middleware::from_fn(move |request, next| count(counters.clone(), request, next)))
}

/// The counter of each (route, method, status) seen, made once: counting a request is a map
/// lookup and an increment, with no label strings built (the origin answers tens of thousands of
/// requests a second). Shared with the listener, which counts the origin requests it answers
/// without the router.
#[derive(Default)]
pub struct RequestCounters {
    /// By route template, then (method, status): looked up by the borrowed route.
    counters: dashmap::DashMap<String, Vec<(Method, u16, metrics::Counter)>>,
}

impl RequestCounters {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    pub fn increment(&self, route: &str, method: &Method, status: u16) {
        if let Some(counters) = self.counters.get(route) {
            if let Some((_, _, counter)) = counters.iter().find(|(m, s, _)| m == method && *s == status) {
                counter.increment(1);
                return;
            }
        }
        // The first of its kind: the labelled counter is made once.
        let counter = metrics::counter!("ferrocast_http_requests_total", "route" => route.to_string(), "method" => method.to_string(), "status" => status.to_string());
        counter.increment(1);
        self.counters.entry(route.to_string()).or_default().push((method.clone(), status, counter));
    }
}

async fn count(counters: Arc<RequestCounters>, request: Request, next: Next) -> Response {
    // The template is shared (`MatchedPath` holds an `Arc<str>`): cloning it allocates nothing.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let response = next.run(request).await;
    counters.increment(route.as_ref().map_or("unmatched", MatchedPath::as_str), &method, response.status().as_u16());
    response
}

/// Refreshes the per-live-video gauges for as long as the process runs. They are labelled by the
/// channel's slug, never the video id (`/metrics` is readable by anyone who reaches it, and an
/// unlisted video's id is all it takes to watch it), and only for public videos: an unlisted or
/// private stream is not announced anywhere, so it counts only in the totals.
pub async fn report_live_videos(live: Arc<LiveRegistry>, db: Db, viewer_window: Duration) {
    let mut tick = tokio::time::interval(LIVE_REPORT_INTERVAL);
    loop {
        tick.tick().await;
        let videos = live.all();
        let mut viewers_total = 0;
        for video in &videos {
            let viewers = video.viewer_count(viewer_window, Instant::now());
            viewers_total += viewers;
            // Read each time: the owner may change the visibility while streaming.
            let public = matches!(videos::find(&db, &video.video_id).await, Ok(Some(row)) if row.visibility == Visibility::Public);
            if !public {
                continue;
            }
            let health = video.health();
            let channel = video.channel().unwrap_or("unknown").to_string();
            metrics::gauge!("ferrocast_live_viewers", "channel" => channel.clone()).set(viewers as f64);
            metrics::gauge!("ferrocast_live_frames_dropped", "channel" => channel.clone()).set(health.dropped_frames as f64);
            metrics::gauge!("ferrocast_live_encode_realtime_factor", "channel" => channel.clone()).set(health.realtime_factor);
            metrics::gauge!("ferrocast_live_rungs_shed", "channel" => channel).set(health.shed_rungs.len() as f64);
        }
        metrics::gauge!("ferrocast_viewers").set(viewers_total as f64);
    }
}
