//! Connect tokens: a player's ticket into the server, signed with the server's key.
//!
//! A player's identity is the netcode client id inside the token, derived from the player's
//! name, so the same name always gets the same id and reconnecting resumes the same avatar. The
//! name itself rides in the token's user data. netcode refuses expired and forged tokens, and a
//! token already used from another address.

use crate::keys::ServerKey;
use agora_shared::protocol::NETCODE_PROTOCOL_ID;
use renet_netcode::{ConnectToken, NETCODE_USER_DATA_BYTES};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::time::Duration;

/// Longest player name, in bytes (it must fit the token's user data with room to spare).
pub const MAX_PLAYER_NAME_BYTES: usize = 32;
/// Seconds without packets after which a connection is dropped (and its player may
/// reconnect: netcode refuses a second connection for a client id still connected).
pub const TIMEOUT_SECONDS: i32 = 5;
/// Longest a token may be good for: 30 days. Longer would be a key in all but name (a token
/// cannot be revoked), and netcode adds the lifetime to the clock unchecked.
pub const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error(
        "player name {0:?}: use 1 to {MAX_PLAYER_NAME_BYTES} letters, digits, spaces, '-', '_' or '.', \
         with at least one letter or digit"
    )]
    BadName(String),
    #[error("a token needs at least one server address (and at most 32)")]
    Addresses,
    #[error("a token's lifetime must be 1 s to {max} s (30 days), not {0} s", max = MAX_TTL.as_secs())]
    Ttl(u64),
    #[error("cannot make the token: {0}")]
    Generation(String),
}

/// A player name in its normal form (NFKC, trimmed: a full-width "Ａｄａ" is "Ada"), checked:
/// letters, digits and a few separators, with at least one letter or digit ("..", "- -" are
/// not names).
pub fn player_name(name: &str) -> Result<String, TokenError> {
    let name = agora_shared::text::normal_name(name);
    let ok = name.len() <= MAX_PLAYER_NAME_BYTES
        && name.chars().any(char::is_alphanumeric)
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.'));
    if ok {
        Ok(name)
    } else {
        Err(TokenError::BadName(name))
    }
}

/// The client id of a player: the first 8 bytes of SHA-256 of the name, never 0.
pub fn client_id(player: &str) -> u64 {
    let digest = Sha256::digest(format!("agora player\0{player}").as_bytes());
    let id = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
    id.max(1)
}

/// A connect token for `player` to the servers at `addresses`, valid for `ttl` from `now`
/// (Unix time).
pub fn mint(
    key: &ServerKey,
    player: &str,
    addresses: Vec<SocketAddr>,
    ttl: Duration,
    now: Duration,
) -> Result<ConnectToken, TokenError> {
    let player = player_name(player)?;
    if addresses.is_empty() || addresses.len() > 32 {
        return Err(TokenError::Addresses);
    }
    if ttl < Duration::from_secs(1) || ttl > MAX_TTL {
        return Err(TokenError::Ttl(ttl.as_secs()));
    }
    let mut user_data = [0u8; NETCODE_USER_DATA_BYTES];
    user_data[..player.len()].copy_from_slice(player.as_bytes());
    ConnectToken::generate(
        now,
        NETCODE_PROTOCOL_ID,
        ttl.as_secs(),
        client_id(&player),
        TIMEOUT_SECONDS,
        addresses,
        Some(&user_data),
        key.bytes(),
    )
    .map_err(|e| TokenError::Generation(e.to_string()))
}

/// The player name carried in a connected client's user data (`None` if it is not one).
pub fn name_from_user_data(user_data: &[u8; NETCODE_USER_DATA_BYTES]) -> Option<String> {
    let end = user_data
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(user_data.len());
    let name = std::str::from_utf8(&user_data[..end]).ok()?;
    player_name(name).ok()
}

/// A token as bytes (netcode's format), for a file or an HTTP reply.
pub fn to_bytes(token: &ConnectToken) -> Vec<u8> {
    let mut bytes = Vec::new();
    token
        .write(&mut bytes)
        .expect("writing to a Vec cannot fail");
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Duration {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
    }

    #[test]
    fn names_are_checked_and_ids_are_stable() {
        assert_eq!(player_name("  Ada Lovelace "), Ok("Ada Lovelace".into()));
        for bad in [
            "",
            "   ",
            "x".repeat(33).as_str(),
            "ada\0",
            "<script>",
            "a\nb",
            "..",
            "- _ .",
            "a\u{200B}b",
        ] {
            assert!(player_name(bad).is_err(), "{bad:?}");
        }
        // Before: "Ada0" and full-width "Ａｄａ0" joined as two players.
        assert_eq!(player_name("Ａｄａ0"), Ok("Ada0".into()));
        assert_eq!(client_id("ada"), client_id("ada"));
        assert_ne!(client_id("ada"), client_id("Ada"));
        assert_ne!(client_id("ada"), 0);
    }

    #[test]
    fn a_token_round_trips_and_carries_the_name() {
        let key = ServerKey::generate();
        let addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let token = mint(&key, "ada", vec![addr], Duration::from_secs(3600), now()).unwrap();
        let bytes = to_bytes(&token);
        let read = ConnectToken::read(&mut bytes.as_slice()).unwrap();
        assert_eq!(read.client_id, client_id("ada"));
        assert_eq!(read.protocol_id, NETCODE_PROTOCOL_ID);
        assert_eq!(read.server_addresses[0], Some(addr));
        let mut user_data = [0u8; NETCODE_USER_DATA_BYTES];
        user_data[..3].copy_from_slice(b"ada");
        assert_eq!(name_from_user_data(&user_data), Some("ada".into()));
        assert_eq!(
            mint(&key, "ada", vec![], Duration::from_secs(1), now()).err(),
            Some(TokenError::Addresses)
        );
        // Before: u64::MAX overflowed into a token that expired before it was made, and 0
        // quietly became 1 s.
        for ttl in [0, MAX_TTL.as_secs() + 1, u64::MAX] {
            assert_eq!(
                mint(&key, "ada", vec![addr], Duration::from_secs(ttl), now()).err(),
                Some(TokenError::Ttl(ttl))
            );
        }
        assert!(mint(&key, "ada", vec![addr], MAX_TTL, now()).is_ok());
    }
}
