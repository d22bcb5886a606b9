//! The web UI: serves the single-page app that `web/build.mjs` builds into `web/dist` (`make run` and
//! `make test` build it; `build.rs` embeds that build in the binary). Every path the API, the origin
//! and `/metrics` do not claim comes here: `/assets/…` are the hashed, immutable bundles; a page
//! path (`/`, `/watch/{id}`, `/c/{slug}`, `/embed/{id}`, …) gets the app's HTML shell, which renders
//! the page in the browser; any other path gets the same shell with status 404 (the app shows
//! "page not found").
//!
//! It must never answer for `/api/…` or `/hls/…` (those keep their JSON and origin 404s), never read
//! a file outside the build directory, and never show a blank page when the build is missing: the
//! operator gets an HTML page saying how to build it.
//!
//! Files come from `FERROCAST_WEB_DIR` when it is set (a developer's fresh build, an operator's
//! own), else from the build embedded at compile time, else from `web/dist` under the working
//! directory (a binary compiled before the UI was built). That variable is read here, not by
//! config loading (it is listed among the variables that are not settings), because it says where
//! a build is, not how the server behaves.
//!
//! Framing: no page may be framed by another site (`frame-ancestors 'none'`), except the player of
//! a public or unlisted video at `/embed/{id}`, which any site may put in an iframe. Watch pages of
//! such videos name the oEmbed endpoint in their head, so sites that unfurl links find the player.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::header::{ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, VARY};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use ferrocast_api::ApiError;
use ferrocast_core::db::videos::{self, Visibility};
use ferrocast_core::ids::is_valid_id;
use ferrocast_core::Db;

/// Overrides where the built web UI is read from.
pub const WEB_DIR_ENV: &str = "FERROCAST_WEB_DIR";
/// Where `make run` builds the web UI, relative to the working directory.
pub const DEFAULT_WEB_DIR: &str = "web/dist";
/// In the HTML shell, replaced by the RTMP port so the dashboard can show OBS where to connect.
const RTMP_PORT_PLACEHOLDER: &str = "__FERROCAST_RTMP_PORT__";

include!(concat!(env!("OUT_DIR"), "/web_files.rs"));

/// Scripts and styles only from this server; the media and images may come from a CDN or another
/// host named by the public URL, so those are not restricted. hls.js runs its demuxer in a worker
/// created from a `blob:` URL. `{ancestors}` is `'none'`, or `*` for an embeddable player.
fn content_security_policy(frameable: bool) -> String {
    let ancestors = if frameable { "*" } else { "'none'" };
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src * data: blob:; media-src * blob:; \
         connect-src *; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors {ancestors}; form-action 'self'"
    )
}

/// Where the UI's files are.
#[derive(Debug)]
enum Source {
    Dir(PathBuf),
    Embedded(&'static [(&'static str, &'static [u8])]),
}

impl Source {
    /// The file at `name` (a path under the build's root, already checked to stay inside it).
    async fn read(&self, name: &str) -> Option<Bytes> {
        match self {
            Source::Dir(dir) => tokio::fs::read(dir.join(name)).await.ok().map(Bytes::from),
            Source::Embedded(files) => files.binary_search_by(|(path, _)| (*path).cmp(name)).ok().map(|i| Bytes::from_static(files[i].1)),
        }
    }

