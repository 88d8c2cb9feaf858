//! Where a webhook may be sent: the URL rules and the address policy against server-side request
//! forgery.
//!
//! A webhook is a request the service makes on an admin's behalf, from inside its own network. A
//! target is refused unless every address it resolves to is publicly routable: private (RFC 1918,
//! unique-local `fc00::/7`), loopback, link-local (`169.254/16`, `fe80::/10`), unspecified,
//! carrier-grade NAT (`100.64/10`), multicast, broadcast, and the other special-purpose ranges of
//! the IANA registries (documentation, benchmarking, reserved) are all refused, and so are IPv6
//! forms that carry such an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`,
//! 6to4 `2002::/16`).
//!
//! The check runs at registration ([`check`]) and again at every delivery, where names are
//! resolved by [`GuardedResolver`], which hands the HTTP client only permitted addresses: the
//! client connects to the very addresses that were checked, so a DNS answer that changes between
//! a check and the connection (DNS rebinding) cannot slip through. An IP literal in the URL never
//! reaches a resolver, so the delivery checks it with [`check_literal`].

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

pub use reqwest::Url;

/// Longest URL an endpoint may have.
pub const MAX_URL_LEN: usize = 2048;

/// How long registration waits for a name to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The URL breaks a rule of form (its message says which), whatever it resolves to.
    #[error("{0}")]
    Invalid(&'static str),
    /// The host is, or resolves to, an address that is not publicly routable.
    #[error("the target's address is not public (private, loopback, link-local or reserved)")]
    Forbidden,
    /// The host has no address (or the lookup failed).
    #[error("the host does not resolve")]
    Unresolvable,
}

/// Parses a target URL: absolute `http` or `https`, a host, no userinfo (credentials would be
/// sent with every delivery and shown in every listing; the signature authenticates the service
/// instead), no fragment, at most [`MAX_URL_LEN`] characters.
pub fn parse(raw: &str) -> Result<Url, TargetError> {
    if raw.len() > MAX_URL_LEN {
        return Err(TargetError::Invalid("must be at most 2048 characters"));
    }
    let url =
        Url::parse(raw.trim()).map_err(|_| TargetError::Invalid("must be an absolute URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(TargetError::Invalid("must be an http or https URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError::Invalid(
            "must not carry a user name or password",
        ));
    }
    if url.host().is_none() {
        return Err(TargetError::Invalid("must name a host"));
    }
    if url.fragment().is_some() {
        return Err(TargetError::Invalid("must not have a fragment"));
    }
    Ok(url)
}

/// Checks that `url`'s host is, or resolves only to, public addresses (any address at all when
/// `allow_private`). A name with no address is [`TargetError::Unresolvable`].
pub async fn check(url: &Url, allow_private: bool) -> Result<(), TargetError> {
    if let Some(ip) = literal(url) {
        return permit(ip, allow_private);
    }
    let Some(host) = url.host_str() else {
        return Err(TargetError::Invalid("must name a host"));
    };
    let port = url.port_or_known_default().unwrap_or(443);
    let lookup = tokio::net::lookup_host((host, port));
    let addrs: Vec<SocketAddr> = match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
        Ok(Ok(addrs)) => addrs.collect(),
        _ => return Err(TargetError::Unresolvable),
    };
    if addrs.is_empty() {
        return Err(TargetError::Unresolvable);
    }
    // All of them, not some: a name that resolves to a public and a private address is how a
    // rebinding attack starts.
    addrs
        .iter()
        .try_for_each(|addr| permit(addr.ip(), allow_private))
}

/// Checks a URL whose host is an IP literal (which no resolver sees); names pass.
pub fn check_literal(url: &Url, allow_private: bool) -> Result<(), TargetError> {
    match literal(url) {
        Some(ip) => permit(ip, allow_private),
        None => Ok(()),
    }
}

fn literal(url: &Url) -> Option<IpAddr> {
    // The URL parser has already turned every IPv4 spelling (`0x7f.1`, `2130706433`) into the
    // dotted form, and writes IPv6 in brackets.
    let host = url.host_str()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.parse().ok()
}

fn permit(ip: IpAddr, allow_private: bool) -> Result<(), TargetError> {
    if allow_private || is_public(ip) {
        Ok(())
    } else {
        Err(TargetError::Forbidden)
    }
}

/// Whether `ip` is a publicly routable unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let special = ip.is_unspecified()
        || a == 0 // "this network"
        || ip.is_private() // 10/8, 172.16/12, 192.168/16
        || ip.is_loopback() // 127/8
        || ip.is_link_local() // 169.254/16
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT, 100.64/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments, 192.0.0/24
        || ip.is_documentation() // 192.0.2/24, 198.51.100/24, 203.0.113/24
        || (a == 198 && (b == 18 || b == 19)) // benchmarking, 198.18/15
        || ip.is_multicast() // 224/4
        || a >= 240; // reserved 240/4, and the broadcast address
    !special
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    // Forms that carry an IPv4 address are judged by it.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return is_public_v4(embedded_v4(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return is_public_v4(embedded_v4(s[1], s[2]));
    }
    let special = ip.is_unspecified()
        || ip.is_loopback()
        || s[..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible (deprecated), ::/96
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) // local-use NAT64, 64:ff9b:1::/48
        || (s[0] == 0x100 && s[1..4] == [0, 0, 0]) // discard-only, 100::/64
        || (s[0] == 0x2001 && s[1] == 0) // Teredo, 2001::/32 (its IPv4 is obfuscated)
        || (s[0] == 0x2001 && s[1] == 0xdb8) // documentation, 2001:db8::/32
        || (s[0] & 0xfe00) == 0xfc00 // unique local, fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local, fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated), fec0::/10
        || ip.is_multicast(); // ff00::/8
    !special
}

