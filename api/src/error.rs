//! The one error type every handler returns, and its JSON form
//! `{"error": {"code", "message", "field"?}}`.
//!
//! Internal causes (database, hashing, I/O) are logged here with their detail and answered with a
//! bare 500: nothing internal ever reaches a response body.

use axum::extract::path::ErrorKind as PathErrorKind;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
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
    /// A personal access token was presented where it lacks the scope (or where only a signed-in
    /// session may act); the message names what is missing.
    #[error("{0}")]
    InsufficientScope(String),
    #[error("not found")]
    NotFound,
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    #[error("the request took too long")]
    RequestTimeout,
    #[error("{field} is already taken")]
    Conflict { field: String },
    /// The resource is in a state that does not allow the request (e.g. deleting a live video).
    #[error("{0}")]
    InvalidState(String),
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("too many attempts; try again in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    /// Something this server is not set up to do (mail, for instance); the message says what.
    #[error("{0}")]
    Unavailable(String),
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
            ApiError::Forbidden | ApiError::InsufficientScope(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Conflict { .. } | ApiError::InvalidState(_) => StatusCode::CONFLICT,
            ApiError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::BadCredentials => "bad_credentials",
            ApiError::Forbidden => "forbidden",
            ApiError::InsufficientScope(_) => "insufficient_scope",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::RequestTimeout => "request_timeout",
            ApiError::Conflict { .. } => "conflict",
            ApiError::InvalidState(_) => "invalid_state",
            ApiError::Validation { .. } => "validation_failed",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::TooManyRequests { .. } => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
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
            // Every row the API inserts refers to the signed-in user (directly or through their
            // channel); a vanished reference means the account was deleted after the token was issued.
            DbError::MissingReference => ApiError::Unauthorized,
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

impl From<QueryRejection> for ApiError {
    /// A query parameter of the wrong type (`?limit=abc`) is a 422 naming the parameter.
    fn from(rejection: QueryRejection) -> Self {
        let message = rejection.body_text();
        ApiError::Validation { field: field_named_in(&message).unwrap_or("query").to_string(), message }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        match rejection {
            PathRejection::FailedToDeserializePathParams(e) => match e.kind() {
                PathErrorKind::InvalidUtf8InPathParam { .. } => ApiError::BadRequest(e.body_text()),
                // A segment that cannot be the parameter's type names nothing that exists.
                PathErrorKind::ParseError { .. } | PathErrorKind::ParseErrorAtIndex { .. } | PathErrorKind::ParseErrorAtKey { .. } => {
                    ApiError::NotFound
                }
                _ => ApiError::internal(e.body_text()),
            },
            other => ApiError::internal(other.body_text()),
        }
    }
}

/// The field a serde error message is about: "missing field `email`" or, for a wrong type,
/// the path axum puts before the reason ("…target type: username: invalid type…",
/// "…query string: limit: invalid digit…").
fn field_named_in(message: &str) -> Option<&str> {
    if let Some(rest) = message.split("field `").nth(1) {
        return rest.split('`').next();
    }
    let after = message.split("target type: ").nth(1).or_else(|| message.split("query string: ").nth(1))?;
    let (path, _reason) = after.split_once(": ")?;
    (!path.contains(' ')).then_some(path)
}

/// Gives error responses that did not come from a handler (the body limit's 413, the timeout's 408,
/// axum's own 400/404/405) the same JSON shape as every other error. Responses that already carry
/// JSON, and successes, pass through untouched.
pub async fn json_error_bodies(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json =
        response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let error = match status {
        StatusCode::BAD_REQUEST => {
            let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
            let text = String::from_utf8_lossy(&text).trim().to_string();
            ApiError::BadRequest(if text.is_empty() { "malformed request".to_string() } else { text })
        }
        StatusCode::NOT_FOUND => ApiError::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
        StatusCode::REQUEST_TIMEOUT => ApiError::RequestTimeout,
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        StatusCode::INTERNAL_SERVER_ERROR => ApiError::internal("a response without a JSON body"),
        _ => return Response::from_parts(parts, body),
    };
    let replacement = error.into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.extend(replacement.headers().clone());
    Response::from_parts(parts, replacement.into_body())
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
        assert_eq!(field_named_in("Failed to deserialize query string: limit: invalid digit found in string"), Some("limit"));
    }
}
