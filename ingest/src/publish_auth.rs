//! Publish authorisation: which channel, if any, a `publish(stream name)` opens.
//!
//! OBS sends the stream key as the stream name, sometimes with a `?query` appended by the user or by
//! another tool; the query is not part of the key. Some tools put the key in the query instead
//! (`live?key=KEY`, or an empty name with `?key=KEY`): a `key` parameter wins over the name. A refusal says nothing about why, and no caller may
//! log the presented name: it is the secret.

use ferrocast_core::db::channels::{self, Channel};
use ferrocast_core::{Db, DbError};

/// The RTMP application name streamers publish to (`rtmp://HOST:1935/live`).
pub const LIVE_APP: &str = "live";

/// The stream key inside a presented stream name: the query's `key` parameter when there is one,
/// else everything before the first `?`.
pub fn stream_key_from_name(stream_name: &str) -> &str {
    let Some((name, query)) = stream_name.split_once('?') else { return stream_name };
    query.split('&').find_map(|pair| pair.strip_prefix("key=")).unwrap_or(name)
}

/// The channel a publish to `app` with `stream_name` opens, or `None` when it must be refused.
pub async fn authorize_publish(db: &Db, app: &str, stream_name: &str) -> Result<Option<Channel>, DbError> {
    let key = stream_key_from_name(stream_name);
    if app.trim_end_matches('/') != LIVE_APP || key.is_empty() {
        return Ok(None);
    }
    channels::find_by_stream_key(db, key).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_not_part_of_the_key() {
        assert_eq!(stream_key_from_name("live_abc?bandwidth=6000"), "live_abc");
        assert_eq!(stream_key_from_name("live_abc"), "live_abc");
        assert_eq!(stream_key_from_name("?x"), "");
    }

    #[test]
    fn a_key_parameter_wins_over_the_name() {
        assert_eq!(stream_key_from_name("?key=live_abc"), "live_abc");
        assert_eq!(stream_key_from_name("stream?bw=1&key=live_abc&x=2"), "live_abc");
        assert_eq!(stream_key_from_name("live_abc?monkey=1"), "live_abc");
    }
}
