//! ferrocast-api: the REST API under `/api` (accounts, sessions, channels, stream keys, videos),
//! plus `/healthz` and `/readyz`.
//!
//! Routes and the OpenAPI document are registered together (utoipa-axum), so the document served at
//! `/api/openapi.json` cannot drift from the router. Handlers talk to core's repositories; they never
//! reach into ingest or media.

use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderValue;
use axum::routing::get;
use axum::Router;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub mod access_tokens;
pub mod chat;
pub use chat::ConnectionSlot;
pub mod error;
pub mod extract;
pub mod live_events;
pub mod mail;
pub mod password;
pub mod rate_limit;
pub mod routes;
pub mod sessions;
pub mod state;
pub mod tokens;
pub mod validate;
pub mod webhook_delivery;

pub use error::ApiError;
pub use state::AppState;

use routes::tokens as access_token_routes;
use routes::{account, auth, channels, chat as chat_routes, embed, health, restreams, server, uploads, videos, webhooks};

#[derive(OpenApi)]
#[openapi(
    info(title = "Ferrocast API", description = "Accounts, channels, stream keys and videos of a Ferrocast server."),
    modifiers(&SecuritySchemes),
    tags(
        (name = "auth", description = "Sign-up, sessions and the signed-in user"),
        (name = "channels", description = "Channels and their stream keys"),
        (name = "videos", description = "Live recordings and uploads"),
        (name = "uploads", description = "Resumable uploads that become videos"),
        (name = "webhooks", description = "Signed notifications of streams and videos"),
        (name = "restreams", description = "Simulcast: where a channel's live stream is also pushed"),
        (name = "chat", description = "Live chat: the socket, moderation, and the replay of recordings"),
        (name = "tokens", description = "Personal access tokens for scripts, each limited to scopes"),
        (name = "operations", description = "Health checks, and where to publish"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT or personal access token (fct_…)").build(),
            ),
        );
        components.add_security_scheme("cookie", SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(extract::ACCESS_COOKIE))));
    }
}

fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(server::info))
        .routes(routes!(auth::signup))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me, account::delete_account))
        .routes(routes!(account::change_email))
        .routes(routes!(account::request_password_reset))
        .routes(routes!(account::confirm_password_reset))
        .routes(routes!(auth::change_password))
        .routes(routes!(channels::create, channels::list_mine))
        .routes(routes!(channels::get, channels::update, channels::delete))
        .routes(routes!(channels::rotate_stream_key))
        .routes(routes!(channels::reveal_stream_key))
        .routes(routes!(channels::videos))
        .routes(routes!(live_events::channel_events))
        .routes(routes!(live_events::site_events))
        .routes(routes!(chat::socket))
        .routes(routes!(chat_routes::delete_message))
        .routes(routes!(chat_routes::list_bans))
        .routes(routes!(chat_routes::ban, chat_routes::unban))
        .routes(routes!(chat_routes::replay))
        .routes(routes!(embed::oembed))
        .routes(routes!(restreams::create, restreams::list))
        .routes(routes!(restreams::update, restreams::delete))
        .routes(routes!(videos::list))
        .routes(routes!(videos::get, videos::update, videos::delete))
        .routes(routes!(uploads::create))
        .routes(routes!(uploads::get, uploads::abort))
        .routes(routes!(uploads::put_part))
        .routes(routes!(uploads::complete))
        .routes(routes!(access_token_routes::create, access_token_routes::list))
        .routes(routes!(access_token_routes::delete))
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(webhooks::delete))
        .routes(routes!(webhooks::test))
        .routes(routes!(webhooks::deliveries))
}

/// The OpenAPI 3 document of every route [`router`] serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut document = api_routes().into_openapi();
    unique_operation_ids(&mut document);
    document
}

/// Handlers are named for what they do within their module (`channels::create`,
/// `uploads::create`); client generators need operation ids unique across the document, so each
/// gets its tag in front (`channels_create`).
fn unique_operation_ids(document: &mut utoipa::openapi::OpenApi) {
    for item in document.paths.paths.values_mut() {
        let operations =
            [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch, &mut item.head, &mut item.options];
        for operation in operations.into_iter().flatten() {
            let tag = operation.tags.as_ref().and_then(|tags| tags.first()).cloned();
            if let (Some(tag), Some(id)) = (tag, operation.operation_id.as_mut()) {
                *id = format!("{tag}_{id}");
            }
        }
    }
}

/// The API's router with its state; the binary merges it with the origin and web UI.
///
/// Layers, outermost first: an access log (one INFO line per response), the JSON shape for error
/// responses that no handler produced, the request timeout (408), the body limit (413).
pub fn router(state: AppState) -> Router {
    let (router, mut document) = api_routes().split_for_parts();
    unique_operation_ids(&mut document);
    // Serialised once: the document is the same for every request.
    let document = Bytes::from(serde_json::to_vec(&document).expect("the OpenAPI document serialises to JSON"));
    let settings = state.settings.clone();
    router
        .route(
            "/api/openapi.json",
            get(move || {
                let document = document.clone();
                async move { ([(CONTENT_TYPE, HeaderValue::from_static("application/json"))], document) }
            }),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(settings.clone(), request_timeout))
        .layer(axum::middleware::map_response(error::json_error_bodies))
        .layer(
            TraceLayer::new_for_http()
                // The path only: a query may carry a token (`?access_token=` of the chat socket).
                .make_span_with(|request: &axum::http::Request<axum::body::Body>| {
                    tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
}

/// `/healthz` and `/readyz` alone, for a process that does not run the API role.
pub fn health_router(state: AppState) -> Router {
    Router::new().route("/healthz", get(health::healthz)).route("/readyz", get(health::readyz)).with_state(state)
}

/// The general request timeout (408), except for upload parts, which get `uploads.part_timeout_secs`:
/// several megabytes over a slow link take longer than any other request.
async fn request_timeout(
    axum::extract::State(settings): axum::extract::State<std::sync::Arc<state::Settings>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let is_part = request.method() == axum::http::Method::PUT && request.uri().path().contains("/parts/");
    let limit = if is_part { std::time::Duration::from_secs(settings.uploads.part_timeout_secs) } else { settings.request_timeout };
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => axum::response::IntoResponse::into_response(ApiError::RequestTimeout),
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