    fn describe(&self) -> String {
        match self {
            Source::Dir(dir) => dir.display().to_string(),
            Source::Embedded(_) => "the build embedded in this binary".into(),
        }
    }
}

#[derive(Debug)]
pub struct WebUi {
    source: Source,
    rtmp_port: u16,
    /// For `/embed/{id}` and `/watch/{id}`: whether the video may be framed and unfurled.
    db: Option<Db>,
    public_url: String,
}

impl WebUi {
    /// `FERROCAST_WEB_DIR`, the embedded build, or `web/dist`; `rtmp_port` is the bound RTMP port.
    pub fn from_env(rtmp_port: u16, db: Db, public_url: String) -> WebUi {
        let source = match std::env::var_os(WEB_DIR_ENV) {
            Some(dir) => Source::Dir(absolute(PathBuf::from(dir))),
            None if !WEB_FILES.is_empty() => Source::Embedded(WEB_FILES),
            None => Source::Dir(absolute(PathBuf::from(DEFAULT_WEB_DIR))),
        };
        let built = match &source {
            Source::Dir(dir) => dir.join("index.html").is_file(),
            Source::Embedded(_) => true,
        };
        if built {
            tracing::info!(web_ui = %source.describe(), "serving the web UI");
        } else {
            tracing::warn!(web_ui = %source.describe(), "the web UI is not built: pages will say so; run `make run` or set {WEB_DIR_ENV}");
        }
        WebUi { source, rtmp_port, db: Some(db), public_url }
    }

    /// `app` with the web UI answering every request no route of `app` claims.
    pub fn serve(self, app: Router) -> Router {
        let web = Arc::new(self);
        app.fallback(move |method: Method, uri: Uri, headers: HeaderMap| {
            let web = web.clone();
            async move { web.respond(&method, uri.path(), &headers).await }
        })
    }

    async fn respond(&self, method: &Method, path: &str, headers: &HeaderMap) -> Response {
        if is_backend_path(path) {
            return ApiError::NotFound.into_response();
        }
        if method != Method::GET && method != Method::HEAD {
            return ApiError::MethodNotAllowed.into_response();
        }
        let response = match path.strip_prefix("/assets/") {
            Some(name) => self.asset(name, headers).await,
            None if is_root_file(path) => self.root_file(&path[1..]).await,
            None if is_page(path) => self.page(path).await,
            None => self.shell(StatusCode::NOT_FOUND, Shell::default()).await,
        };
        if method == Method::HEAD {
            let (parts, _) = response.into_parts();
            return Response::from_parts(parts, Body::empty());
        }
        response
    }

    /// A page's shell; a video's player and watch page get what their visibility allows.
    async fn page(&self, path: &str) -> Response {
        let embed = path.strip_prefix("/embed/");
        let watch = path.strip_prefix("/watch/");
        let Some(video_id) = embed.or(watch) else { return self.shell(StatusCode::OK, Shell::default()).await };
        let shareable = self.shareable(video_id).await;
        let shell = match (embed.is_some(), shareable) {
            (true, Some(_)) => Shell { frameable: true, head: String::new() },
            (false, Some(title)) => Shell { frameable: false, head: self.oembed_link(video_id, &title) },
            (_, None) => Shell::default(),
        };
        self.shell(StatusCode::OK, shell).await
    }

    /// The video's title if anyone with its link may watch it (public or unlisted).
    async fn shareable(&self, video_id: &str) -> Option<String> {
        let db = self.db.as_ref()?;
        if !is_valid_id(video_id) {
            return None;
        }
        match videos::find(db, video_id).await {
            Ok(Some(video)) if video.visibility != Visibility::Private => Some(video.title),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(%video_id, error = %e, "cannot tell whether a video may be embedded; treating it as private");
                None
            }
        }
    }

    fn oembed_link(&self, video_id: &str, title: &str) -> String {
        let page = format!("{}/watch/{video_id}", self.public_url);
        let href = format!("{}/api/oembed?format=json&url={}", self.public_url, percent_encode(&page));
        format!(
            "<link rel=\"alternate\" type=\"application/json+oembed\" href=\"{}\" title=\"{}\">",
            html_escape(&href),
            html_escape(title)
        )
    }

