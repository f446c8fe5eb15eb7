//! Where URL-list downloads may connect: guards against server-side request forgery.
//!
//! A URL list is user content; without a guard it can point workers at the cloud metadata
//! service or at internal services, directly or through a redirect. By default
//! ([`NetworkPolicy::PublicOnly`]) the HTTP client refuses every address that is not
//! globally routable ([`is_forbidden_ip`]). The check is made on the *resolved* address, at
//! connect time, so DNS names that resolve to internal addresses (and DNS rebinding between
//! a check and the connect) are caught:
//! - [`GuardedResolver`] is reqwest's DNS resolver: it drops forbidden addresses and fails
//!   when none is left;
//! - hosts that are IP literals are never resolved, so [`check_url`] checks them before each
//!   request and [`redirect_policy`] before each redirect hop (which also caps the hops).
//!
//! `input.allowPrivateNetworks: true` ([`NetworkPolicy::AllowPrivate`]) lifts the address
//! checks (not the hop cap) for jobs that label images on an internal server.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::redact::redact_uri;

/// Most redirects followed for one request.
pub const MAX_REDIRECTS: usize = 5;

/// Which addresses downloads may reach.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NetworkPolicy {
    /// Only globally routable addresses (the default).
    #[default]
    PublicOnly,
    /// Any address, private and loopback included (`input.allowPrivateNetworks: true`).
    AllowPrivate,
}

/// Why a URL or an address was refused.
#[derive(Clone, Debug, thiserror::Error)]
pub enum GuardError {
    /// The host resolved only to forbidden addresses.
    #[error(
        "{host} resolves only to private, loopback, link-local or metadata addresses ({addrs}); \
         set input.allowPrivateNetworks: true to allow them"
    )]
    ResolvedPrivate {
        /// The host name.
        host: String,
        /// The refused addresses.
        addrs: String,
    },
    /// The URL's host is a forbidden IP literal.
    #[error(
        "{url} is on a private, loopback, link-local or metadata address; set \
         input.allowPrivateNetworks: true to allow it"
    )]
    PrivateAddress {
        /// The URL (redacted).
        url: String,
    },
    /// A redirect pointed to something other than http(s).
    #[error("redirect to {url} is not http(s)")]
    RedirectScheme {
        /// The target (redacted).
        url: String,
    },
    /// Too many redirects.
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
}

/// Whether downloads must not connect to `ip`: unspecified, loopback, private (RFC 1918),
/// carrier-grade NAT (100.64/10), link-local (169.254/16 — the cloud metadata service —,
/// fe80::/10), unique-local (fc00::/7, which holds AWS's fd00:ec2::254), multicast,
/// broadcast, documentation, benchmarking and reserved ranges; IPv4-mapped, IPv4-compatible
/// and NAT64 IPv6 addresses are judged by their IPv4 address.
pub fn is_forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => is_forbidden_v6(v6),
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0 // 0/8 "this network"
        || (a == 100 && (64..128).contains(&b)) // 100.64/10 carrier-grade NAT
        || (a == 192 && b == 0 && c == 0) // 192.0.0/24 IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // 198.18/15 benchmarking
        || a >= 240 // 240/4 reserved
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    if let Some(v4) = embedded_v4(ip) {
        return is_forbidden_v4(v4);
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (seg[0] & 0xfe00) == 0xfc00 // fc00::/7 unique local
        || (seg[0] & 0xffc0) == 0xfe80 // fe80::/10 link local
        || (seg[0] & 0xffc0) == 0xfec0 // fec0::/10 site local (deprecated)
        || (seg[0] == 0x2001 && seg[1] == 0x0db8) // 2001:db8::/32 documentation
        || seg[0] == 0x0100 && seg[1..4] == [0, 0, 0] // 100::/64 discard
}

/// The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d) or
/// NAT64 (64:ff9b::a.b.c.d) IPv6 address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let seg = ip.segments();
    let tail = || Ipv4Addr::new((seg[6] >> 8) as u8, seg[6] as u8, (seg[7] >> 8) as u8, seg[7] as u8);
    match seg {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(tail()),
        // ::a.b.c.d, but not :: and ::1 themselves
        [0, 0, 0, 0, 0, 0, hi, _] if hi != 0 => Some(tail()),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(tail()),
        _ => None,
    }
}

/// Check the host of `url` when it is an IP literal (names are checked by the resolver).
pub fn check_url(url: &url::Url, policy: NetworkPolicy) -> Result<(), GuardError> {
    if policy == NetworkPolicy::AllowPrivate {
        return Ok(());
    }
    let ip = match url.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(url::Host::Domain(_)) | None => return Ok(()),
    };
    match is_forbidden_ip(ip) {
        true => Err(GuardError::PrivateAddress { url: redact_uri(url.as_str()) }),
        false => Ok(()),
    }
}

