//! Which addresses fal's download helper fetches from: only globally routable ones
//! (fal-protocol.md §7.1, `ssrf.py` `is_globally_routable_ip`). It refuses what Python's
//! `ipaddress` calls private, loopback, link-local, multicast, reserved or unspecified, and CGNAT;
//! an IPv6 address that carries an IPv4 one (IPv4-mapped, NAT64, 6to4, Teredo) is judged on the
//! IPv4 inside.
//!
//! The blocks mirror Python 3.13's tables; which Python fal's runners use is UNCONFIRMED, and
//! the private list moved in 2024 patch releases (fal-protocol.md §7.1).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IPv4 blocks that are not globally routable.
const NON_ROUTABLE_V4: &[(Ipv4Addr, u8)] = &[
    // "This network"; holds the unspecified 0.0.0.0.
    (Ipv4Addr::new(0, 0, 0, 0), 8),
    (Ipv4Addr::new(10, 0, 0, 0), 8),
    // CGNAT, which `ssrf.py` checks itself because Python does not call it private.
    (Ipv4Addr::new(100, 64, 0, 0), 10),
    (Ipv4Addr::new(127, 0, 0, 0), 8),
    (Ipv4Addr::new(169, 254, 0, 0), 16),
    (Ipv4Addr::new(172, 16, 0, 0), 12),
    // IETF protocol assignments.
    (Ipv4Addr::new(192, 0, 0, 0), 24),
    // Documentation (TEST-NET-1, -2, -3).
    (Ipv4Addr::new(192, 0, 2, 0), 24),
    (Ipv4Addr::new(198, 51, 100, 0), 24),
    (Ipv4Addr::new(203, 0, 113, 0), 24),
    (Ipv4Addr::new(192, 168, 0, 0), 16),
    // Benchmarking.
    (Ipv4Addr::new(198, 18, 0, 0), 15),
    (Ipv4Addr::new(224, 0, 0, 0), 4),
    // Reserved; holds the broadcast 255.255.255.255.
    (Ipv4Addr::new(240, 0, 0, 0), 4),
];

/// Inside 192.0.0.0/24 but globally reachable (Python's `_private_networks_exceptions`).
const ROUTABLE_EXCEPTIONS_V4: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(192, 0, 0, 9), 32),
    (Ipv4Addr::new(192, 0, 0, 10), 32),
];

/// IPv6 blocks that are not globally routable: Python's reserved blocks (everything outside
/// 2000::/3 but the ones named below them), its private list, link-local and multicast.
const NON_ROUTABLE_V6: &[(Ipv6Addr, u8)] = &[
    // Reserved; ::/8 holds the unspecified ::, the loopback ::1, IPv4-compatible addresses and
    // the NAT64 prefixes.
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 8),
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 8),
    (Ipv6Addr::new(0x200, 0, 0, 0, 0, 0, 0, 0), 7),
    (Ipv6Addr::new(0x400, 0, 0, 0, 0, 0, 0, 0), 6),
    (Ipv6Addr::new(0x800, 0, 0, 0, 0, 0, 0, 0), 5),
    (Ipv6Addr::new(0x1000, 0, 0, 0, 0, 0, 0, 0), 4),
    (Ipv6Addr::new(0x4000, 0, 0, 0, 0, 0, 0, 0), 3),
    (Ipv6Addr::new(0x6000, 0, 0, 0, 0, 0, 0, 0), 3),
    (Ipv6Addr::new(0x8000, 0, 0, 0, 0, 0, 0, 0), 3),
    (Ipv6Addr::new(0xa000, 0, 0, 0, 0, 0, 0, 0), 3),
    (Ipv6Addr::new(0xc000, 0, 0, 0, 0, 0, 0, 0), 3),
    (Ipv6Addr::new(0xe000, 0, 0, 0, 0, 0, 0, 0), 4),
    (Ipv6Addr::new(0xf000, 0, 0, 0, 0, 0, 0, 0), 5),
    (Ipv6Addr::new(0xf800, 0, 0, 0, 0, 0, 0, 0), 6),
    (Ipv6Addr::new(0xfe00, 0, 0, 0, 0, 0, 0, 0), 9),
    // IETF protocol assignments (Teredo's 2001::/32 among them, judged on its IPv4 instead).
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23),
    // Documentation.
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32),
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20),
    // 6to4, judged on its IPv4 instead.
    (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16),
    // Unique local.
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8),
];

/// Inside 2001::/23 but globally reachable (Python's `_private_networks_exceptions`).
const ROUTABLE_EXCEPTIONS_V6: &[(Ipv6Addr, u8)] = &[
    (Ipv6Addr::new(0x2001, 1, 0, 0, 0, 0, 0, 1), 128),
    (Ipv6Addr::new(0x2001, 1, 0, 0, 0, 0, 0, 2), 128),
    (Ipv6Addr::new(0x2001, 3, 0, 0, 0, 0, 0, 0), 32),
    (Ipv6Addr::new(0x2001, 4, 0x112, 0, 0, 0, 0, 0), 48),
    (Ipv6Addr::new(0x2001, 0x20, 0, 0, 0, 0, 0, 0), 28),
    (Ipv6Addr::new(0x2001, 0x30, 0, 0, 0, 0, 0, 0), 28),
];