    /// A hashed bundle: cached for good, served precompressed when the build made a `.br`/`.gz` copy.
    async fn asset(&self, name: &str, headers: &HeaderMap) -> Response {
        if !is_safe_file_name(name) {
            return not_found();
        }
        let path = format!("assets/{name}");
        let immutable = HeaderValue::from_static("public, max-age=31536000, immutable");
        for (encoding, suffix) in [("br", ".br"), ("gzip", ".gz")] {
            if !accepts_encoding(headers, encoding) {
                continue;
            }
            if let Some(bytes) = self.source.read(&format!("{path}{suffix}")).await {
                let mut response = file_response(name, bytes, immutable.clone());
                response.headers_mut().insert(CONTENT_ENCODING, HeaderValue::from_static(encoding));
                response.headers_mut().insert(VARY, HeaderValue::from_static("accept-encoding"));
                return response;
            }
        }
        match self.source.read(&path).await {
            Some(bytes) => {
                let mut response = file_response(name, bytes, immutable);
                response.headers_mut().insert(VARY, HeaderValue::from_static("accept-encoding"));
                response
            }
            None => not_found(),
        }
    }

    /// A file at the top of the build (`/favicon.svg`, `/robots.txt`): not hashed, so revalidated.
    async fn root_file(&self, name: &str) -> Response {
        if name == "index.html" {
            return self.shell(StatusCode::OK, Shell::default()).await;
        }
        match self.source.read(name).await {
            Some(bytes) => file_response(name, bytes, HeaderValue::from_static("no-cache")),
            None => self.shell(StatusCode::NOT_FOUND, Shell::default()).await,
        }
    }

    /// The app's HTML shell, or the operator's instructions when the UI was never built.
    async fn shell(&self, status: StatusCode, shell: Shell) -> Response {
        let html = self.source.read("index.html").await.map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
        let (status, html) = match html {
            Some(html) => {
                let html = html.replace(RTMP_PORT_PLACEHOLDER, &self.rtmp_port.to_string());
                (status, if shell.head.is_empty() { html } else { html.replacen("</head>", &format!("{}\n</head>", shell.head), 1) })
            }
            None => {
                tracing::warn!(web_ui = %self.source.describe(), "the web UI is not built");
                (StatusCode::SERVICE_UNAVAILABLE, not_built_page(&self.source.describe()))
            }
        };
        let mut response = (status, html).into_response();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        let policy = HeaderValue::from_str(&content_security_policy(shell.frameable)).expect("the policy is ASCII");
        headers.insert("content-security-policy", policy);
        headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
        headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
        response
    }
}

/// What a page's shell adds to the plain one.
#[derive(Default)]
struct Shell {
    /// Other sites may frame it (`frame-ancestors *`).
    frameable: bool,
    /// Extra `<head>` markup (the oEmbed discovery link).
    head: String,
}

fn absolute(dir: PathBuf) -> PathBuf {
    std::path::absolute(&dir).unwrap_or(dir)
}

/// Percent-encodes everything but unreserved characters (RFC 3986), for a URL in a query string.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Paths that belong to the API and the origin: their unknown paths stay JSON/origin 404s.
fn is_backend_path(path: &str) -> bool {
    ["/api", "/hls"].iter().any(|prefix| path == *prefix || path.starts_with(&format!("{prefix}/")))
}

/// The app's pages, as `web/src/main.js` routes them. Anything else is answered 404 (with the
/// shell, which shows the app's "page not found").
fn is_page(path: &str) -> bool {
    let one_segment = |rest: &str| !rest.is_empty() && !rest.contains('/');
    match path {
        "/" | "/search" | "/login" | "/signup" | "/dashboard" | "/upload" | "/integrations" | "/account" | "/forgot-password"
        | "/reset-password" => true,
        _ => ["/watch/", "/c/", "/embed/"].iter().any(|prefix| path.strip_prefix(prefix).is_some_and(one_segment)),
    }
}

/// `/favicon.svg`: one segment with an extension.
fn is_root_file(path: &str) -> bool {
    path.strip_prefix('/').is_some_and(|name| is_safe_file_name(name) && name.contains('.'))
}

/// A plain file name: no separators, no `..`, no hidden files; nothing that can leave the directory.
fn is_safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= 200
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && !name.contains("..")
}

