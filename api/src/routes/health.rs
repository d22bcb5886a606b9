//! Liveness and readiness for load balancers and orchestrators.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::extract::Json;
use crate::state::AppState;

/// How long a readiness check waits for each dependency (a remote store retries for minutes).
const DEPENDENCY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable` when a dependency is down.
    pub status: &'static str,
    /// The dependency that did not answer: `database` or `storage`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing: Option<&'static str>,
}

#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health, description = "The process is up")))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok", failing: None })
}

#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Health, description = "The database and the storage answer"), (status = 503, body = Health)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let database = tokio::time::timeout(DEPENDENCY_TIMEOUT, state.db.ping()).await;
    let failing = match database {
        Ok(Ok(())) => match tokio::time::timeout(DEPENDENCY_TIMEOUT, state.storage.check()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness check failed: storage");
                Some("storage")
            }
            Err(_) => Some("storage"),
        },
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed: database");
            Some("database")
        }
        Err(_) => Some("database"),
    };
    match failing {
        None => (StatusCode::OK, Json(Health { status: "ok", failing: None })),
        Some(_) => (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status: "unavailable", failing })),
    }
}
