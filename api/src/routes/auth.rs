//! Sign-up, login, token refresh with rotation and reuse detection, logout, and `/api/me`.

use std::net::IpAddr;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum_extra::extract::cookie::{Cookie, SameSite};
use axum_extra::extract::CookieJar;
use chrono::{DateTime, Utc};
use ferrocast_core::db::{refresh_tokens, users};
use ferrocast_core::ids::new_id;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{require_same_origin, AuthUser, ClientAddr, Json, ACCESS_COOKIE, REFRESH_COOKIE};
use crate::rate_limit::retry_after_secs;
use crate::state::AppState;
use crate::{password, tokens, validate};

#[derive(Deserialize, ToSchema)]
pub struct SignupRequest {
    /// 3–32 of `[a-z0-9_-]`; stored lowercase, unique case-insensitively.
    pub username: String,
    pub email: String,
    /// At least 8 characters.
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct UserResponse {
    pub id: String,
    pub username: String,
    pub email: String,
    pub created_at: DateTime<Utc>,
}

impl From<users::User> for UserResponse {
    fn from(user: users::User) -> Self {
        Self { id: user.id, username: user.username, email: user.email, created_at: user.created_at }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    pub username_or_email: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// A JWT to send as `Authorization: Bearer …`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Exchange at `/api/auth/refresh` for a new pair; each may be used once.
    pub refresh_token: String,
}

#[derive(Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[utoipa::path(post, path = "/api/auth/signup", tag = "auth", request_body = SignupRequest,
    responses((status = 201, body = UserResponse), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "Too many sign-ups from this address")))]
pub async fn signup(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    Json(request): Json<SignupRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let username = validate::username(&request.username)?;
    let email = validate::email(&request.email)?;
    validate::password(&request.password)?;
    if let Err(wait) = state.signup_limiter.reserve(address, Instant::now()) {
        tracing::warn!(%address, "sign-up rate limited");
        return Err(ApiError::TooManyRequests { retry_after_secs: retry_after_secs(wait) });
    }
    let password_hash = password::hash(request.password).await?;
    let user = users::create(&state.db, &username, &email, &password_hash).await?;
    tracing::info!(user_id = %user.id, username = %user.username, "account created");
    Ok((StatusCode::CREATED, Json(UserResponse::from(user))))
}

#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse, description = "Also sets the access and refresh cookies"),
        (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    jar: CookieJar,
    Json(request): Json<LoginRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let rate_limited = |wait| {
        tracing::warn!(%address, "login rate limited");
        ApiError::TooManyRequests { retry_after_secs: retry_after_secs(wait) }
    };
    // A name longer than any username or e-mail we accept names no account: it counts against the
    // address, and nothing of it is looked up or kept.
    let trimmed = request.username_or_email.trim();
    if trimmed.len() > validate::EMAIL_MAX_BYTES {
        let _failure = state.login_limiter.reserve_address_only(address, Instant::now()).map_err(rate_limited)?;
        tracing::info!(%address, "login failed: name too long");
        return Err(ApiError::BadCredentials);
    }
    // The bucket is the name as typed, so that a 429 says nothing of which e-mail is whose.
    let name = trimmed.to_lowercase();
    let attempt = state.login_limiter.reserve(&name, address, Instant::now()).map_err(rate_limited)?;
    let credentials = users::find_credentials(&state.db, &name).await?;
    // Longer than any password we accept: refused without hashing, and it counts as a failure.
    let verified = request.password.len() <= validate::PASSWORD_MAX_BYTES
        && password::verify(request.password, credentials.as_ref().map(|c| c.password_hash.clone())).await?;
    let Some(credentials) = credentials.filter(|_| verified) else {
        tracing::info!(%address, "login failed");
        return Err(ApiError::BadCredentials);
    };
    state.login_limiter.succeeded(attempt, &name, address);
    let tokens = start_session(&state, &credentials.user.id, &new_id()).await?;
    Ok((with_session_cookies(&state, jar, &tokens), Json(tokens)))
}

/// Issues an access token and a refresh token in a new login session `family_id`.
async fn start_session(state: &AppState, user_id: &str, family_id: &str) -> Result<TokenResponse, ApiError> {
    let (refresh_token, refresh_hash) = tokens::new_refresh_token();
    refresh_tokens::insert(&state.db, user_id, family_id, &refresh_hash, refresh_expiry(state)).await?;
    token_response(state, user_id, family_id, refresh_token)
}

