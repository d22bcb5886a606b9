//! Where the server may connect on a user's behalf (webhook deliveries, restream pushes): a host
//! is resolved and refused when any of its addresses is loopback, private, link-local or otherwise
//! internal, unless the operator allows private targets. Callers connect to the addresses checked
//! here, not to the name again, so a name cannot point elsewhere between check and connect.

use std::net::{IpAddr, SocketAddr};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("the host does not resolve")]
    Unresolvable,
    #[error("points at a loopback, private or link-local address, which this server does not call")]
    Private,
}

/// The addresses of `host` (a name, an IPv4 address or a bracketed IPv6 address) at `port`, all
/// public unless `allow_private`.
pub async fn resolve(host: &str, port: u16, allow_private: bool) -> Result<Vec<SocketAddr>, TargetError> {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((bare, port)).await.map_err(|_| TargetError::Unresolvable)?.collect();
    if addresses.is_empty() {
        return Err(TargetError::Unresolvable);
    }
    if !allow_private && addresses.iter().any(|a| is_private(a.ip())) {
        return Err(TargetError::Private);
    }
    Ok(addresses)
}

fn is_private(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                // 100.64.0.0/10, carrier-grade NAT.
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64
        }
        IpAddr::V6(v6) => {
            // Unique local fc00::/7 and link-local fe80::/10.
            v6.is_loopback() || v6.is_unspecified() || (v6.segments()[0] & 0xfe00) == 0xfc00 || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn internal_addresses_are_refused_unless_allowed() {
        for (host, port) in
            [("127.0.0.1", 9), ("10.1.2.3", 80), ("[::1]", 8080), ("169.254.169.254", 80), ("localhost", 80), ("100.64.0.1", 1935)]
        {
            assert_eq!(resolve(host, port, false).await, Err(TargetError::Private), "{host}");
            assert!(resolve(host, port, true).await.is_ok_and(|a| a.iter().all(|a| a.port() == port)), "{host}");
        }
        assert!(!is_private("8.8.8.8".parse().expect("ip")));
        assert!(!is_private("2001:4860:4860::8888".parse().expect("ip")));
    }
}
