//! The one error type every handler returns, and its JSON form
//! `{"error": {"code", "message", "field"?}}`.
//!
//! Internal causes (database, hashing, I/O) are logged here with their detail and answered with a
//! bare 500: nothing internal ever reaches a response body.

use axum::extract::rejection::JsonRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ferrocast_core::DbError;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("authentication required")]
    Unauthorized,
    #[error("invalid username/email or password")]
    BadCredentials,
    #[error("you do not have access to this resource")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("{field} is already taken")]
    Conflict { field: String },
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("too many attempts; try again in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        ApiError::Validation { field: field.to_string(), message: message.into() }
    }

    /// Wraps an internal failure; its text is logged, never returned.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        ApiError::Internal(cause.to_string())
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized | ApiError::BadCredentials => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::BadCredentials => "bad_credentials",
            ApiError::Forbidden => "forbidden",
            ApiError::NotFound => "not_found",
            ApiError::Conflict { .. } => "conflict",
            ApiError::Validation { .. } => "validation_failed",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::TooManyRequests { .. } => "rate_limited",
            ApiError::Internal(_) => "internal",
        }
    }
}

/// The error body every non-2xx API response carries.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable code such as `validation_failed` or `conflict`.
    pub code: String,
    /// A sentence for people.
    pub message: String,
    /// The request field the error is about, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(%cause, "request failed");
        }
        let field = match &self {
            ApiError::Conflict { field } => Some(field.clone()),
            ApiError::Validation { field, .. } => Some(field.clone()),
            _ => None,
        };
        let body = ErrorBody { error: ErrorDetail { code: self.code().to_string(), message: self.to_string(), field } };
        let mut response = (self.status(), axum::Json(body)).into_response();
        if let ApiError::TooManyRequests { retry_after_secs } = self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::Conflict(field) => ApiError::Conflict { field },
            other => ApiError::internal(other),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            // Well-formed JSON of the wrong shape (missing field, wrong type): the body names the field.
            JsonRejection::JsonDataError(e) => {
                let message = e.body_text();
                ApiError::Validation { field: field_named_in(&message).unwrap_or("body").to_string(), message }
            }
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            other => ApiError::BadRequest(other.body_text()),
        }
    }
}

/// The field a serde error message is about: "missing field `email`" or, for a wrong type,
/// the path axum puts before the reason ("…target type: username: invalid type…").
fn field_named_in(message: &str) -> Option<&str> {
    if let Some(rest) = message.split("field `").nth(1) {
        return rest.split('`').next();
    }
    let after = message.split("target type: ").nth(1)?;
    let (path, _reason) = after.split_once(": ")?;
    (!path.contains(' ')).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::field_named_in;

    #[test]
    fn serde_messages_name_their_field() {
        assert_eq!(
            field_named_in("Failed to deserialize the JSON body into the target type: missing field `email` at line 1 column 2"),
            Some("email")
        );
        assert_eq!(
            field_named_in("Failed to deserialize the JSON body into the target type: username: invalid type: integer `1`, expected a string at line 1"),
            Some("username")
        );
        assert_eq!(field_named_in("Failed to deserialize the JSON body into the target type: invalid type: map"), None);
    }
}