fn refresh_expiry(state: &AppState) -> DateTime<Utc> {
    // Capped at a century so that no setting can overflow the date arithmetic.
    const CENTURY_SECS: u64 = 100 * 365 * 24 * 3600;
    Utc::now() + chrono::Duration::seconds(state.settings.refresh_token_ttl_secs.min(CENTURY_SECS) as i64)
}

fn token_response(state: &AppState, user_id: &str, session_id: &str, refresh_token: String) -> Result<TokenResponse, ApiError> {
    let access_token = state.jwt.issue(user_id, session_id).map_err(ApiError::internal)?;
    Ok(TokenResponse { access_token, token_type: "Bearer", expires_in: state.jwt.ttl_secs(), refresh_token })
}

fn session_cookie(state: &AppState, name: &'static str, value: String, path: &'static str, max_age_secs: u64) -> Cookie<'static> {
    Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.settings.secure_cookies)
        .path(path)
        .max_age(time_secs(max_age_secs))
        .build()
}

fn time_secs(secs: u64) -> time::Duration {
    time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX))
}

fn with_session_cookies(state: &AppState, jar: CookieJar, tokens: &TokenResponse) -> CookieJar {
    jar.add(session_cookie(state, ACCESS_COOKIE, tokens.access_token.clone(), "/", tokens.expires_in)).add(session_cookie(
        state,
        REFRESH_COOKIE,
        tokens.refresh_token.clone(),
        "/api/auth",
        state.settings.refresh_token_ttl_secs,
    ))
}

fn without_session_cookies(state: &AppState, jar: CookieJar) -> CookieJar {
    jar.add(session_cookie(state, ACCESS_COOKIE, String::new(), "/", 0)).add(session_cookie(
        state,
        REFRESH_COOKIE,
        String::new(),
        "/api/auth",
        0,
    ))
}

/// The refresh token from a JSON body `{refresh_token}` or, when the body is empty, the cookie.
/// A cookie is sent by the browser on its own, so it counts only from our own origin (403 otherwise).
fn presented_refresh_token(state: &AppState, headers: &HeaderMap, jar: &CookieJar, body: &Bytes) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        let Some(cookie) = jar.get(REFRESH_COOKIE).map(|c| c.value().to_string()).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        require_same_origin(headers, &state.settings)?;
        return Ok(Some(cookie));
    }
    let request: RefreshRequest = serde_json::from_slice(body).map_err(|e| ApiError::validation("refresh_token", e.to_string()))?;
    Ok(Some(request.refresh_token))
}

#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body(content = Option<RefreshRequest>, description = "Optional: the refresh cookie is used when the body is empty"),
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "The refresh cookie was sent from another origin")))]
pub async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let presented = presented_refresh_token(&state, &headers, &jar, &body)?.ok_or(ApiError::Unauthorized)?;
    let token = refresh_tokens::find_by_hash(&state.db, &tokens::hash_refresh_token(&presented)).await?.ok_or(ApiError::Unauthorized)?;
    if token.revoked_at.is_some() || token.expires_at <= Utc::now() || refresh_tokens::family_revoked(&state.db, &token.family_id).await? {
        return Err(ApiError::Unauthorized);
    }
    // Exactly one exchange of a token wins; a second one means the token was copied.
    if token.used_at.is_some() || !refresh_tokens::mark_used(&state.db, &token.id).await? {
        refresh_tokens::revoke_family(&state.db, &token.family_id).await?;
        state.sessions.revoked(&token.family_id);
        tracing::warn!(user_id = %token.user_id, "refresh token reused; session revoked");
        return Err(ApiError::Unauthorized);
    }
    // Reuse detection may have revoked the family since the checks above: then the new token is
    // revoked with it and this exchange fails too.
    let (refresh_token, refresh_hash) = tokens::new_refresh_token();
    if !refresh_tokens::insert_rotated(&state.db, &token.user_id, &token.family_id, &refresh_hash, refresh_expiry(&state)).await? {
        tracing::warn!(user_id = %token.user_id, "session revoked during refresh");
        return Err(ApiError::Unauthorized);
    }
    let tokens = token_response(&state, &token.user_id, &token.family_id, refresh_token)?;
    Ok((with_session_cookies(&state, jar, &tokens), Json(tokens)))
}

