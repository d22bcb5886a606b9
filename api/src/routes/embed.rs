//! oEmbed (<https://oembed.com>): what a site that unfurls a link to one of our videos (a chat
//! app, a blog engine) asks to embed the player. Only public and unlisted videos have an answer;
//! the player itself is the web UI's `/embed/{id}`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrocast_core::db::videos::{self, VideoStatus, Visibility};
use ferrocast_core::ids::is_valid_id;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::extract::Query;
use crate::state::AppState;

/// The player's size when the consumer sets no bounds: 16:9.
const DEFAULT_WIDTH: u32 = 640;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OembedQuery {
    /// A watch page (`{public_url}/watch/{id}`) or player (`/embed/{id}`) address.
    pub url: String,
    /// Only `json` is offered.
    pub format: Option<String>,
    pub maxwidth: Option<u32>,
    pub maxheight: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct OembedResponse {
    pub version: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: String,
    pub author_name: String,
    pub author_url: String,
    pub provider_name: &'static str,
    pub provider_url: String,
    /// An `<iframe>` of the player.
    pub html: String,
    pub width: u32,
    pub height: u32,
    /// Public videos that are ready only (other thumbnails need an expiring token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
}

/// The video id a watch or player address names.
fn video_id_of(url: &str) -> Option<&str> {
    let path = url.split(['?', '#']).next()?;
    let (prefix, id) = path.trim_end_matches('/').rsplit_once('/')?;
    (prefix.ends_with("/watch") || prefix.ends_with("/embed")).then_some(id).filter(|id| is_valid_id(id))
}

/// 16:9 within the consumer's bounds.
fn player_size(maxwidth: Option<u32>, maxheight: Option<u32>) -> (u32, u32) {
    let mut width = maxwidth.unwrap_or(DEFAULT_WIDTH).clamp(160, DEFAULT_WIDTH * 3);
    if let Some(maxheight) = maxheight {
        width = width.min(maxheight.clamp(90, DEFAULT_WIDTH * 3) * 16 / 9);
    }
    (width, width * 9 / 16)
}

#[utoipa::path(get, path = "/api/oembed", tag = "videos", params(OembedQuery),
    responses((status = 200, body = OembedResponse), (status = 404, body = ErrorBody, description = "No such video, or it is private"),
        (status = 501, body = ErrorBody, description = "A format other than json")))]
pub async fn oembed(State(state): State<AppState>, Query(query): Query<OembedQuery>) -> Result<Response, ApiError> {
    if query.format.as_deref().is_some_and(|f| f != "json") {
        let body = serde_json::json!({"error": {"code": "not_implemented", "message": "only format=json is offered"}});
        return Ok((StatusCode::NOT_IMPLEMENTED, axum::Json(body)).into_response());
    }
    let id = video_id_of(&query.url).ok_or(ApiError::NotFound)?;
    let video = videos::find(&state.db, id).await?.ok_or(ApiError::NotFound)?;
    if video.visibility == Visibility::Private {
        return Err(ApiError::NotFound);
    }
    let base = &state.settings.public_url;
    let (width, height) = player_size(query.maxwidth, query.maxheight);
    let html = format!(
        "<iframe src=\"{base}/embed/{id}\" width=\"{width}\" height=\"{height}\" title=\"{}\" frameborder=\"0\" allow=\"autoplay; fullscreen; picture-in-picture\" allowfullscreen></iframe>",
        escape_attribute(&video.title)
    );
    let thumbnail_url =
        (video.visibility == Visibility::Public && video.status == VideoStatus::Ready).then(|| format!("{base}/hls/{id}/thumbnail.jpg"));
    let response = OembedResponse {
        version: "1.0",
        kind: "video",
        author_url: format!("{base}/c/{}", video.channel_slug),
        author_name: video.channel_title,
        title: video.title,
        provider_name: "Ferrocast",
        provider_url: base.clone(),
        html,
        width,
        height,
        thumbnail_url,
    };
    Ok(axum::Json(response).into_response())
}

fn escape_attribute(text: &str) -> String {
    text.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_and_player_addresses_name_a_video() {
        let id = "0190f0e0a0b07c0d8e0f0a0b0c0d0e0f";
        assert_eq!(video_id_of(&format!("https://tv.example/watch/{id}")), Some(id));
        assert_eq!(video_id_of(&format!("https://tv.example/embed/{id}/?t=3#x")), Some(id));
        assert_eq!(video_id_of(&format!("https://tv.example/c/{id}")), None);
        assert_eq!(video_id_of("https://tv.example/watch/../../etc"), None);
        assert_eq!(video_id_of("nonsense"), None);
    }

    #[test]
    fn the_player_is_sixteen_by_nine_within_bounds() {
        assert_eq!(player_size(None, None), (640, 360));
        assert_eq!(player_size(Some(400), None), (400, 225));
        assert_eq!(player_size(Some(1000), Some(270)), (480, 270));
        assert_eq!(player_size(Some(1), Some(1)), (160, 90));
        assert_eq!(player_size(None, Some(u32::MAX)), (640, 360), "no overflow");
    }
}