fn embedded_v4(high: u16, low: u16) -> Ipv4Addr {
    let [a, b] = high.to_be_bytes();
    let [c, d] = low.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

/// The resolver of the delivery client: resolves with the system's resolver, then keeps only
/// permitted addresses, so the client can connect to nothing else. A name whose every address is
/// refused fails with [`ForbiddenTarget`] (which the delivery job finds in the error's sources
/// and treats as permanent); a lookup that fails is an ordinary, retryable error.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

/// Every address of a target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{host} {}", Self::MESSAGE)]
pub struct ForbiddenTarget {
    pub host: String,
}

impl ForbiddenTarget {
    /// What follows the host in the message.
    pub const MESSAGE: &'static str = "resolves only to addresses that are not public";
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            // The port is replaced by the URL's when connecting.
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = found
                .into_iter()
                .filter(|addr| allow_private || is_public(addr.ip()))
                .collect();
            if permitted.is_empty() {
                return Err(Box::new(ForbiddenTarget { host }) as Box<_>);
            }
            Ok(Box::new(permitted.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn public(text: &str) -> bool {
        is_public(text.parse().unwrap())
    }

    #[test]
    fn public_ipv4_addresses_are_permitted() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "11.0.0.1",
        ] {
            assert!(public(ip), "{ip}");
        }
    }

    #[test]
    fn private_loopback_link_local_and_reserved_ipv4_addresses_are_refused() {
        for ip in [
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "127.0.0.1",
            "127.1.2.3",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "100.127.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!public(ip), "{ip}");
        }
    }

    #[test]
    fn public_ipv6_addresses_are_permitted() {
        for ip in [
            "2606:4700:4700::1111",
            "2a00:1450:4001:81c::200e",
            "2001:4860:4860::8888",
        ] {
            assert!(public(ip), "{ip}");
        }
    }

    #[test]
    fn private_loopback_link_local_and_reserved_ipv6_addresses_are_refused() {
        for ip in [
            "::",
            "::1",
            "fc00::1",
            "fd12:3456:789a::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "ff05::2",
            "2001:db8::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "100::1",
            "64:ff9b:1::1",
            "::7f00:1",
        ] {
            assert!(!public(ip), "{ip}");
        }
    }

    #[test]
    fn ipv6_forms_of_an_ipv4_address_are_judged_by_it() {
        for ip in [
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
            "2002:c0a8:101::1",
        ] {
            assert!(!public(ip), "{ip}");
        }
        for ip in ["::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"] {
            assert!(public(ip), "{ip}");
        }
    }

    #[test]
    fn urls_must_be_absolute_http_without_credentials() {
        assert!(parse("https://hooks.example.com/club?x=1").is_ok());
        assert!(parse("http://203.0.114.1:8080/").is_ok());
        for bad in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "example.com/hook",
            "https://user:pass@example.com/",
            "https://user@example.com/",
            "https://example.com/#part",
            "javascript:alert(1)",
            "",
        ] {
            assert!(matches!(parse(bad), Err(TargetError::Invalid(_))), "{bad}");
        }
        assert!(parse(&format!("https://example.com/{}", "a".repeat(2048))).is_err());
    }

    #[tokio::test]
    async fn literal_and_disguised_private_hosts_are_refused_unless_allowed() {
        for raw in [
            "http://127.0.0.1/",
            "http://[::1]:9000/",
            "http://[::ffff:127.0.0.1]/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://localhost:8080/",
        ] {
            let url = parse(raw).unwrap();
            assert_eq!(
                check(&url, false).await,
                Err(TargetError::Forbidden),
                "{raw}"
            );
            assert_eq!(check(&url, true).await, Ok(()), "{raw}");
        }
        let public = parse("https://8.8.8.8/hook").unwrap();
        assert_eq!(check(&public, false).await, Ok(()));
        assert_eq!(
            check_literal(&parse("http://10.0.0.1/").unwrap(), false),
            Err(TargetError::Forbidden)
        );
        assert_eq!(
            check_literal(&parse("http://example.invalid/").unwrap(), false),
            Ok(())
        );
    }

    #[tokio::test]
    async fn the_resolver_hands_over_no_refused_address() {
        use reqwest::dns::Resolve as _;
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let refused = GuardedResolver {
            allow_private: false,
        }
        .resolve(name)
        .await;
        let err = refused.err().unwrap();
        assert!(err.downcast_ref::<ForbiddenTarget>().is_some(), "{err}");
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let allowed: Vec<SocketAddr> = GuardedResolver {
            allow_private: true,
        }
        .resolve(name)
        .await
        .unwrap()
        .collect();
        assert!(allowed.iter().all(|a| a.ip().is_loopback()) && !allowed.is_empty());
    }
}
