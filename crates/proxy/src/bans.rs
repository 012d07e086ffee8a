//! Banned addresses: IPv4 and IPv6 addresses and networks, each with a reason.
//!
//! A lookup masks the address once per prefix length present in the list and probes a
//! hash map, so its cost depends on the number of distinct prefix lengths (at most 33
//! for IPv4 and 129 for IPv6), not on the number of bans. IPv4-mapped IPv6 addresses
//! (`::ffff:a.b.c.d`, as a dual-stack listener reports IPv4 peers) match IPv4 bans.

use std::collections::HashMap;
use std::net::IpAddr;

pub use ipnet::IpNet;

/// One ban as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    /// The banned address (`/32` or `/128`) or network; host bits are cleared.
    pub net: IpNet,
    /// Why, as the admin wrote it.
    pub reason: String,
}

/// A malformed ban.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BanError {
    /// Neither an address nor a CIDR.
    #[error(
        "'{0}' is not an IP address or network: write an IPv4 or IPv6 address (192.0.2.7, 2001:db8::7) or a CIDR (192.0.2.0/24, 2001:db8::/32)"
    )]
    Malformed(String),
    /// A CIDR with host bits set, such as `192.0.2.7/24`.
    #[error("'{given}' has bits set after the prefix: the network is {network}")]
    HostBits { given: String, network: IpNet },
}

/// Parses `192.0.2.7`, `192.0.2.0/24`, `2001:db8::/32`; an address alone is a /32 or /128.
pub fn parse_net(text: &str) -> Result<IpNet, BanError> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<IpAddr>() {
        return Ok(IpNet::from(addr));
    }
    let net: IpNet = text
        .parse()
        .map_err(|_| BanError::Malformed(text.to_owned()))?;
    if net.trunc() != net {
        return Err(BanError::HostBits {
            given: text.to_owned(),
            network: net.trunc(),
        });
    }
    Ok(net)
}

/// The set of bans, built once per reload and shared read-only.
#[derive(Debug, Default)]
pub struct BanList {
    v4: Table<u32>,
    v6: Table<u128>,
    n_bans: usize,
}

#[derive(Debug)]
struct Table<K> {
    /// Prefix lengths present, longest first (so the most specific ban's reason wins).
    lengths: Vec<u8>,
    by_network: HashMap<(u8, K), String>,
}

impl<K> Default for Table<K> {
    fn default() -> Self {
        Table {
            lengths: Vec::new(),
            by_network: HashMap::new(),
        }
    }
}

impl<K: Copy + Eq + std::hash::Hash> Table<K> {
    fn insert(&mut self, len: u8, network: K, reason: &str) {
        if !self.lengths.contains(&len) {
            self.lengths.push(len);
            self.lengths.sort_unstable_by(|a, b| b.cmp(a));
        }
        self.by_network
            .entry((len, network))
            .or_insert_with(|| reason.to_owned());
    }

    fn lookup(&self, mask: impl Fn(u8) -> K) -> Option<&str> {
        self.lengths
            .iter()
            .find_map(|&len| self.by_network.get(&(len, mask(len))).map(String::as_str))
    }
}

impl BanList {
    /// Builds the list from bans.
    pub fn new(bans: &[Ban]) -> BanList {
        let mut list = BanList::default();
        for ban in bans {
            match ban.net.trunc() {
                IpNet::V4(net) => {
                    list.v4
                        .insert(net.prefix_len(), u32::from(net.network()), &ban.reason)
                }
                IpNet::V6(net) => {
                    list.v6
                        .insert(net.prefix_len(), u128::from(net.network()), &ban.reason)
                }
            }
        }
        list.n_bans = bans.len();
        list
    }

    /// The reason `addr` is banned, if it is.
    pub fn check(&self, addr: IpAddr) -> Option<&str> {
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            IpAddr::V4(_) => addr,
        };
        match addr {
            IpAddr::V4(v4) => {
                let bits = u32::from(v4);
                self.v4.lookup(|len| mask32(bits, len))
            }
            IpAddr::V6(v6) => {
                let bits = u128::from(v6);
                self.v6.lookup(|len| mask128(bits, len))
            }
        }
    }

    /// How many bans the list holds.
    pub fn len(&self) -> usize {
        self.n_bans
    }

    /// Whether the list holds no ban.
    pub fn is_empty(&self) -> bool {
        self.n_bans == 0
    }
}

fn mask32(bits: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        bits & (u32::MAX << (32 - u32::from(len)))
    }
}

fn mask128(bits: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        bits & (u128::MAX << (128 - u32::from(len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ban(text: &str, reason: &str) -> Ban {
        Ban {
            net: parse_net(text).unwrap(),
            reason: reason.to_owned(),
        }
    }

    #[test]
    fn addresses_and_networks_of_both_families_match() {
        let list = BanList::new(&[
            ban("192.0.2.7", "one address"),
            ban("198.51.100.0/24", "a network"),
            ban("2001:db8::/32", "a v6 network"),
            ban("2001:db9::1", "a v6 address"),
        ]);
        let check = |addr: &str| list.check(addr.parse().unwrap());
        assert_eq!(check("192.0.2.7"), Some("one address"));
        assert_eq!(check("192.0.2.8"), None);
        assert_eq!(check("198.51.100.255"), Some("a network"));
        assert_eq!(check("198.51.101.0"), None);
        assert_eq!(check("2001:db8:1::5"), Some("a v6 network"));
        assert_eq!(check("2001:db9::1"), Some("a v6 address"));
        assert_eq!(check("2001:db9::2"), None);
        assert_eq!(check("::ffff:192.0.2.7"), Some("one address"));
        assert_eq!(list.len(), 4);
    }

    #[test]
    fn the_most_specific_ban_gives_the_reason_and_zero_length_prefixes_match_everything() {
        let list = BanList::new(&[ban("10.0.0.0/8", "wide"), ban("10.1.2.3", "narrow")]);
        assert_eq!(list.check("10.1.2.3".parse().unwrap()), Some("narrow"));
        assert_eq!(list.check("10.9.9.9".parse().unwrap()), Some("wide"));
        let all = BanList::new(&[ban("0.0.0.0/0", "all v4"), ban("::/0", "all v6")]);
        assert_eq!(all.check("203.0.113.1".parse().unwrap()), Some("all v4"));
        assert_eq!(all.check("::1".parse().unwrap()), Some("all v6"));
        assert!(
            BanList::default()
                .check("127.0.0.1".parse().unwrap())
                .is_none()
        );
    }

    #[test]
    fn malformed_bans_and_host_bits_are_refused_with_the_rule() {
        assert!(matches!(parse_net("nonsense"), Err(BanError::Malformed(_))));
        assert!(matches!(
            parse_net("10.0.0.0/33"),
            Err(BanError::Malformed(_))
        ));
        let err = parse_net("192.0.2.7/24").unwrap_err();
        assert_eq!(
            err.to_string(),
            "'192.0.2.7/24' has bits set after the prefix: the network is 192.0.2.0/24"
        );
        assert_eq!(parse_net(" ::1 ").unwrap().to_string(), "::1/128");
    }
}
