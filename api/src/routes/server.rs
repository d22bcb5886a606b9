//! What a client needs to know about this server that is not a resource: where streamers point OBS.
//! Read from the settings snapshot; never touches the database.

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::extract::Json;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct ServerInfo {
    /// The OBS "Server" URL set by the operator (`rtmp.public_url`, e.g.
    /// `rtmps://live.example.com/live`); the stream key goes in OBS's own field. `null` when not
    /// set: then use `rtmp://<the host this API is reached at>:<rtmp_port>/live`.
    #[schema(example = "rtmps://live.example.com/live")]
    pub rtmp_url: Option<String>,
    /// The port the RTMP listener is bound to.
    #[schema(example = 1935)]
    pub rtmp_port: u16,
    /// The port the RTMPS (TLS) listener is bound to; `null` when RTMPS is off.
    #[schema(example = 1936)]
    pub rtmps_port: Option<u16>,
}

#[utoipa::path(get, path = "/api/server", tag = "operations",
    responses((status = 200, body = ServerInfo, description = "Where to publish")))]
pub async fn info(State(state): State<AppState>) -> Json<ServerInfo> {
    let settings = &state.settings;
    Json(ServerInfo { rtmp_url: settings.rtmp_public_url.clone(), rtmp_port: settings.rtmp_port, rtmps_port: settings.rtmps_port })
}
