//! Request extractors: JSON bodies, query strings and path segments whose rejections are our JSON
//! errors; the signed-in user (from a Bearer header or the access cookie, with the cookie's CSRF
//! rule, or from a personal access token with the scope the request needs); and the client's
//! address for rate limiting.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts};
use axum::http::header::{AUTHORIZATION, ORIGIN};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use axum_extra::extract::CookieJar;

use ferrocast_core::db::access_tokens;

use crate::access_tokens::{is_access_token, requirement, Requirement};
use crate::error::ApiError;
use crate::state::{AppState, Settings};

/// Access-token cookie, sent with every request from the web UI.
pub const ACCESS_COOKIE: &str = "ferrocast_access";
/// Refresh-token cookie, scoped to the auth endpoints.
pub const REFRESH_COOKIE: &str = "ferrocast_refresh";

/// `axum::Json`, except that a malformed or mis-shaped body becomes an [`ApiError`].
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Query`, except that a bad value is a JSON 422 naming the parameter.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// `axum::extract::Path`, except that a segment that does not parse is a JSON 404 (400 for
/// invalid UTF-8).
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// The signed-in user; a request without a valid access token is answered 401.
pub struct AuthUser {
    pub id: String,
    /// The login session (`sid`) when signed in with a session token; `None` for an access token.
    pub session: Option<String>,
}

/// The signed-in user if there is one; an absent or expired token means an anonymous viewer.
pub struct MaybeUser(pub Option<String>);

/// Where an access token came from: a cookie is sent by the browser on its own, so it needs the
/// CSRF check; an `Authorization` header is always set deliberately by the caller.
enum Presented {
    Header(String),
    Cookie(String),
}

fn access_token(headers: &HeaderMap) -> Option<Presented> {
    if let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, token) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| Presented::Header(token.trim().to_string()));
    }
    CookieJar::from_headers(headers).get(ACCESS_COOKIE).map(|c| Presented::Cookie(c.value().to_string()))
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The CSRF rule for requests that a browser authenticates on its own (by cookie): the request
/// must come from our own pages, as the browser tells with `Sec-Fetch-Site: same-origin` or with
/// an `Origin` equal to the public URL's origin. Anything else is 403.
pub fn require_same_origin(headers: &HeaderMap, settings: &Settings) -> Result<(), ApiError> {
    let same_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("same-origin"));
    let same_origin =
        headers.get(ORIGIN).and_then(|v| v.to_str().ok()).and_then(origin_of).is_some_and(|origin| origin == settings.public_origin);
    if same_site || same_origin {
        Ok(())
    } else {
        tracing::warn!(origin = ?headers.get(ORIGIN), "cookie-authenticated request from another origin refused");
        Err(ApiError::Forbidden)
    }
}

/// `scheme://host[:port]` of a URL, lowercased and without a default port, or `None` when `url`
/// is not an http(s) URL (`null`, for instance).
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?.to_ascii_lowercase();
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let authority = authority.strip_suffix(default_port).unwrap_or(&authority);
    Some(format!("{scheme}://{authority}"))
}

/// The user a session token speaks for, and its session: `None` when the token is invalid or its
/// session revoked.
async fn session_user(state: &AppState, token: &str) -> Result<Option<(String, Option<String>)>, ApiError> {
    let Some(claims) = state.jwt.verify(token) else { return Ok(None) };
    if state.sessions.is_revoked(&state.db, &claims.sid).await? {
        return Ok(None);
    }
    Ok(Some((claims.sub, Some(claims.sid))))
}

/// The user a personal access token speaks for, if it is valid and has what this request needs
/// (see `crate::access_tokens::requirement`). `Ok(None)` when the token is unknown or expired;
/// an error naming the scope when it is valid but lacks it.
async fn token_user(state: &AppState, parts: &Parts, token: &str) -> Result<Option<(String, Option<String>)>, ApiError> {
    let Some(found) = access_tokens::find_valid(&state.db, &crate::access_tokens::hash(token)).await? else {
        return Ok(None);
    };
    match requirement(&parts.method, parts.uri.path()) {
        Requirement::SessionOnly => {
            return Err(ApiError::InsufficientScope("an access token cannot be used here; sign in instead".into()));
        }
        Requirement::Scope(scope) if !found.scope_list().iter().any(|s| s == scope.as_str()) => {
            return Err(ApiError::InsufficientScope(format!("this access token lacks the {} scope", scope.as_str())));
        }
        Requirement::Scope(_) => {}
    }
    if found.use_is_unrecorded(chrono::Utc::now()) {
        access_tokens::touch(&state.db, &found.id).await?;
    }
    Ok(Some((found.user_id, None)))
}

