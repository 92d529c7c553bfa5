//! Whether fal's runners can fetch an address (fal-protocol.md §7.1): they download inputs from
//! fal's cloud and refuse any host that resolves to an address that is not globally routable,
//! so a MinIO on this machine or the local network can never serve a training set to fal.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why fal cannot fetch an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreachable {
    /// Not `http`/`https`, or not an address at all.
    NotWebAddress,
    /// The host name does not resolve from here.
    Unresolved,
    /// The host is, or resolves to, an address only this machine or network can reach.
    NotPublic(IpAddr),
}

impl Unreachable {
    /// A stable code for the UI and scripts.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotWebAddress => "not_web_address",
            Self::Unresolved => "unresolved",
            Self::NotPublic(_) => "not_public",
        }
    }
}

/// Resolves the address's host and checks every address it resolves to, as fal's downloader does.
pub async fn fal_can_fetch(address: &str) -> Result<(), Unreachable> {
    let url = url::Url::parse(address).map_err(|_| Unreachable::NotWebAddress)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Unreachable::NotWebAddress);
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses: Vec<IpAddr> = match url.host() {
        Some(url::Host::Ipv4(address)) => vec![IpAddr::V4(address)],
        Some(url::Host::Ipv6(address)) => vec![IpAddr::V6(address)],
        Some(url::Host::Domain(name)) => tokio::net::lookup_host((name, port))
            .await
            .map_err(|_| Unreachable::Unresolved)?
            .map(|socket| socket.ip())
            .collect(),
        None => return Err(Unreachable::NotWebAddress),
    };
    if addresses.is_empty() {
        return Err(Unreachable::Unresolved);
    }
    match addresses.into_iter().find(|address| !is_public(*address)) {
        Some(address) => Err(Unreachable::NotPublic(address)),
        None => Ok(()),
    }
}

/// Whether an address is globally routable, judging IPv6 that carries an IPv4 address
/// (mapped, NAT64, 6to4, Teredo) by the IPv4 inside (fal's `ssrf.py`).
pub fn is_public(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(address) => is_public_v4(address),
        IpAddr::V6(address) => match embedded_v4(address) {
            Some(inner) => is_public_v4(inner),
            None => is_public_v6(address),
        },
    }
}

fn is_public_v4(address: Ipv4Addr) -> bool {
    let [a, b, c, _] = address.octets();
    let special = address.is_private()
        || address.is_loopback()
        || address.is_link_local()
        || address.is_multicast()
        || address.is_broadcast()
        || address.is_documentation()
        || address.is_unspecified()
        || a == 0
        // CGNAT 100.64.0.0/10: not "private" to Python either, so fal checks it by name.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments 192.0.0.0/24, benchmarking 198.18.0.0/15, reserved 240/4.
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240;
    !special
}

fn is_public_v6(address: Ipv6Addr) -> bool {
    let first = address.segments()[0];
    let special = address.is_loopback()
        || address.is_unspecified()
        || address.is_multicast()
        // Unique local fc00::/7, link-local fe80::/10, documentation 2001:db8::/32.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first == 0x2001 && address.segments()[1] == 0x0db8);
    !special
}

/// The IPv4 address an IPv6 address carries, for the forms fal's check unwraps.
fn embedded_v4(address: Ipv6Addr) -> Option<Ipv4Addr> {
    let segments = address.segments();
    let octets = address.octets();
    let tail = Ipv4Addr::new(octets[12], octets[13], octets[14], octets[15]);
    if let Some(mapped) = address.to_ipv4_mapped() {
        return Some(mapped);
    }
    match segments[0] {
        // NAT64 64:ff9b::/96.
        0x0064 if segments[1] == 0xff9b && segments[2..6] == [0; 4] => Some(tail),
        // 6to4 2002::/16: the IPv4 address is in bits 16–48.
        0x2002 => Some(Ipv4Addr::new(octets[2], octets[3], octets[4], octets[5])),
        // Teredo 2001::/32: the client's address, inverted, in the last 32 bits.
        0x2001 if segments[1] == 0 => Some(Ipv4Addr::from(!u32::from(tail))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(text: &str) -> bool {
        is_public(text.parse().expect("an address"))
    }

    #[test]
    fn only_globally_routable_addresses_pass() {
        for address in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "64:ff9b::808:808"] {
            assert!(public(address), "{address}");
        }
        for address in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.20",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "0.0.0.0",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2002:c0a8:0101::1",
            // Teredo carrying 192.168.1.1 (inverted: 3f57:fefe).
            "2001:0:4136:e378:8000:63bf:3f57:fefe",
        ] {
            assert!(!public(address), "{address}");
        }
    }

    #[tokio::test]
    async fn a_loopback_or_lan_store_cannot_serve_fal() {
        assert_eq!(
            fal_can_fetch("http://127.0.0.1:9000/bucket").await,
            Err(Unreachable::NotPublic("127.0.0.1".parse().expect("ip")))
        );
        assert_eq!(
            fal_can_fetch("http://localhost:9000")
                .await
                .map_err(|error| error.code()),
            Err("not_public")
        );
        assert_eq!(
            fal_can_fetch("https://192.168.1.20:9000")
                .await
                .map_err(|error| error.code()),
            Err("not_public")
        );
        assert_eq!(
            fal_can_fetch("ftp://8.8.8.8").await,
            Err(Unreachable::NotWebAddress)
        );
        assert_eq!(fal_can_fetch("https://8.8.8.8").await, Ok(()));
    }
}