#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", request_body(content = Option<RefreshRequest>, description = "Optional: the refresh cookie is used when the body is empty"),
    responses((status = 204, description = "Session revoked and cookies cleared"),
        (status = 403, body = ErrorBody, description = "The refresh cookie was sent from another origin")))]
pub async fn logout(State(state): State<AppState>, headers: HeaderMap, jar: CookieJar, body: Bytes) -> Result<impl IntoResponse, ApiError> {
    if let Some(presented) = presented_refresh_token(&state, &headers, &jar, &body)? {
        if let Some(token) = refresh_tokens::find_by_hash(&state.db, &tokens::hash_refresh_token(&presented)).await? {
            refresh_tokens::revoke_family(&state.db, &token.family_id).await?;
            state.sessions.revoked(&token.family_id);
        }
    }
    Ok((StatusCode::NO_CONTENT, without_session_cookies(&state, jar)))
}

#[utoipa::path(get, path = "/api/me", tag = "auth", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = UserResponse), (status = 401, body = ErrorBody)))]
pub async fn me(State(state): State<AppState>, user: AuthUser) -> Result<Json<UserResponse>, ApiError> {
    let user = users::find(&state.db, &user.id).await?.ok_or(ApiError::Unauthorized)?;
    Ok(Json(user.into()))
}

/// Asks the signed-in user for her password again, before an action a session left open must not
/// allow on its own (changing the password, revealing a stream key). A wrong password is 401 and
/// counts against the account's login budget, with a success forgiving it as a login does: the
/// same secret, the same limit.
pub(crate) async fn confirm_password(
    state: &AppState,
    user_id: &str,
    address: IpAddr,
    presented: String,
    action: &str,
) -> Result<(), ApiError> {
    let account = users::find(&state.db, user_id).await?.ok_or(ApiError::Unauthorized)?;
    let name = account.username.to_lowercase();
    let attempt = state.login_limiter.reserve(&name, address, Instant::now()).map_err(|wait| {
        tracing::warn!(%address, action, "password check rate limited");
        ApiError::TooManyRequests { retry_after_secs: retry_after_secs(wait) }
    })?;
    let stored = users::password_hash(&state.db, user_id).await?;
    let verified = presented.len() <= validate::PASSWORD_MAX_BYTES && password::verify(presented, stored).await?;
    if !verified {
        tracing::info!(%address, user_id, action, "refused: wrong password");
        return Err(ApiError::BadCredentials);
    }
    state.login_limiter.succeeded(attempt, &name, address);
    Ok(())
}

#[derive(Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    /// At least 8 characters, not one of the most common passwords.
    pub new_password: String,
}

#[utoipa::path(post, path = "/api/me/password", tag = "auth", request_body = ChangePasswordRequest, security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Changed; every other session of the account is signed out"),
        (status = 401, body = ErrorBody, description = "Wrong current password"), (status = 403, body = ErrorBody, description = "Presented with an access token"),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn change_password(
    State(state): State<AppState>,
    user: AuthUser,
    ClientAddr(address): ClientAddr,
    Json(request): Json<ChangePasswordRequest>,
) -> Result<StatusCode, ApiError> {
    validate::new_password(&request.new_password)?;
    confirm_password(&state, &user.id, address, request.current_password, "password change").await?;
    // Whoever else holds a session (a forgotten laptop, the reason for the change) is out.
    replace_password(&state, &user.id, request.new_password, user.session.as_deref()).await?;
    tracing::info!(user_id = %user.id, "password changed; other sessions revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// Stores a new password (validated by the caller): the account's unused reset links stop
/// working and every session but `keep` is signed out.
pub(crate) async fn replace_password(state: &AppState, user_id: &str, new_password: String, keep: Option<&str>) -> Result<(), ApiError> {
    let hash = password::hash(new_password).await?;
    users::set_password_hash(&state.db, user_id, &hash).await?;
    ferrocast_core::db::password_resets::cancel_for_user(&state.db, user_id).await?;
    sign_out_sessions(state, user_id, keep).await
}

/// Revokes every login session of the account but `keep`: at once on this node, on the others
/// within `auth.session_check_secs`.
pub(crate) async fn sign_out_sessions(state: &AppState, user_id: &str, keep: Option<&str>) -> Result<(), ApiError> {
    for family in refresh_tokens::revoke_other_families(&state.db, user_id, keep).await? {
        state.sessions.revoked(&family);
    }
    Ok(())
}