/// reqwest's DNS resolver under [`NetworkPolicy::PublicOnly`]: the system resolver, minus
/// forbidden addresses.
#[derive(Clone, Copy, Debug, Default)]
pub struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (refused, allowed): (Vec<SocketAddr>, Vec<SocketAddr>) =
                resolved.into_iter().partition(|addr| is_forbidden_ip(addr.ip()));
            if allowed.is_empty() && !refused.is_empty() {
                let addrs = refused.iter().map(|a| a.ip().to_string()).collect::<Vec<_>>().join(", ");
                return Err(Box::new(GuardError::ResolvedPrivate { host, addrs }) as _);
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// The resolver to install for `policy` (none: reqwest's default resolver).
pub fn resolver(policy: NetworkPolicy) -> Option<Arc<GuardedResolver>> {
    (policy == NetworkPolicy::PublicOnly).then(|| Arc::new(GuardedResolver))
}

/// Follow at most [`MAX_REDIRECTS`] hops, only to http(s), and under
/// [`NetworkPolicy::PublicOnly`] never to an IP literal that [`is_forbidden_ip`] refuses
/// (names are resolved, and checked, by [`GuardedResolver`] when the hop connects).
pub fn redirect_policy(policy: NetworkPolicy) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        match check_hop(attempt.previous().len(), attempt.url(), policy) {
            Ok(()) => attempt.follow(),
            Err(err) => attempt.error(err),
        }
    })
}

/// Whether a redirect to `next`, after `previous` requests of the chain, may be followed.
pub fn check_hop(previous: usize, next: &url::Url, policy: NetworkPolicy) -> Result<(), GuardError> {
    if previous > MAX_REDIRECTS {
        return Err(GuardError::TooManyRedirects);
    }
    if !matches!(next.scheme(), "http" | "https") {
        return Err(GuardError::RedirectScheme { url: redact_uri(next.as_str()) });
    }
    check_url(next, policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn internal_addresses_are_forbidden() {
        for text in [
            "169.254.169.254",
            "fd00:ec2::254",
            "100.64.0.1",
            "100.127.255.254",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "127.0.0.1",
            "127.8.9.10",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "ff02::1",
        ] {
            assert!(is_forbidden_ip(ip(text)), "{text}");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for text in [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.0.1",
            "172.32.0.1",
            "192.169.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_forbidden_ip(ip(text)), "{text}");
        }
    }

    #[test]
    fn ip_literal_urls_are_checked_unless_allowed() {
        let url = |s: &str| url::Url::parse(s).expect("url");
        let meta = url("http://169.254.169.254/latest/meta-data/");
        assert!(check_url(&meta, NetworkPolicy::PublicOnly).is_err());
        assert!(check_url(&meta, NetworkPolicy::AllowPrivate).is_ok());
        assert!(check_url(&url("http://[::1]:8080/a.jpg"), NetworkPolicy::PublicOnly).is_err());
        assert!(check_url(&url("https://8.8.8.8/a.jpg"), NetworkPolicy::PublicOnly).is_ok());
        assert!(check_url(&url("https://images.example/a.jpg"), NetworkPolicy::PublicOnly).is_ok());
    }

    #[test]
    fn redirect_hops_are_checked_and_capped() {
        let url = |s: &str| url::Url::parse(s).expect("url");
        let public = NetworkPolicy::PublicOnly;
        assert!(check_hop(1, &url("https://cdn.example/a.jpg"), public).is_ok());
        for internal in
            ["http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/", "http://[fd00:ec2::254]/"]
        {
            let err = check_hop(1, &url(internal), public).expect_err(internal);
            assert!(matches!(err, GuardError::PrivateAddress { .. }), "{internal}: {err:?}");
            assert!(check_hop(1, &url(internal), NetworkPolicy::AllowPrivate).is_ok(), "{internal}");
        }
        let err = check_hop(1, &url("file:///etc/passwd"), NetworkPolicy::AllowPrivate).expect_err("file");
        assert!(matches!(err, GuardError::RedirectScheme { .. }), "{err:?}");
        assert!(check_hop(MAX_REDIRECTS, &url("https://cdn.example/"), public).is_ok());
        let err = check_hop(MAX_REDIRECTS + 1, &url("https://cdn.example/"), public).expect_err("cap");
        assert!(matches!(err, GuardError::TooManyRedirects), "{err:?}");
    }

    #[tokio::test]
    async fn resolver_refuses_names_of_loopback_addresses() {
        let name: Name = "localhost".parse().expect("name");
        let err = GuardedResolver.resolve(name).await.err().expect("localhost is loopback");
        assert!(err.to_string().contains("localhost resolves only to"), "{err}");
    }
}
