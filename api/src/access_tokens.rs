//! Personal access tokens for scripts: the token format, the scopes, and which scope each request
//! needs.
//!
//! The rule is one table keyed by method and path, applied by the `AuthUser` extractor before any
//! handler runs, so a new route is closed to tokens until it is listed here — nothing is reachable
//! by forgetting a check. Reading (`GET`, `HEAD`) needs `read`; a change needs the write scope of
//! its resource. Sign-in, sessions, the tokens themselves, the account and stream-key reveals
//! (`/api/auth/*`, `/api/tokens`, changes under `/api/me`, `…/stream-key/reveal`) are never
//! reachable with a token, so a leaked token cannot mint another, change the password, read a
//! stream key or outlive its own revocation.

use axum::http::Method;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every token starts with this, so a leaked one is recognisable (and never mistaken for a JWT).
pub const TOKEN_PREFIX: &str = "fct_";
/// Characters of a token kept to tell tokens apart in a listing (the prefix and 8 hex digits).
const HINT_CHARS: usize = TOKEN_PREFIX.len() + 8;

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Scope {
    /// Read everything the owner can see: their channels, private and unlisted videos, uploads,
    /// webhooks and deliveries.
    #[serde(rename = "read")]
    Read,
    /// Create, edit and delete channels; rotate stream keys; manage restreams.
    #[serde(rename = "channels:write")]
    ChannelsWrite,
    /// Edit and delete videos.
    #[serde(rename = "videos:write")]
    VideosWrite,
    /// Upload videos.
    #[serde(rename = "uploads:write")]
    UploadsWrite,
    /// Create, test and delete webhooks.
    #[serde(rename = "webhooks:write")]
    WebhooksWrite,
    /// Writing in channels' chats (the chat socket).
    #[serde(rename = "chat:write")]
    ChatWrite,
}

impl Scope {
    pub const ALL: [Scope; 6] =
        [Scope::Read, Scope::ChannelsWrite, Scope::VideosWrite, Scope::UploadsWrite, Scope::WebhooksWrite, Scope::ChatWrite];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::ChannelsWrite => "channels:write",
            Scope::VideosWrite => "videos:write",
            Scope::UploadsWrite => "uploads:write",
            Scope::WebhooksWrite => "webhooks:write",
            Scope::ChatWrite => "chat:write",
        }
    }

    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// What a request needs of a token.
#[derive(Debug, PartialEq, Eq)]
pub enum Requirement {
    Scope(Scope),
    /// Only a signed-in session may do this.
    SessionOnly,
}

/// The scope a token needs for `method` on `path` (an `/api/...` path).
pub fn requirement(method: &Method, path: &str) -> Requirement {
    let resource = path.strip_prefix("/api/").unwrap_or("").split('/').next().unwrap_or("");
    // Revealing a stream key asks for the password: a script has no business there either.
    if matches!(resource, "auth" | "tokens") || path.ends_with("/stream-key/reveal") {
        return Requirement::SessionOnly;
    }
    if matches!(*method, Method::GET | Method::HEAD) {
        return Requirement::Scope(Scope::Read);
    }
    match resource {
        "channels" => Requirement::Scope(Scope::ChannelsWrite),
        "videos" => Requirement::Scope(Scope::VideosWrite),
        "uploads" => Requirement::Scope(Scope::UploadsWrite),
        "webhooks" => Requirement::Scope(Scope::WebhooksWrite),
        _ => Requirement::SessionOnly,
    }
}

/// A new token, and the hash and hint the database keeps of it.
pub struct NewToken {
    pub token: String,
    pub hash: String,
    pub hint: String,
}

pub fn new_token() -> NewToken {
    let token = format!("{TOKEN_PREFIX}{}", ferrocast_core::stream_key::random_hex(32));
    NewToken { hash: hash(&token), hint: token[..HINT_CHARS].to_string(), token }
}

/// The stored form of a presented token (a full-entropy secret needs no slow hash).
pub fn hash(token: &str) -> String {
    ferrocast_core::stream_key::hash(token)
}

pub fn is_access_token(bearer: &str) -> bool {
    bearer.starts_with(TOKEN_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_needs_read_and_changes_need_their_resource_scope() {
        assert_eq!(requirement(&Method::GET, "/api/channels/mine"), Requirement::Scope(Scope::Read));
        assert_eq!(requirement(&Method::HEAD, "/api/videos/abc"), Requirement::Scope(Scope::Read));
        assert_eq!(requirement(&Method::GET, "/api/me"), Requirement::Scope(Scope::Read));
        assert_eq!(requirement(&Method::POST, "/api/channels"), Requirement::Scope(Scope::ChannelsWrite));
        assert_eq!(requirement(&Method::POST, "/api/channels/x/stream-key"), Requirement::Scope(Scope::ChannelsWrite));
        assert_eq!(requirement(&Method::PATCH, "/api/videos/abc"), Requirement::Scope(Scope::VideosWrite));
        assert_eq!(requirement(&Method::DELETE, "/api/videos/abc"), Requirement::Scope(Scope::VideosWrite));
        assert_eq!(requirement(&Method::PUT, "/api/uploads/abc/parts/1"), Requirement::Scope(Scope::UploadsWrite));
        assert_eq!(requirement(&Method::POST, "/api/webhooks/abc/test"), Requirement::Scope(Scope::WebhooksWrite));
    }

    #[test]
    fn sessions_tokens_and_the_account_are_never_reachable_with_a_token() {
        for (method, path) in [
            (Method::POST, "/api/tokens"),
            (Method::GET, "/api/tokens"),
            (Method::DELETE, "/api/tokens/abc"),
            (Method::POST, "/api/auth/logout"),
            (Method::GET, "/api/auth/anything"),
            (Method::PATCH, "/api/me"),
            (Method::POST, "/api/me/password"),
            (Method::POST, "/api/channels/mine/stream-key/reveal"),
            (Method::POST, "/api/somewhere-new"),
            (Method::POST, "/elsewhere"),
        ] {
            assert_eq!(requirement(&method, path), Requirement::SessionOnly, "{method} {path}");
        }
    }

    #[test]
    fn tokens_are_prefixed_random_and_stored_as_hashes() {
        let a = new_token();
        let b = new_token();
        assert!(a.token.starts_with("fct_") && a.token.len() == 4 + 64);
        assert_ne!(a.token, b.token);
        assert_eq!(a.hash, hash(&a.token));
        assert!(!a.hash.contains(&a.token[4..]));
        assert!(a.token.starts_with(&a.hint) && a.hint.len() == 12);
        assert!(is_access_token(&a.token) && !is_access_token("eyJhbGciOiJIUzI1NiJ9.x.y"));
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
            assert_eq!(serde_json::to_value(scope).expect("serialise"), serde_json::json!(scope.as_str()));
        }
    }
}
