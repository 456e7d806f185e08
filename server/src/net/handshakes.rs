//! The handshake gate: connection requests are metered per source before netcode sees them.
//!
//! netcode (renetcode 2) keeps a client that asked to connect, but never answered its
//! challenge, until that client's connect token expires, in one table of 4,096 shared by
//! everyone; once the table is full every newcomer is ignored without a word. One source with
//! a few thousand valid tokens (minted by the endpoint, which hands a token to whoever asks)
//! locked every player out for the tokens' lifetime. The gate mirrors that table (an entry per
//! address netcode answered, kept until its token's expiry, the same rule netcode uses) and
//! lets each source hold only a small share of it, so a flood from one source fills its own
//! share and nothing else.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

/// Handshakes one source may have under way at once. An honest client needs one; a household
/// behind one NAT a few; a burst of bots on one machine gets in a few per round trip (netcode
/// clients repeat their request every 250 ms).
pub const PENDING_PER_SOURCE: usize = 16;
/// Handshakes under way in all: below netcode's own table of 4,096, so that netcode itself is
/// never the one that refuses (it does so silently).
pub const PENDING_TOTAL: usize = 3_072;
/// Players one source may have connected at once, by default (`serve --players-per-address`):
/// 128 bots from one machine filled every slot, and no honest player could join.
pub const PLAYERS_PER_SOURCE: usize = 8;
/// Seconds an entry is kept past its token's expiry: netcode's clock starts at the server's
/// start and advances by tick deltas, so it may trail the wall clock a little.
const EXPIRY_MARGIN_SECS: u64 = 2;

/// netcode's connection request: prefix byte 0, version (13), protocol id (8), token expiry
/// (8), nonce (24), the token's private part (1,024). It is the only packet that is not
/// encrypted, and the only one that can take a new pending slot.
const REQUEST_BYTES: usize = 1 + 13 + 8 + 8 + 24 + 1024;
const EXPIRY_OFFSET: usize = 1 + 13 + 8;

/// Where a handshake (or a token request, see `token_endpoint`) comes from, for fairness: an IPv4 address, or an IPv6 /64 (one host is
/// usually given a whole /64, so counting its addresses one by one would be no limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Source(IpAddr);

