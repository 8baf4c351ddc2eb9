//! Small helpers every crate of the host shares: hex digests, sha256, byte sizes, and the one classifier of IP
//! literals and DNS names (so that policy checks, source URLs and request checks cannot disagree on what
//! "loopback" or "a host name" means).

use sha2::{Digest, Sha256};
use std::net::{IpAddr, Ipv4Addr};

/// The sha256 digest of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Exactly `2 * N` hex digits (either case) as `N` bytes; `None` for anything else.
pub fn parse_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).ok().map(|()| out)
}

/// Human-readable bytes: `64 MiB`.
pub fn fmt_bytes(n: u64) -> String {
    bytesize::ByteSize::b(n).display().iec().to_string()
}

/// The IP address `host` is written as: `1.2.3.4`, `::1` or `[::1]`; `None` for a name (or anything else).
///
/// Only complete literals count: `127.1` or `0x7f.0.0.1`, which some resolvers read as addresses, are not IP
/// literals here, and [`check_dns_name`] refuses them as names.
pub fn ip_literal(host: &str) -> Option<IpAddr> {
    let bare = match host.strip_prefix('[') {
        Some(v6) => v6.strip_suffix(']')?,
        None => host,
    };
    bare.parse().ok()
}

/// Whether `host` is a loopback IP literal (`127.0.0.0/8`, `::1`, or an IPv4-mapped loopback), bracketed or not.
pub fn is_loopback_literal(host: &str) -> bool {
    ip_literal(host).is_some_and(|ip| ip.to_canonical().is_loopback())
}

/// `host` without a trailing `:port`: `127.0.0.1:5000` → `127.0.0.1`, `[::1]:5000` → `[::1]`; a bare IPv6
/// literal (`::1`, several colons) is left whole.
pub fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    match host.rsplit_once(':') {
        Some((bare, port))
            if !bare.contains(':')
                && !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit()) =>
        {
            bare
        }
        _ => host,
    }
}

/// Whether `ip` is an address of the public internet (not loopback, private, link-local, reserved, …).
pub fn is_public(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(a) => !is_special_v4(a),
        IpAddr::V6(a) => {
            let seg0 = a.segments()[0];
            let nat64 = a.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
            let embedded = Ipv4Addr::from_bits(a.to_bits() as u32);
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (seg0 & 0xfe00) == 0xfc00 // unique local
                || (seg0 & 0xffc0) == 0xfe80 // link local
                || (seg0 == 0x2001 && a.segments()[1] == 0x0db8) // documentation
                || (nat64 && is_special_v4(embedded)))
        }
    }
}

fn is_special_v4(a: Ipv4Addr) -> bool {
    let [b0, b1, ..] = a.octets();
    a.is_private()
        || a.is_loopback()
        || a.is_link_local()
        || a.is_broadcast()
        || a.is_documentation()
        || a.is_unspecified()
        || a.is_multicast()
        || b0 == 0
        || (b0 == 100 && (b1 & 0xc0) == 64) // shared address space (CGNAT)
        || (b0 == 192 && b1 == 0 && a.octets()[2] == 0) // IETF protocol assignments
        || (b0 == 198 && (b1 & 0xfe) == 18) // benchmarking
        || b0 >= 240 // reserved
}

