//! Personal access tokens for scripts: created, listed and revoked by the signed-in owner (never
//! with a token; see `crate::access_tokens`). The token is shown once, at creation.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use ferrocast_core::db::access_tokens::{self, AccessToken, NewAccessToken};
use ferrocast_core::ids::is_valid_id;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access_tokens::{new_token, Scope};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{AuthUser, Json, Path};
use crate::state::AppState;
use crate::validate;

/// Tokens one user may have.
const MAX_TOKENS_PER_USER: usize = 50;
/// The longest lifetime a token may be given (ten years); absent means it never expires.
const MAX_EXPIRES_IN_DAYS: u32 = 3650;

#[derive(Deserialize, ToSchema)]
pub struct CreateTokenRequest {
    /// What the token is for, 1–80 characters ("CI upload script").
    pub name: String,
    /// One or more of `read`, `channels:write`, `videos:write`, `uploads:write`, `webhooks:write`, `chat:write`.
    pub scopes: Vec<String>,
    /// Days until the token stops working (1–3650); absent: it works until revoked.
    pub expires_in_days: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    /// The token's first characters (`fct_` and 8 hex digits), to tell tokens apart.
    pub token_hint: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Roughly (to the minute) when the token was last presented.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<AccessToken> for TokenResponse {
    fn from(t: AccessToken) -> Self {
        TokenResponse {
            scopes: t.scope_list(),
            id: t.id,
            name: t.name,
            token_hint: t.token_hint,
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CreatedTokenResponse {
    #[serde(flatten)]
    pub details: TokenResponse,
    /// Send as `Authorization: Bearer fct_…`. Shown only now.
    pub token: String,
}

#[derive(Serialize, ToSchema)]
pub struct TokenList {
    pub items: Vec<TokenResponse>,
}

fn parse_scopes(requested: &[String]) -> Result<Vec<String>, ApiError> {
    let mut scopes = Vec::new();
    for name in requested {
        let scope = Scope::parse(name.trim()).ok_or_else(|| {
            let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::validation("scopes", format!("unknown scope {:?}; name one or more of {}", name.trim(), known.join(", ")))
        })?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    if scopes.is_empty() {
        return Err(ApiError::validation("scopes", "name at least one scope"));
    }
    scopes.sort_by_key(|s| Scope::ALL.iter().position(|a| a == s));
    Ok(scopes.into_iter().map(|s| s.as_str().to_string()).collect())
}

#[utoipa::path(post, path = "/api/tokens", tag = "tokens", request_body = CreateTokenRequest, security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, body = CreatedTokenResponse), (status = 403, body = ErrorBody, description = "Presented with an access token"),
        (status = 409, body = ErrorBody, description = "Too many tokens"), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Json(request): Json<CreateTokenRequest>,
) -> Result<(StatusCode, Json<CreatedTokenResponse>), ApiError> {
    let name = validate::token_name(&request.name)?;
    let scopes = parse_scopes(&request.scopes)?;
    let expires_at = match request.expires_in_days {
        Some(days @ 1..=MAX_EXPIRES_IN_DAYS) => Some(Utc::now() + chrono::Duration::days(i64::from(days))),
        Some(_) => return Err(ApiError::validation("expires_in_days", format!("must be 1 to {MAX_EXPIRES_IN_DAYS}"))),
        None => None,
    };
    if access_tokens::list_by_user(&state.db, &user.id).await?.len() >= MAX_TOKENS_PER_USER {
        return Err(ApiError::InvalidState(format!("you have {MAX_TOKENS_PER_USER} access tokens; revoke one first")));
    }
    let secret = new_token();
    let token = access_tokens::create(
        &state.db,
        NewAccessToken { user_id: &user.id, name: &name, token_hash: &secret.hash, token_hint: &secret.hint, scopes: &scopes, expires_at },
    )
    .await?;
    tracing::info!(token_id = %token.id, user_id = %user.id, scopes = %token.scopes, "access token created");
    Ok((StatusCode::CREATED, Json(CreatedTokenResponse { details: token.into(), token: secret.token })))
}

#[utoipa::path(get, path = "/api/tokens", tag = "tokens", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = TokenList), (status = 401, body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, user: AuthUser) -> Result<Json<TokenList>, ApiError> {
    let items = access_tokens::list_by_user(&state.db, &user.id).await?;
    Ok(Json(TokenList { items: items.into_iter().map(TokenResponse::from).collect() }))
}

#[utoipa::path(delete, path = "/api/tokens/{id}", tag = "tokens", params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Revoked: the token stops working at once, on every node"), (status = 404, body = ErrorBody)))]
pub async fn delete(State(state): State<AppState>, user: AuthUser, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    if !is_valid_id(&id) || !access_tokens::delete(&state.db, &user.id, &id).await? {
        return Err(ApiError::NotFound);
    }
    tracing::info!(token_id = %id, user_id = %user.id, "access token revoked");
    Ok(StatusCode::NO_CONTENT)
}
