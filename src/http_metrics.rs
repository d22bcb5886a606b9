//! Prometheus metrics: the recorder every crate's `metrics::counter!`/`gauge!` writes to, rendered
//! at `/metrics`, and a layer counting HTTP requests by route template and status.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub fn install() -> anyhow::Result<PrometheusHandle> {
    Ok(PrometheusBuilder::new().install_recorder()?)
}

/// Counts every request as `ferrocast_http_requests_total{route, method, status}`. The route is
/// the template (`/api/videos/{id}`), never the raw path, so ids do not explode the label set.
pub fn layer(router: Router) -> Router {
    router.layer(axum::middleware::from_fn(count))
}

async fn count(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().to_string();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("ferrocast_http_requests_total", "route" => route, "method" => method, "status" => status).increment(1);
    response
}