impl Source {
    pub fn of(addr: SocketAddr) -> Self {
        match addr.ip() {
            IpAddr::V4(v4) => Source(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source(IpAddr::V4(v4)),
                None => {
                    let bits = u128::from(v6) & !((1u128 << 64) - 1);
                    Source(IpAddr::V6(bits.into()))
                }
            },
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// The token expiry (Unix seconds) a datagram carries if it is a connection request. The
/// value is covered by the token's authentication, so netcode answers only if it is genuine.
pub fn connection_request_expiry(packet: &[u8]) -> Option<u64> {
    if packet.len() != REQUEST_BYTES || packet[0] != 0 {
        return None;
    }
    let bytes = packet[EXPIRY_OFFSET..EXPIRY_OFFSET + 8].try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// Why a connection request did not reach netcode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// The source already has [`PENDING_PER_SOURCE`] handshakes under way.
    SourceBusy,
    /// [`PENDING_TOTAL`] handshakes are under way.
    Full,
    /// The source has as many players connected as it may.
    SourcePlaying,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    source: Source,
    expires: u64,
}

/// The mirror of netcode's pending table, each source's share of it, and the players each
/// source has connected.
#[derive(Debug)]
pub struct HandshakeGate {
    pending: HashMap<SocketAddr, Pending>,
    per_source: HashMap<Source, usize>,
    connected: HashMap<SocketAddr, Source>,
    playing: HashMap<Source, usize>,
    players_per_source: usize,
}

impl Default for HandshakeGate {
    fn default() -> Self {
        Self::new(PLAYERS_PER_SOURCE)
    }
}

impl HandshakeGate {
    /// A gate that lets each source have `players_per_source` players connected (at least 1).
    pub fn new(players_per_source: usize) -> Self {
        Self {
            pending: HashMap::new(),
            per_source: HashMap::new(),
            connected: HashMap::new(),
            playing: HashMap::new(),
            players_per_source: players_per_source.max(1),
        }
    }

    /// Whether a connection request from `from` may reach netcode. A request from an address
    /// that already holds a slot, or is connected, always may: that is a client repeating
    /// itself (netcode answers it without a new slot).
    pub fn admit(&self, from: SocketAddr) -> Result<(), Refusal> {
        if self.pending.contains_key(&from) || self.connected.contains_key(&from) {
            return Ok(());
        }
        let source = Source::of(from);
        if self.playing.get(&source).copied().unwrap_or(0) >= self.players_per_source {
            return Err(Refusal::SourcePlaying);
        }
        if self.pending.len() >= PENDING_TOTAL {
            return Err(Refusal::Full);
        }
        let held = self.per_source.get(&source).copied().unwrap_or(0);
        if held >= PENDING_PER_SOURCE {
            return Err(Refusal::SourceBusy);
        }
        Ok(())
    }

    /// netcode sent `from` a challenge: it holds a slot for it until `expires` (Unix seconds).
    pub fn challenged(&mut self, from: SocketAddr, expires: u64) {
        let source = Source::of(from);
        let entry = self.pending.entry(from).or_insert_with(|| {
            *self.per_source.entry(source).or_default() += 1;
            Pending { source, expires }
        });
        entry.expires = entry.expires.max(expires);
    }

    /// The client at `addr` finished its handshake: netcode moved it out of its pending table.
    pub fn connected(&mut self, addr: SocketAddr) {
        if let Some(pending) = self.pending.remove(&addr) {
            release(&mut self.per_source, pending.source);
        }
        let source = Source::of(addr);
        if self.connected.insert(addr, source).is_none() {
            *self.playing.entry(source).or_default() += 1;
        }
    }

    /// The client at `addr` is gone.
    pub fn disconnected(&mut self, addr: SocketAddr) {
        if let Some(source) = self.connected.remove(&addr) {
            release(&mut self.playing, source);
        }
    }

    /// Forgets handshakes whose tokens have expired (netcode drops them at the same time).
    pub fn expire(&mut self, now_secs: u64) {
        let mut gone = Vec::new();
        self.pending.retain(|_, p| {
            let keep = p.expires + EXPIRY_MARGIN_SECS >= now_secs;
            if !keep {
                gone.push(p.source);
            }
            keep
        });
        for source in gone {
            release(&mut self.per_source, source);
        }
    }

    /// Handshakes under way.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

/// One fewer for `source`; a source at zero is forgotten (so the map holds only sources with
/// something under way).
pub(super) fn release(counts: &mut HashMap<Source, usize>, source: Source) {
    if let Some(held) = counts.get_mut(&source) {
        *held -= 1;
        if *held == 0 {
            counts.remove(&source);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn one_source_fills_only_its_own_share() {
        let mut gate = HandshakeGate::default();
        for port in 0..PENDING_PER_SOURCE as u16 {
            let from = addr(&format!("10.0.0.2:{}", 4000 + port));
            assert_eq!(gate.admit(from), Ok(()));
            gate.challenged(from, 100);
        }
        assert_eq!(gate.admit(addr("10.0.0.2:9999")), Err(Refusal::SourceBusy));
        // The same address repeating its request is not a new handshake.
        assert_eq!(gate.admit(addr("10.0.0.2:4000")), Ok(()));
        // Someone else is let in.
        assert_eq!(gate.admit(addr("10.0.0.3:4000")), Ok(()));
        // A finished handshake frees its slot; expired ones free theirs.
        gate.connected(addr("10.0.0.2:4000"));
        assert_eq!(gate.admit(addr("10.0.0.2:9999")), Ok(()));
        gate.challenged(addr("10.0.0.2:9999"), 200);
        gate.expire(100 + EXPIRY_MARGIN_SECS);
        assert_eq!(gate.pending(), PENDING_PER_SOURCE);
        gate.expire(101 + EXPIRY_MARGIN_SECS);
        assert_eq!(gate.pending(), 1);
        assert!(
            gate.per_source.len() == 1 && gate.per_source[&Source::of(addr("10.0.0.2:1"))] == 1
        );
    }

    #[test]
    fn a_source_has_only_so_many_players() {
        let mut gate = HandshakeGate::new(2);
        gate.connected(addr("10.0.0.2:1"));
        gate.connected(addr("10.0.0.2:2"));
        assert_eq!(gate.admit(addr("10.0.0.2:3")), Err(Refusal::SourcePlaying));
        assert_eq!(
            gate.admit(addr("10.0.0.2:1")),
            Ok(()),
            "a connected client repeating"
        );
        assert_eq!(gate.admit(addr("10.0.0.9:3")), Ok(()));
        gate.disconnected(addr("10.0.0.2:1"));
        assert_eq!(gate.admit(addr("10.0.0.2:3")), Ok(()));
    }

    #[test]
    fn the_whole_table_has_a_ceiling_below_netcodes() {
        let mut gate = HandshakeGate::default();
        for i in 0..PENDING_TOTAL as u32 {
            let from = SocketAddr::new(IpAddr::V4((0x0a00_0000 + i).into()), 5000);
            gate.challenged(from, 100);
        }
        assert_eq!(gate.admit(addr("192.168.0.1:5000")), Err(Refusal::Full));
        const { assert!(PENDING_TOTAL < 4_096) };
    }

    #[test]
    fn an_ipv6_host_counts_as_one_source_across_its_64() {
        let a = Source::of(addr("[2001:db8:1:2:aaaa::1]:5000"));
        let b = Source::of(addr("[2001:db8:1:2:bbbb::9]:6000"));
        let c = Source::of(addr("[2001:db8:1:3::1]:5000"));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        assert_eq!(
            Source::of(addr("[::ffff:10.0.0.2]:1")),
            Source::of(addr("10.0.0.2:2"))
        );
    }

    #[test]
    fn only_a_connection_request_carries_an_expiry() {
        let mut packet = vec![0u8; REQUEST_BYTES];
        packet[EXPIRY_OFFSET..EXPIRY_OFFSET + 8].copy_from_slice(&1234u64.to_le_bytes());
        assert_eq!(connection_request_expiry(&packet), Some(1234));
        packet[0] = 1;
        assert_eq!(connection_request_expiry(&packet), None);
        assert_eq!(connection_request_expiry(&[0u8; 100]), None);
    }
}