/// Whether `Accept-Encoding` allows `encoding` (present and not `q=0`).
fn accepts_encoding(headers: &HeaderMap, encoding: &str) -> bool {
    headers.get_all(ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default();
        let refused = parts.any(|p| p.strip_prefix("q=").is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q <= 0.0)));
        name.eq_ignore_ascii_case(encoding) && !refused
    })
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or_default() {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "html" => "text/html; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn file_response(name: &str, bytes: Bytes, cache: HeaderValue) -> Response {
    let length = bytes.len();
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type(name)));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(CACHE_CONTROL, cache);
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    response
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, [(CONTENT_TYPE, "text/plain; charset=utf-8")], "not found\n").into_response()
}

fn not_built_page(dir: &str) -> String {
    let dir = html_escape(dir);
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Ferrocast: web UI not built</title></head>\n<body style=\"font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; \
         padding: 0 1rem; line-height: 1.5\">\n<h1>The web UI has not been built</h1>\n<p>Ferrocast is running (the API, RTMP ingest and HLS \
         work), but it found no web UI in <code>{dir}</code>.</p>\n<p>Build it and restart with <code>make run</code> from the source \
         directory, or build it alone with <code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code>. To serve a build from another place, \
         set <code>{WEB_DIR_ENV}</code> to its directory.</p>\n</body></html>\n"
    )
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_the_apps_routes_and_nothing_else() {
        for page in [
            "/",
            "/search",
            "/login",
            "/signup",
            "/dashboard",
            "/upload",
            "/integrations",
            "/watch/0190f0e0a0b07c0d8e0f0a0b0c0d0e0f",
            "/c/my-show",
            "/embed/0190f0e0a0b07c0d8e0f0a0b0c0d0e0f",
        ] {
            assert!(is_page(page), "{page}");
        }
        for other in ["/watch", "/watch/", "/watch/a/b", "/c/", "/c/x/y", "/dashboard/x", "/nope", "/index.htm"] {
            assert!(!is_page(other), "{other}");
        }
    }

    #[test]
    fn api_and_origin_paths_are_never_the_uis() {
        for path in ["/api", "/api/", "/api/nope", "/hls", "/hls/x/master.m3u8"] {
            assert!(is_backend_path(path), "{path}");
        }
        for path in ["/apis", "/hlsx", "/", "/watch/x"] {
            assert!(!is_backend_path(path), "{path}");
        }
    }

    #[test]
    fn file_names_cannot_leave_the_build_directory() {
        for good in ["app-4F2A.js", "favicon.svg", "hls.light-ABC_1.js"] {
            assert!(is_safe_file_name(good), "{good}");
        }
        for bad in ["", "..", "../x.js", "a/b.js", ".env", "a\\b.js", "x..js", "%2e%2e", "a b.js"] {
            assert!(!is_safe_file_name(bad), "{bad}");
        }
    }

    #[test]
    fn accept_encoding_honours_q_zero() {
        let headers = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(ACCEPT_ENCODING, HeaderValue::from_static(v));
            h
        };
        assert!(accepts_encoding(&headers("gzip, deflate, br, zstd"), "br"));
        assert!(accepts_encoding(&headers("gzip;q=0.5"), "gzip"));
        assert!(!accepts_encoding(&headers("gzip, br;q=0"), "br"));
        assert!(!accepts_encoding(&headers("identity"), "gzip"));
        assert!(!accepts_encoding(&HeaderMap::new(), "gzip"));
    }

    #[tokio::test]
    async fn a_missing_build_says_how_to_make_one() {
        let web = WebUi {
            source: Source::Dir(PathBuf::from("/nonexistent/ferrocast-web")),
            rtmp_port: 1935,
            db: None,
            public_url: String::new(),
        };
        let response = web.respond(&Method::GET, "/", &HeaderMap::new()).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains("make run") && body.contains("/nonexistent/ferrocast-web"), "{body}");
    }
}
