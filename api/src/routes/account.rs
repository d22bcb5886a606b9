//! The account itself: changing its e-mail, deleting it with everything it owns, and a forgotten
//! password reset through a link sent by e-mail.

use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use ferrocast_core::db::{channels, password_resets, users};
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::{confirm_password, replace_password, sign_out_sessions, UserResponse};
use super::channels::remove_channel;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{AuthUser, ClientAddr, Json};
use crate::rate_limit::retry_after_secs;
use crate::state::AppState;
use crate::{tokens, validate};

/// Reset links one account may be sent per hour: enough for a mail that went astray, too few to
/// flood someone's inbox.
const MAX_RESET_LINKS_PER_HOUR: i64 = 3;

#[derive(Deserialize, ToSchema)]
pub struct ChangeEmailRequest {
    /// The account's password, asked again.
    pub password: String,
    pub email: String,
}

#[utoipa::path(post, path = "/api/me/email", tag = "auth", request_body = ChangeEmailRequest, security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = UserResponse), (status = 401, body = ErrorBody, description = "Wrong password"),
        (status = 409, body = ErrorBody, description = "Another account has this e-mail"), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn change_email(
    State(state): State<AppState>,
    user: AuthUser,
    ClientAddr(address): ClientAddr,
    Json(request): Json<ChangeEmailRequest>,
) -> Result<Json<UserResponse>, ApiError> {
    let email = validate::email(&request.email)?;
    confirm_password(&state, &user.id, address, request.password, "e-mail change").await?;
    users::set_email(&state.db, &user.id, &email).await?;
    password_resets::cancel_for_user(&state.db, &user.id).await?;
    tracing::info!(user_id = %user.id, "e-mail changed; unused reset links cancelled");
    let account = users::find(&state.db, &user.id).await?.ok_or(ApiError::Unauthorized)?;
    Ok(Json(account.into()))
}

#[derive(Deserialize, ToSchema)]
pub struct DeleteAccountRequest {
    /// The account's password, asked again.
    pub password: String,
}

#[utoipa::path(delete, path = "/api/me", tag = "auth", request_body = DeleteAccountRequest, security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "The account, its channels, videos, uploads and files are gone; every session is signed out"),
        (status = 401, body = ErrorBody, description = "Wrong password"), (status = 429, body = ErrorBody)))]
pub async fn delete_account(
    State(state): State<AppState>,
    user: AuthUser,
    ClientAddr(address): ClientAddr,
    Json(request): Json<DeleteAccountRequest>,
) -> Result<StatusCode, ApiError> {
    confirm_password(&state, &user.id, address, request.password, "account deletion").await?;
    for channel in channels::list_by_owner(&state.db, &user.id).await? {
        remove_channel(&state, &channel).await?;
    }
    sign_out_sessions(&state, &user.id, None).await?;
    // The rest (sessions, tokens, webhooks, chat messages) goes by cascade.
    users::delete(&state.db, &user.id).await?;
    tracing::info!(user_id = %user.id, "account deleted with everything it owned");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordResetRequest {
    pub email: String,
}

#[utoipa::path(post, path = "/api/auth/password-reset", tag = "auth", request_body = PasswordResetRequest,
    responses((status = 202, description = "If an account has this e-mail, a reset link is on its way (the answer is the same either way)"),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, body = ErrorBody, description = "This server sends no mail ([mail] is not set up)")))]
pub async fn request_password_reset(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    Json(request): Json<PasswordResetRequest>,
) -> Result<StatusCode, ApiError> {
    let Some(mailer) = state.mailer.clone() else {
        return Err(ApiError::Unavailable(
            "this server does not send e-mail, so passwords cannot be reset by mail; ask its operator".into(),
        ));
    };
    let email = validate::email(&request.email)?;
    // The per-address budget of sign-ups: one host cannot make the server mail the world.
    if let Err(wait) = state.signup_limiter.reserve(address, Instant::now()) {
        tracing::warn!(%address, "password reset requests rate limited");
        return Err(ApiError::TooManyRequests { retry_after_secs: retry_after_secs(wait) });
    }
    // Looked up and mailed in the background: the answer takes as long for an unknown address.
    tokio::spawn(async move {
        if let Err(e) = send_reset_link(&state, &mailer, &email).await {
            tracing::warn!(error = %e, "password reset link not sent");
        }
    });
    Ok(StatusCode::ACCEPTED)
}

async fn send_reset_link(state: &AppState, mailer: &crate::mail::Mailer, email: &str) -> Result<(), String> {
    let Some(account) = users::find_by_email(&state.db, email).await.map_err(|e| e.to_string())? else {
        tracing::info!("password reset asked for an address with no account");
        return Ok(());
    };
    let hour_ago = Utc::now() - chrono::Duration::hours(1);
    if password_resets::sent_since(&state.db, &account.id, hour_ago).await.map_err(|e| e.to_string())? >= MAX_RESET_LINKS_PER_HOUR {
        return Err(format!("account {} was sent {MAX_RESET_LINKS_PER_HOUR} links this hour already", account.id));
    }
    let (secret, hash) = tokens::new_reset_token();
    let ttl = state.settings.reset_link_ttl;
    let expires = Utc::now() + chrono::Duration::seconds(ttl.as_secs() as i64);
    password_resets::insert(&state.db, &hash, &account.id, expires).await.map_err(|e| e.to_string())?;
    let link = format!("{}/reset-password#token={secret}", state.settings.public_url);
    let minutes = ttl.as_secs() / 60;
    let body = format!(
        "Hello {name},\n\nSomeone (hopefully you) asked to reset the password of your account {name} at {site}.\n\n\
         Choose a new password here (the link works once, for {minutes} minutes):\n\n{link}\n\n\
         If it was not you, ignore this mail: your password stays as it is.\n",
        name = account.username,
        site = state.settings.public_url,
    );
    mailer.send(&account.email, "Reset your Ferrocast password", body).await?;
    tracing::info!(user_id = %account.id, "password reset link sent");
    Ok(())
}

#[derive(Deserialize, ToSchema)]
pub struct ConfirmPasswordResetRequest {
    /// The secret from the mailed link.
    pub token: String,
    /// At least 8 characters, not one of the most common passwords.
    pub new_password: String,
}

#[utoipa::path(post, path = "/api/auth/password-reset/confirm", tag = "auth", request_body = ConfirmPasswordResetRequest,
    responses((status = 204, description = "The password is changed and every session signed out; sign in with the new one"),
        (status = 400, body = ErrorBody, description = "The link is unknown, used or expired"), (status = 422, body = ErrorBody)))]
pub async fn confirm_password_reset(
    State(state): State<AppState>,
    Json(request): Json<ConfirmPasswordResetRequest>,
) -> Result<StatusCode, ApiError> {
    validate::new_password(&request.new_password)?;
    let Some(user_id) = password_resets::redeem(&state.db, &tokens::hash_refresh_token(request.token.trim())).await? else {
        return Err(ApiError::BadRequest("this reset link is unknown, used or expired; ask for a new one".into()));
    };
    // The account's other links stop working with the new password.
    replace_password(&state, &user_id, request.new_password, None).await?;
    if let Err(e) = password_resets::delete_expired(&state.db, Utc::now()).await {
        tracing::warn!(error = %e, "could not forget expired reset links");
    }
    tracing::info!(%user_id, "password reset by mailed link; every session signed out");
    Ok(StatusCode::NO_CONTENT)
}
