//! Who the client is when the API sits behind reverse proxies. Each proxy appends the address
//! it received the request from to `X-Forwarded-For`, so only the rightmost entries, written
//! by proxies we run, can be believed; anything further left may have been typed by the client.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// Which hops in front of the API are ours (`TASKLANE_TRUSTED_PROXIES`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TrustedProxies {
    /// None: the client is the socket's peer and `X-Forwarded-For` is ignored (the default).
    #[default]
    None,
    /// This many proxies, always in the path (`TASKLANE_TRUSTED_PROXIES=2`).
    Count(usize),
    /// Proxies with addresses in these networks (`TASKLANE_TRUSTED_PROXIES=10.0.0.0/8,fd00::/8`).
    Networks(Vec<IpNet>),
}

impl FromStr for TrustedProxies {
    type Err = String;

    /// `0` or empty for none, a count, or a comma-separated list of addresses and CIDR networks.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.is_empty() || text == "0" {
            return Ok(Self::None);
        }
        if let Ok(count) = text.parse::<usize>() {
            return Ok(Self::Count(count));
        }
        let networks = text
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .enumerate()
            .map(|(index, entry)| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("entry {} is neither an address nor a CIDR network", index + 1))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::Networks(networks))
    }
}

impl<'de> serde::Deserialize<'de> for TrustedProxies {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Count(usize),
            Text(String),
            List(Vec<String>),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Count(count) => Ok(if count == 0 { Self::None } else { Self::Count(count) }),
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
            Raw::List(entries) => entries.join(",").parse().map_err(serde::de::Error::custom),
        }
    }
}

impl TrustedProxies {
    /// The client's address, given the socket's peer and the request's `X-Forwarded-For`
    /// values: the first hop from the right that is not one of ours. When every hop is ours,
    /// the leftmost; when an entry is not an address, the last trusted hop before it.
    pub fn client(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        if *self == Self::None {
            return peer;
        }
        // Nearest first: the peer, then the header's entries from the right.
        let entries = forwarded_for.iter().rev().flat_map(|value| value.rsplit(',')).map(str::trim);
        let mut client = peer;
        for (hops_behind_us, entry) in entries.enumerate() {
            let trusted = match self {
                Self::None => false,
                Self::Count(count) => hops_behind_us < *count,
                Self::Networks(networks) => networks.iter().any(|network| network.contains(&client)),
            };
            if !trusted {
                return client;
            }
            match entry.parse::<IpAddr>() {
                Ok(address) => client = address,
                Err(_) => return client,
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        assert_eq!(TrustedProxies::None.client(ip("10.0.0.9"), &["1.2.3.4"]), ip("10.0.0.9"));
    }

    #[test]
    fn a_count_skips_that_many_hops_from_the_right() {
        // The client wrote "6.6.6.6" itself; the load balancer (peer) appended the real one.
        let one = TrustedProxies::Count(1);
        assert_eq!(one.client(ip("10.0.0.9"), &["6.6.6.6, 203.0.113.7"]), ip("203.0.113.7"));
        let two = TrustedProxies::Count(2);
        assert_eq!(two.client(ip("10.0.0.9"), &["6.6.6.6", "203.0.113.7, 10.0.0.5"]), ip("203.0.113.7"));
        // Fewer hops than proxies: the leftmost there is.
        assert_eq!(two.client(ip("10.0.0.9"), &["203.0.113.7"]), ip("203.0.113.7"));
        assert_eq!(one.client(ip("10.0.0.9"), &[]), ip("10.0.0.9"));
    }

    #[test]
    fn networks_skip_our_own_addresses_only() {
        let ours: TrustedProxies = "10.0.0.0/8, 192.168.1.1".parse().unwrap();
        let header = ["6.6.6.6, 203.0.113.7, 192.168.1.1, 10.1.2.3"];
        assert_eq!(ours.client(ip("10.0.0.9"), &header), ip("203.0.113.7"));
        // A peer that is not ours is the client, whatever it claims.
        assert_eq!(ours.client(ip("198.51.100.1"), &header), ip("198.51.100.1"));
        // Garbage in the header stops the walk at the last hop we trust.
        assert_eq!(ours.client(ip("10.0.0.9"), &["203.0.113.7, not-an-ip"]), ip("10.0.0.9"));
    }

    #[test]
    fn settings_parse_or_say_what_is_wrong() {
        assert_eq!("".parse::<TrustedProxies>().unwrap(), TrustedProxies::None);
        assert_eq!("0".parse::<TrustedProxies>().unwrap(), TrustedProxies::None);
        assert_eq!("2".parse::<TrustedProxies>().unwrap(), TrustedProxies::Count(2));
        assert!("10.0.0.0/8,nope".parse::<TrustedProxies>().unwrap_err().starts_with("entry 2 "));
    }
}
