//! `/hls/…` answered without the router. The origin's requests are most of a node's traffic and
//! their answers are ready in memory, so the router's own work per request (matching, extractors
//! copying the URI and headers, the CORS, metrics and header layers, each a boxed future) was a
//! measurable share of each one (docs/performance.md, "Origin"). The listener (`src/http_server.rs`)
//! offers every request here first; what this does not take goes through the router, whose
//! `/hls/{*path}` route answers it with the same [`serve::respond`].

use std::net::IpAddr;

use axum::http::{header, request, HeaderMap, HeaderValue, Method, Uri};
use axum::response::Response;

use crate::serve::{self, HlsQuery};
use crate::OriginState;

/// The CORS headers of a non-preflight answer, as the router's `CorsLayer` (see [`crate::router`])
/// writes them: any origin, the media headers exposed, and its `Vary`.
const ALLOW_ANY_ORIGIN: HeaderValue = HeaderValue::from_static("*");
const EXPOSED: HeaderValue = HeaderValue::from_static("content-length,content-range,etag");
const VARY: HeaderValue = HeaderValue::from_static("origin, access-control-request-method, access-control-request-headers");

/// Whether [`respond`] takes a request with this method and URI: `GET` or `HEAD` of an `/hls/`
/// path written without percent-escapes (the router decodes those; no name we serve needs one).
/// Preflights (`OPTIONS`) stay with the router's `CorsLayer`.
pub fn takes(method: &Method, uri: &Uri) -> bool {
    (method == Method::GET || method == Method::HEAD) && uri.path().starts_with("/hls/") && !uri.path().contains('%')
}

/// The request headers an `/hls/` answer depends on; a caller may leave every other one out of the
/// request it passes to [`respond`] (a browser sends a dozen that the origin never reads).
pub const READ_HEADERS: [&str; 6] =
    ["range", "if-none-match", "user-agent", crate::proxy::PROXIED_HEADER, crate::proxy::VIEWER_HEADER, crate::proxy::VIEWER_TAG_HEADER];

/// The answer to a request [`takes`] accepted, from `peer`; `None` when its query does not parse
/// (the router answers that with its usual 400).
pub async fn respond(state: &OriginState, peer: IpAddr, request: &request::Parts) -> Option<Response> {
    let query = match request.uri.query() {
        // Most requests have none (only blocking reloads and tokens need one).
        None | Some("") => HlsQuery::default(),
        Some(query) => serde_urlencoded::from_str(query).ok()?,
    };
    let path = &request.uri.path()["/hls/".len()..];
    let mut response = serve::respond(state, path, query, peer, &request.uri, &request.headers).await;
    add_cors_headers(response.headers_mut());
    Some(response)
}

fn add_cors_headers(headers: &mut HeaderMap) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, ALLOW_ANY_ORIGIN);
    headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSED);
    headers.append(header::VARY, VARY);
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    #[tokio::test]
    async fn the_cors_headers_are_the_routers() {
        let app = Router::new().route(crate::ROUTE, get(|| async { "x" })).layer(crate::cors());
        let request =
            axum::http::Request::get("/hls/a").header(header::ORIGIN, "https://elsewhere.example").body(Body::empty()).expect("request");
        let routed = app.oneshot(request).await.expect("answer");
        let mut direct = HeaderMap::new();
        add_cors_headers(&mut direct);
        for name in [header::ACCESS_CONTROL_ALLOW_ORIGIN, header::ACCESS_CONTROL_EXPOSE_HEADERS, header::VARY] {
            let routed: Vec<_> = routed.headers().get_all(&name).iter().collect();
            let direct: Vec<_> = direct.get_all(&name).iter().collect();
            assert_eq!(routed, direct, "{name}");
        }
    }
}