const NAT64: (Ipv6Addr, u8) = (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96);
const SIX_TO_FOUR: (Ipv6Addr, u8) = (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16);
const TEREDO: (Ipv6Addr, u8) = (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32);

/// Whether fal's download helper would connect to `address`.
pub(crate) fn is_globally_routable(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(address) => is_routable_v4(address),
        IpAddr::V6(address) => match embedded_ipv4(address) {
            Some(inner) => is_routable_v4(inner),
            None => {
                !in_any_v6(address, NON_ROUTABLE_V6) || in_any_v6(address, ROUTABLE_EXCEPTIONS_V6)
            }
        },
    }
}

fn is_routable_v4(address: Ipv4Addr) -> bool {
    !in_any_v4(address, NON_ROUTABLE_V4) || in_any_v4(address, ROUTABLE_EXCEPTIONS_V4)
}

/// The IPv4 address an IPv6 one carries: IPv4-mapped `::ffff:a.b.c.d` and NAT64
/// `64:ff9b::a.b.c.d` in the last 32 bits, 6to4 `2002:AABB:CCDD::` in bits 16..48, Teredo
/// `2001::/32` as the client address, the last 32 bits inverted.
fn embedded_ipv4(address: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(address);
    let last_32 = bits as u32;
    if let Some(mapped) = address.to_ipv4_mapped() {
        Some(mapped)
    } else if in_v6(address, NAT64) {
        Some(Ipv4Addr::from(last_32))
    } else if in_v6(address, SIX_TO_FOUR) {
        Some(Ipv4Addr::from((bits >> 80) as u32))
    } else if in_v6(address, TEREDO) {
        Some(Ipv4Addr::from(!last_32))
    } else {
        None
    }
}

fn in_any_v4(address: Ipv4Addr, blocks: &[(Ipv4Addr, u8)]) -> bool {
    blocks.iter().any(|&(network, prefix)| {
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        u32::from(address) & mask == u32::from(network) & mask
    })
}

fn in_any_v6(address: Ipv6Addr, blocks: &[(Ipv6Addr, u8)]) -> bool {
    blocks.iter().any(|&block| in_v6(address, block))
}

fn in_v6(address: Ipv6Addr, (network, prefix): (Ipv6Addr, u8)) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    u128::from(address) & mask == u128::from(network) & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routable(address: &str) -> bool {
        is_globally_routable(address.parse().expect("a valid address"))
    }

    #[test]
    fn public_addresses_pass() {
        for address in [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.0",
            "192.0.0.9",
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "2001:20::1",
        ] {
            assert!(routable(address), "{address} is public");
        }
    }

    #[test]
    fn private_and_special_ipv4_blocks_are_refused() {
        for (address, class) in [
            ("10.0.0.1", "RFC 1918"),
            ("172.16.0.1", "RFC 1918"),
            ("172.31.255.255", "RFC 1918"),
            ("192.168.1.10", "RFC 1918"),
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("169.254.169.254", "link-local"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.255", "broadcast"),
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "this network"),
            ("100.64.0.1", "CGNAT"),
            ("100.127.255.254", "CGNAT"),
            ("192.0.0.8", "IETF protocol assignments"),
            ("192.0.2.1", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.200", "documentation"),
            ("198.18.0.1", "benchmarking"),
        ] {
            assert!(!routable(address), "{address} ({class}) is refused");
        }
    }

    #[test]
    fn private_and_special_ipv6_blocks_are_refused() {
        for (address, class) in [
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fe80::1", "link-local"),
            ("fc00::1", "unique local"),
            ("fd12:3456::1", "unique local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
            ("100::1", "discard-only"),
            ("4000::1", "reserved"),
            ("2001:2::1", "IETF protocol assignments"),
        ] {
            assert!(!routable(address), "{address} ({class}) is refused");
        }
    }

    #[test]
    fn ipv6_carrying_ipv4_is_judged_on_the_ipv4_inside() {
        for (address, expected) in [
            ("::ffff:8.8.8.8", true),
            ("::ffff:10.0.0.1", false),
            ("::ffff:127.0.0.1", false),
            ("64:ff9b::8.8.8.8", true),
            ("64:ff9b::10.0.0.1", false),
            ("64:ff9b::100.64.0.1", false),
            // 6to4: 2002:0808:0808:: carries 8.8.8.8; 2002:c0a8:0101:: carries 192.168.1.1.
            ("2002:808:808::1", true),
            ("2002:c0a8:101::1", false),
            // Teredo: the client is the last 32 bits inverted; !f7f7:f7f7 is 8.8.8.8 and
            // !f5ff:fffe is 10.0.0.1.
            ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", true),
            ("2001:0:4136:e378:8000:63bf:f5ff:fffe", false),
        ] {
            assert_eq!(routable(address), expected, "{address}");
        }
    }
}