/// Check that `name` is a DNS host name: at most 253 characters of dot-separated labels, each 1 to 63 letters,
/// digits and inner hyphens, the last one not all digits (so `10.1` or `0.0.1` cannot pass for a name, and a
/// grant never depends on how a resolver reads a partial IP address). `*` is not part of a name: a wildcard is
/// the caller's leading `*.` only.
///
/// # Errors
/// What is wrong, worded to follow "in NAME …" or "…: ".
pub fn check_dns_name(name: &str) -> Result<(), InvalidDnsName> {
    if name.is_empty() {
        return Err(InvalidDnsName::Empty);
    }
    if name.len() > 253 {
        return Err(InvalidDnsName::TooLong);
    }
    let labels: Vec<&str> = name.split('.').collect();
    for label in &labels {
        let label_error = |make: fn(String) -> InvalidDnsName| Err(make((*label).to_string()));
        if label.is_empty() {
            return Err(InvalidDnsName::EmptyLabel);
        }
        if label.contains('*') {
            return Err(InvalidDnsName::Wildcard);
        }
        if label.len() > 63 {
            return label_error(InvalidDnsName::LabelTooLong);
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return label_error(InvalidDnsName::LabelCharacters);
        }
        if label.starts_with('-') || label.ends_with('-') {
            return label_error(InvalidDnsName::LabelHyphen);
        }
    }
    let last = labels.last().copied().unwrap_or_default();
    if last.chars().all(|c| c.is_ascii_digit()) {
        return Err(InvalidDnsName::NumericLastLabel(last.to_string()));
    }
    Ok(())
}

/// What is wrong with a DNS name (see [`check_dns_name`]), worded to follow "in NAME …" or "…: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidDnsName {
    /// Nothing at all.
    #[error("the name is empty")]
    Empty,
    /// Over 253 characters.
    #[error("the name is longer than 253 characters")]
    TooLong,
    /// A leading, trailing or doubled `.`.
    #[error("a label is empty (a leading, trailing or doubled `.`)")]
    EmptyLabel,
    /// A `*` other than a whole leading `*.`.
    #[error("`*` appears where only a whole leading `*.` is allowed")]
    Wildcard,
    /// A label over 63 characters.
    #[error("label {0:?} is longer than 63 characters")]
    LabelTooLong(String),
    /// A label with characters other than letters, digits and `-`.
    #[error("label {0:?} has characters other than letters, digits and `-`")]
    LabelCharacters(String),
    /// A label that starts or ends with `-`.
    #[error("label {0:?} starts or ends with `-`")]
    LabelHyphen(String),
    /// The last label is all digits: it reads as an IP address.
    #[error(
        "the last label {0:?} is all digits, which reads as an IP address, not a name (grant an IP address by \
         writing all of it, without `*.`)"
    )]
    NumericLastLabel(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_bad_digests() {
        assert_eq!(hex(&[0, 0xab, 0xff]), "00abff");
        assert_eq!(parse_hex::<3>("00ABff"), Some([0, 0xab, 0xff]));
        assert_eq!(parse_hex::<3>("00abf"), None);
        assert_eq!(parse_hex::<3>("00abffee"), None);
        assert_eq!(parse_hex::<2>("zz00"), None);
        assert_eq!(parse_hex::<2>("+0ab"), None, "no sign");
    }

    #[test]
    fn one_rule_for_loopback_literals() {
        for loopback in [
            "127.0.0.1",
            "127.9.9.9",
            "::1",
            "[::1]",
            "::ffff:127.0.0.1",
            "[::ffff:127.0.0.1]",
        ] {
            assert!(is_loopback_literal(loopback), "{loopback}");
        }
        for other in [
            "localhost",
            "127.1",
            "0x7f.0.0.1",
            "10.0.0.1",
            "[::1",
            "::1]",
            "[127.0.0.1]x",
            "127.0.0.1:80",
            "",
        ] {
            assert!(!is_loopback_literal(other), "{other}");
        }
        assert_eq!(strip_port("127.0.0.1:5000"), "127.0.0.1");
        assert_eq!(strip_port("[::1]:5000"), "[::1]");
        assert_eq!(strip_port("::1"), "::1");
        assert_eq!(strip_port("registry.example"), "registry.example");
        assert_eq!(strip_port("registry.example:"), "registry.example:");
    }

    #[test]
    fn public_addresses() {
        for public in ["1.1.1.1", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
        for private in [
            "10.0.0.1",
            "127.0.0.1",
            "169.254.1.1",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
    }

    #[test]
    fn dns_names() {
        assert!(check_dns_name("api.example.com").is_ok());
        for bad in ["", "a..b", "-a.b", "a.1", "a*.b", "a_b.c"] {
            assert!(check_dns_name(bad).is_err(), "{bad}");
        }
    }
}
