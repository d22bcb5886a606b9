//! Delivering webhooks: signing, the address check, and the loop that works the durable queue
//! (`ferrocast_core::db::webhooks`).
//!
//! Every delivery is a JSON POST with the header `Ferrocast-Signature: t=UNIX_SECONDS,v1=HEX`,
//! HEX being HMAC-SHA256 with the webhook's secret over `UNIX_SECONDS.BODY` — so a receiver can
//! check both who sent it and that it is fresh. A non-2xx answer or a timeout is retried with a
//! backoff doubling from 1 s (at most 10 min) until `webhooks.max_attempts`.

use std::time::{Duration, Instant};

use ferrocast_core::config::WebhooksConfig;
use ferrocast_core::db::webhooks::{self, AttemptOutcome, Delivery, Webhook};
use ferrocast_core::outbound;
use ferrocast_core::shutdown::Shutdown;
use ferrocast_core::Db;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long a claimed delivery is kept from other nodes while it is being sent.
const DELIVERY_LEASE: Duration = Duration::from_secs(60);
/// How often an idle delivery loop looks for due deliveries.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// The `Ferrocast-Signature` header value of `body` sent at `timestamp` (unix seconds).
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(format!("{timestamp}.{body}").as_bytes());
    let tag: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={tag}")
}

/// Why a URL may not receive webhooks.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("must be an http:// or https:// URL with a host")]
    NotHttp,
    #[error(transparent)]
    Address(#[from] outbound::TargetError),
}

/// Checks that `url` is http(s) and, unless private targets are allowed, that every address its
/// host resolves to is public (`ferrocast_core::outbound`). Checked when the webhook is made and
/// again at every delivery (the name may point elsewhere by then).
pub async fn check_target(url: &str, allow_private: bool) -> Result<(), TargetError> {
    let rest = url.strip_prefix("https://").map(|r| (r, 443)).or_else(|| url.strip_prefix("http://").map(|r| (r, 80)));
    let Some((rest, default_port)) = rest else { return Err(TargetError::NotHttp) };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_port.is_empty() {
        return Err(TargetError::NotHttp);
    }
    if allow_private {
        return Ok(());
    }
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, port.parse().map_err(|_| TargetError::NotHttp)?),
        _ => (host_port, default_port),
    };
    outbound::resolve(host, port, false).await?;
    Ok(())
}

/// Works the delivery queue until shutdown.
pub async fn run(db: Db, config: WebhooksConfig, shutdown: Shutdown) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(config.timeout_secs))
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "webhook deliveries disabled: cannot build an HTTP client");
            return;
        }
    };
    loop {
        if shutdown.is_triggered() {
            return;
        }
        match webhooks::claim_due(&db, DELIVERY_LEASE).await {
            Ok(Some((delivery, webhook))) => deliver(&db, &client, &config, &delivery, &webhook).await,
            Ok(None) => {
                tokio::select! {
                    () = shutdown.signalled() => return,
                    () = tokio::time::sleep(POLL_INTERVAL) => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the webhook queue");
                tokio::time::sleep(POLL_INTERVAL * 8).await;
            }
        }
    }
}

async fn deliver(db: &Db, client: &reqwest::Client, config: &WebhooksConfig, delivery: &Delivery, webhook: &Webhook) {
    let started = Instant::now();
    let (status_code, error) = match check_target(&webhook.url, config.allow_private_targets).await {
        Err(e) => (None, Some(format!("target refused: {e}"))),
        Ok(()) => {
            let timestamp = chrono::Utc::now().timestamp();
            let sent = client
                .post(&webhook.url)
                .header("content-type", "application/json")
                .header("user-agent", concat!("Ferrocast-Webhooks/", env!("CARGO_PKG_VERSION")))
                .header("ferrocast-event", &delivery.event)
                .header("ferrocast-delivery", &delivery.id)
                .header("ferrocast-signature", signature(&webhook.secret, timestamp, &delivery.payload))
                .body(delivery.payload.clone())
                .send()
                .await;
            match sent {
                Ok(answer) if answer.status().is_success() => (Some(answer.status().as_u16()), None),
                Ok(answer) => (Some(answer.status().as_u16()), Some(format!("answered {}", answer.status()))),
                Err(e) if e.is_timeout() => (None, Some("timed out".to_string())),
                Err(e) => (None, Some(format!("not delivered: {e}"))),
            }
        }
    };
    let backoff = Duration::from_secs(1u64 << delivery.attempts.clamp(1, 10).saturating_sub(1)).min(Duration::from_secs(600));
    let outcome = AttemptOutcome { status_code, error: error.as_deref(), latency: started.elapsed() };
    match webhooks::record_attempt(db, delivery, outcome, i64::from(config.max_attempts), backoff).await {
        Ok(status) => {
            tracing::info!(delivery_id = %delivery.id, event = %delivery.event, attempt = delivery.attempts, status = status.as_str(), code = ?status_code, error = ?error, "webhook delivery attempted")
        }
        Err(e) => tracing::warn!(delivery_id = %delivery.id, error = %e, "could not record a webhook delivery"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_documented_recipe() {
        // HMAC-SHA256("whsec", "1700000000.{\"a\":1}"), computed with Python's hmac module.
        let header = signature("whsec", 1_700_000_000, "{\"a\":1}");
        assert_eq!(header, "t=1700000000,v1=8ad37ba156048ae0e0a5533c75cdf26fee88b07f93cb57ee4c80adb053012032");
        assert_ne!(header, signature("other", 1_700_000_000, "{\"a\":1}"));
        assert_ne!(header, signature("whsec", 1_700_000_001, "{\"a\":1}"));
    }

    #[tokio::test]
    async fn private_targets_are_refused_unless_allowed() {
        for url in
            ["http://127.0.0.1:9/hook", "http://10.1.2.3/x", "http://[::1]:8080/", "http://169.254.169.254/latest", "http://localhost/"]
        {
            assert_eq!(check_target(url, false).await, Err(TargetError::Address(outbound::TargetError::Private)), "{url}");
            assert_eq!(check_target(url, true).await, Ok(()), "{url}");
        }
        for url in ["ftp://example.com/", "example.com/hook", "http:///path"] {
            assert_eq!(check_target(url, true).await, Err(TargetError::NotHttp), "{url}");
        }
    }
}
