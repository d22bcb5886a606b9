//! A restream target's URL, `rtmp[s]://host[:port]/app[/more]/STREAM_KEY[?query]`, as YouTube,
//! Twitch and every other service hand it out (the key sometimes in a separate field, which the
//! owner appends). The last path segment, with any query, is the stream name; the rest of the path
//! is the RTMP application. Parsed once here for the API (validation, the masked form shown to the
//! owner) and for the node that pushes (where to connect, what to send).

/// Longest URL accepted.
pub const MAX_URL_BYTES: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestreamUrl {
    pub tls: bool,
    /// A name, an IPv4 address or a bracketed IPv6 address.
    pub host: String,
    pub port: u16,
    pub app: String,
    /// The remote stream key (with its query, if any): the secret part.
    pub stream_name: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RestreamUrlError {
    #[error("must start with rtmp:// or rtmps://")]
    Scheme,
    #[error("must name a host")]
    Host,
    #[error("the port is not a number from 1 to 65535")]
    Port,
    #[error("must end with /APPLICATION/STREAM_KEY (for example rtmp://a.rtmp.youtube.com/live2/xxxx-xxxx)")]
    Path,
    #[error("must be at most 2048 bytes without spaces or control characters")]
    Characters,
}

impl RestreamUrl {
    pub fn parse(url: &str) -> Result<Self, RestreamUrlError> {
        let url = url.trim();
        if url.len() > MAX_URL_BYTES || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(RestreamUrlError::Characters);
        }
        let (scheme, rest) = url.split_once("://").ok_or(RestreamUrlError::Scheme)?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "rtmp" => false,
            "rtmps" => true,
            _ => return Err(RestreamUrlError::Scheme),
        };
        let (authority, path) = rest.split_once('/').ok_or(RestreamUrlError::Path)?;
        if authority.contains('@') {
            return Err(RestreamUrlError::Host);
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => (host, port.parse::<u16>().ok().filter(|p| *p > 0).ok_or(RestreamUrlError::Port)?),
            _ => (authority, if tls { 443 } else { 1935 }),
        };
        if host.is_empty() {
            return Err(RestreamUrlError::Host);
        }
        let (app, stream_name) = path.rsplit_once('/').ok_or(RestreamUrlError::Path)?;
        let app = app.trim_matches('/');
        if app.is_empty() || stream_name.is_empty() || stream_name.starts_with('?') {
            return Err(RestreamUrlError::Path);
        }
        Ok(Self { tls, host: host.to_ascii_lowercase(), port, app: app.to_string(), stream_name: stream_name.to_string() })
    }

    fn base(&self) -> String {
        let scheme = if self.tls { "rtmps" } else { "rtmp" };
        let default_port = if self.tls { 443 } else { 1935 };
        let port = if self.port == default_port { String::new() } else { format!(":{}", self.port) };
        format!("{scheme}://{}{port}/{}", self.host, self.app)
    }

    /// The `tcUrl` of `connect`: the URL up to the application.
    pub fn tc_url(&self) -> String {
        self.base()
    }

    /// The URL as the owner may see it again: the stream key masked but for its last four
    /// characters when it is long enough to spare them.
    pub fn masked(&self) -> String {
        let key: Vec<char> = self.stream_name.split('?').next().unwrap_or("").chars().collect();
        let tail: String = if key.len() >= 12 { key[key.len() - 4..].iter().collect() } else { String::new() };
        format!("{}/••••{tail}", self.base())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_urls_split_into_application_and_key() {
        let youtube = RestreamUrl::parse("rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl-mnop").expect("youtube");
        assert_eq!((youtube.tls, youtube.host.as_str(), youtube.port), (false, "a.rtmp.youtube.com", 1935));
        assert_eq!((youtube.app.as_str(), youtube.stream_name.as_str()), ("live2", "abcd-efgh-ijkl-mnop"));
        assert_eq!(youtube.tc_url(), "rtmp://a.rtmp.youtube.com/live2");
        assert_eq!(youtube.masked(), "rtmp://a.rtmp.youtube.com/live2/••••mnop");

        let twitch = RestreamUrl::parse("RTMPS://Live.Twitch.tv:443/app/live_123_abc?bandwidthtest=true").expect("twitch");
        assert_eq!((twitch.tls, twitch.port, twitch.app.as_str()), (true, 443, "app"));
        assert_eq!(twitch.stream_name, "live_123_abc?bandwidthtest=true");
        assert_eq!(twitch.masked(), "rtmps://live.twitch.tv/app/••••_abc", "the query is never shown");
        let short = RestreamUrl::parse("rtmp://example.com/live/short-key").expect("short key");
        assert_eq!(short.masked(), "rtmp://example.com/live/••••", "a short key is hidden whole");

        let nested = RestreamUrl::parse("rtmp://[::1]:19350/live/sub/key").expect("nested app, IPv6");
        assert_eq!(
            (nested.host.as_str(), nested.port, nested.app.as_str(), nested.stream_name.as_str()),
            ("[::1]", 19350, "live/sub", "key")
        );
        assert_eq!(nested.tc_url(), "rtmp://[::1]:19350/live/sub");
    }

    #[test]
    fn anything_else_is_refused_with_the_reason() {
        for (url, error) in [
            ("http://example.com/live/key", RestreamUrlError::Scheme),
            ("example.com/live/key", RestreamUrlError::Scheme),
            ("rtmp://example.com", RestreamUrlError::Path),
            ("rtmp://example.com/key", RestreamUrlError::Path),
            ("rtmp://example.com/live/", RestreamUrlError::Path),
            ("rtmp:///live/key", RestreamUrlError::Host),
            ("rtmp://user:pw@example.com/live/key", RestreamUrlError::Host),
            ("rtmp://example.com:0/live/key", RestreamUrlError::Port),
            ("rtmp://example.com:99999/live/key", RestreamUrlError::Port),
            ("rtmp://example.com/live/key with space", RestreamUrlError::Characters),
            ("rtmp://example.com/live/key\0", RestreamUrlError::Characters),
        ] {
            assert_eq!(RestreamUrl::parse(url), Err(error), "{url}");
        }
    }
}
