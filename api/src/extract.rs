//! Request extractors: a JSON body whose rejections are our JSON errors, the signed-in user (from a
//! Bearer header or the access cookie), and the client's address for rate limiting.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum_extra::extract::CookieJar;

use crate::error::ApiError;
use crate::state::AppState;

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

/// The signed-in user; a request without a valid access token is answered 401.
pub struct AuthUser {
    pub id: String,
}

/// The signed-in user if there is one; an absent or expired token means an anonymous viewer.
pub struct MaybeUser(pub Option<String>);

fn access_token(parts: &Parts) -> Option<String> {
    if let Some(value) = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, token) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string());
    }
    CookieJar::from_headers(&parts.headers).get(ACCESS_COOKIE).map(|c| c.value().to_string())
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = access_token(parts).ok_or(ApiError::Unauthorized)?;
        let id = state.jwt.verify(&token).ok_or(ApiError::Unauthorized)?;
        Ok(AuthUser { id })
    }
}

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(MaybeUser(access_token(parts).and_then(|token| state.jwt.verify(&token))))
    }
}

/// The peer address of the connection (the server is expected to face clients directly or sit
/// behind a proxy that limits per address itself).
pub struct ClientAddr(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let addr = parts.extensions.get::<ConnectInfo<SocketAddr>>().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
        Ok(ClientAddr(addr))
    }
}
