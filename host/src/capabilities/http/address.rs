//! Which addresses `http` may connect to: only globally routable unicast
//! ones. Everything a feature could use to reach the host itself, its private
//! network, its cloud's metadata service or a neighbour on a shared segment is
//! refused. The rules are an allow-list where one is short enough (IPv6: only
//! `2000::/3` is global unicast) and a deny-list of the special-purpose
//! registries otherwise (IPv4); addresses that embed an IPv4 address
//! (IPv4-mapped, NAT64, 6to4) are judged by the address they embed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Cloud metadata and platform endpoints that sit in public address space
/// (Azure's wire server): refused like private ones.
const PUBLIC_METADATA: [Ipv4Addr; 1] = [Ipv4Addr::new(168, 63, 129, 16)];

/// True when `ip` is a public unicast address a feature may reach.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => public_v6(v6),
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let special = a == 0 // 0.0.0.0/8: "this network"
        || a == 10 // 10/8: private
        || (a == 100 && (b & 0xc0) == 64) // 100.64/10: carrier-grade NAT (and Alibaba's metadata)
        || a == 127 // 127/8: loopback
        || (a == 169 && b == 254) // 169.254/16: link-local, the metadata address 169.254.169.254
        || (a == 172 && (b & 0xf0) == 16) // 172.16/12: private
        || (a == 192 && b == 0 && c == 0) // 192.0.0/24: protocol assignments (Oracle's metadata)
        || (a == 192 && b == 0 && c == 2) // 192.0.2/24: TEST-NET-1
        || (a == 192 && b == 88 && c == 99) // 192.88.99/24: 6to4 relay anycast
        || (a == 192 && b == 168) // 192.168/16: private
        || (a == 198 && (b & 0xfe) == 18) // 198.18/15: benchmarking
        || (a == 198 && b == 51 && c == 100) // 198.51.100/24: TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // 203.0.113/24: TEST-NET-3
        || a >= 224; // 224/4 multicast, 240/4 reserved, 255.255.255.255 broadcast
    !special && !PUBLIC_METADATA.contains(&ip)
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    // ::ffff:0:0/96, IPv4-mapped: the socket connects to the IPv4 address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return public_v4(v4);
    }
    // 64:ff9b::/96, well-known NAT64 prefix: the translator connects to the
    // embedded IPv4 address.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return public_v4(embedded_v4(s[6], s[7]));
    }
    // Only 2000::/3 is global unicast. Outside it: :: and ::1, the deprecated
    // IPv4-compatible ::/96, 64:ff9b:1::/48 (local NAT64), 100::/64
    // (discard), fc00::/7 (unique local, AWS's metadata fd00:ec2::254),
    // fe80::/10 (link-local), fec0::/10 (site-local), ff00::/8 (multicast).
    if s[0] & 0xe000 != 0x2000 {
        return false;
    }
    // 2001::/23: protocol assignments (Teredo 2001::/32, ORCHID, benchmarking).
    if s[0] == 0x2001 && s[1] < 0x0200 {
        return false;
    }
    // 2001:db8::/32 and 3fff::/20: documentation.
    if (s[0] == 0x2001 && s[1] == 0x0db8) || (s[0] == 0x3fff && s[1] < 0x1000) {
        return false;
    }
    // 2002::/16, 6to4: reaches the embedded IPv4 address through a relay.
    if s[0] == 0x2002 {
        return public_v4(embedded_v4(s[1], s[2]));
    }
    true
}

fn embedded_v4(high: u16, low: u16) -> Ipv4Addr {
    let [a, b] = high.to_be_bytes();
    let [c, d] = low.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(text: &str) -> bool {
        is_public(text.parse().unwrap())
    }

    #[test]
    fn every_special_ipv4_range_is_refused_at_both_ends() {
        let refused = [
            ("0.0.0.0", "0.255.255.255"),
            ("10.0.0.0", "10.255.255.255"),
            ("100.64.0.0", "100.127.255.255"),
            ("127.0.0.0", "127.255.255.255"),
            ("169.254.0.0", "169.254.255.255"),
            ("172.16.0.0", "172.31.255.255"),
            ("192.0.0.0", "192.0.0.255"),
            ("192.0.2.0", "192.0.2.255"),
            ("192.88.99.0", "192.88.99.255"),
            ("192.168.0.0", "192.168.255.255"),
            ("198.18.0.0", "198.19.255.255"),
            ("198.51.100.0", "198.51.100.255"),
            ("203.0.113.0", "203.0.113.255"),
            ("224.0.0.0", "239.255.255.255"),
            ("240.0.0.0", "255.255.255.254"),
        ];
        for (first, last) in refused {
            assert!(!public(first), "{first}");
            assert!(!public(last), "{last}");
        }
        for named in [
            "127.0.0.1",
            "169.254.169.254",
            "100.100.100.200",
            "192.0.0.192",
            "168.63.129.16",
            "255.255.255.255",
        ] {
            assert!(!public(named), "{named}");
        }
    }

    #[test]
    fn the_addresses_around_the_ranges_are_public() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.0",
            "192.0.3.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "203.0.112.255",
            "223.255.255.255",
            "168.63.129.17",
        ] {
            assert!(public(ip), "{ip}");
        }
    }

    #[test]
    fn special_ipv6_ranges_are_refused() {
        for ip in [
            "::",
            "::1",
            "::127.0.0.1",
            "::8.8.8.8",
            "64:ff9b:1::1",
            "100::1",
            "fc00::1",
            "fd00:ec2::254",
            "fdff:ffff::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "ff0e::1",
            "2001::1",
            "2001:1ff::1",
            "2001:db8::1",
            "3fff::1",
            "3fff:fff::1",
            "1fff:ffff::1",
            "4000::1",
            "e000::1",
        ] {
            assert!(!public(ip), "{ip}");
        }
    }

    #[test]
    fn addresses_embedding_ipv4_are_judged_by_it() {
        for ip in [
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:0.0.0.0",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::192.168.1.1",
            "2002:7f00:1::1",
            "2002:a00:1::1",
            "2002:a9fe:a9fe::1",
        ] {
            assert!(!public(ip), "{ip}");
        }
        for ip in ["::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"] {
            assert!(public(ip), "{ip}");
        }
    }

    #[test]
    fn global_ipv6_unicast_is_public() {
        for ip in [
            "2000::1",
            "2001:200::1",
            "2001:4860:4860::8888",
            "2606:4700:4700::1111",
            "2a00:1450::1",
            "3ffe::1",
            "3fff:1000::1",
        ] {
            assert!(public(ip), "{ip}");
        }
    }
}