/// The user behind a bearer value: a personal access token (`fct_…`) or a session JWT.
async fn bearer_user(state: &AppState, parts: &Parts, bearer: &str) -> Result<Option<(String, Option<String>)>, ApiError> {
    if is_access_token(bearer) {
        token_user(state, parts, bearer).await
    } else {
        session_user(state, bearer).await
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user = match access_token(&parts.headers).ok_or(ApiError::Unauthorized)? {
            Presented::Header(token) => bearer_user(state, parts, &token).await?,
            Presented::Cookie(token) => {
                if !is_safe(&parts.method) {
                    require_same_origin(&parts.headers, &state.settings)?;
                }
                session_user(state, &token).await?
            }
        };
        let (id, session) = user.ok_or(ApiError::Unauthorized)?;
        Ok(AuthUser { id, session })
    }
}

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = ApiError;

    /// Used by read-only routes; an unsafe request by cookie from another origin counts as
    /// anonymous, and so does an access token without the scope the request needs.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match access_token(&parts.headers) {
            Some(Presented::Header(token)) => match bearer_user(state, parts, &token).await {
                Ok(user) => Ok(MaybeUser(user.map(|(id, _)| id))),
                Err(ApiError::InsufficientScope(_)) => Ok(MaybeUser(None)),
                Err(e) => Err(e),
            },
            Some(Presented::Cookie(token)) if is_safe(&parts.method) || require_same_origin(&parts.headers, &state.settings).is_ok() => {
                Ok(MaybeUser(session_user(state, &token).await?.map(|(id, _)| id)))
            }
            _ => Ok(MaybeUser(None)),
        }
    }
}

/// Who writes in a chat socket (see `crate::chat`): the user and, for a session token, its
/// session (re-checked on every message, so signing out silences an open socket).
pub struct ChatUser {
    pub id: String,
    pub credential: ChatCredential,
}

/// What a chat socket was opened with, checked again on every message.
pub enum ChatCredential {
    /// A login session (`sid`).
    Session(String),
    /// A personal access token, by its hash.
    AccessToken(String),
}

/// The chat socket's user: a token in `?access_token=` or a Bearer header (a session token, or a
/// personal access token with `chat:write`), else the access cookie if the socket is opened by our
/// own pages (a page elsewhere could otherwise write as the visitor). Anything else, an invalid
/// token included, joins as a reader.
pub async fn chat_user(state: &AppState, headers: &HeaderMap, query_token: Option<&str>) -> Result<Option<ChatUser>, ApiError> {
    let presented = match query_token {
        Some(token) => Some(Presented::Header(token.to_string())),
        None => access_token(headers),
    };
    let token = match presented {
        None => return Ok(None),
        Some(Presented::Header(token)) if is_access_token(&token) => {
            let hash = crate::access_tokens::hash(&token);
            let Some(found) = access_tokens::find_valid(&state.db, &hash).await? else { return Ok(None) };
            if !found.scope_list().iter().any(|s| s == crate::access_tokens::Scope::ChatWrite.as_str()) {
                return Ok(None);
            }
            return Ok(Some(ChatUser { id: found.user_id, credential: ChatCredential::AccessToken(hash) }));
        }
        Some(Presented::Header(token)) => token,
        Some(Presented::Cookie(_)) if require_same_origin(headers, &state.settings).is_err() => return Ok(None),
        Some(Presented::Cookie(token)) => token,
    };
    let user = session_user(state, &token).await?;
    Ok(user.and_then(|(id, session)| Some(ChatUser { id, credential: ChatCredential::Session(session?) })))
}

/// The peer address of the connection (the server is expected to face clients directly or sit
/// behind a proxy that limits per address itself). The server must be run with connect info
/// (`into_make_service_with_connect_info::<SocketAddr>()`); without it every client would share
/// one rate-limit bucket, so the request fails loudly instead.
pub struct ClientAddr(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        match parts.extensions.get::<ConnectInfo<SocketAddr>>() {
            Some(info) => Ok(ClientAddr(info.0.ip())),
            None => Err(ApiError::internal("no client address: the router is not served with into_make_service_with_connect_info")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::origin_of;

    #[test]
    fn origins_are_scheme_host_and_port() {
        assert_eq!(origin_of("https://Example.com/app/").as_deref(), Some("https://example.com"));
        assert_eq!(origin_of("https://example.com:443").as_deref(), Some("https://example.com"));
        assert_eq!(origin_of("http://localhost:8080").as_deref(), Some("http://localhost:8080"));
        assert_eq!(origin_of("http://example.com:80/x?y").as_deref(), Some("http://example.com"));
        assert_ne!(origin_of("http://example.com"), origin_of("https://example.com"));
        assert_eq!(origin_of("null"), None);
        assert_eq!(origin_of("file:///etc/passwd"), None);
    }
}
