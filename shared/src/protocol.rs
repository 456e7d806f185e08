//! The wire protocol between the server and its clients (the game client and bots).
//!
//! Messages are [postcard](https://docs.rs/postcard)-encoded enums, one per direction. Every
//! decode is bounded ([`MAX_MESSAGE_BYTES`]) and fails with an error, never a panic: network
//! input is untrusted. The version is checked twice: netcode's protocol id differs per
//! version (an old client cannot even open a connection), and a client's first message,
//! [`ClientMessage::Hello`], carries [`PROTOCOL_VERSION`], so a mismatch gets an explanation
//! ([`ServerMessage::Outdated`]) rather than silence.
//!
//! Channels: commands and events that must arrive, in order, go on [`Channel::Reliable`];
//! positions, which the next update supersedes, on [`Channel::Unreliable`].

use crate::{GameTime, TilePos};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Bumped on every incompatible change to the messages below.
pub const PROTOCOL_VERSION: u16 = 1;
/// netcode's protocol id: "AGORA" and the protocol version.
pub const NETCODE_PROTOCOL_ID: u64 = 0x4147_4f52_4100_0000 | PROTOCOL_VERSION as u64;
/// No message in either direction is longer; longer input is dropped undecoded.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;
/// Longest chat line, in characters.
pub const MAX_SAY_CHARS: usize = 280;
/// Longest player, team or object name, in characters.
pub const MAX_NAME_CHARS: usize = 48;

/// renet channel ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Channel {
    /// Reliable and ordered: joins, commands, chat, spawns, activity changes.
    Reliable = 0,
    /// Unreliable: positions (each update supersedes the last).
    Unreliable = 1,
}

impl From<Channel> for u8 {
    fn from(c: Channel) -> u8 {
        c as u8
    }
}

/// A replicated entity's id on the wire (stable for the server's lifetime).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NetId(pub u32);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntityKind {
    Agent,
    Player,
}

/// Client to server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ClientMessage {
    /// First message after connecting.
    Hello {
        version: u16,
    },
    /// Walk to a tile; the server finds the path.
    MoveTo {
        tile: TilePos,
    },
    /// Say something to everyone (players and agents) in earshot.
    Say {
        text: String,
    },
    /// Use an object of the arena the player stands in.
    Interact {
        object: String,
    },
    JoinTeam {
        team: String,
    },
    LeaveTeam,
}

/// Server to client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ServerMessage {
    /// The join succeeded: who you are and where.
    Welcome {
        version: u16,
        you: NetId,
        /// The town's name (its map's world name).
        world: String,
        tick_ms: u32,
        time: GameTime,
    },
    /// The client speaks another protocol version; it should update.
    Outdated {
        server_version: u16,
        message: String,
    },
    /// An action was refused (invalid, or over the rate limit); nothing changed.
    Refused {
        reason: String,
    },
    /// An entity came into view.
    Spawned {
        id: NetId,
        kind: EntityKind,
        name: String,
        tile: TilePos,
        activity: String,
        emoji: String,
        team: Option<String>,
    },
    /// An entity left view (or the world).
    Despawned {
        id: NetId,
    },
    Activity {
        id: NetId,
        activity: String,
        emoji: String,
    },
    Said {
        id: NetId,
        text: String,
    },
    Team {
        id: NetId,
        team: Option<String>,
    },
    /// Entities in view that moved since the last update, and the clock.
    Positions {
        time: GameTime,
        moved: Vec<(NetId, TilePos)>,
    },
}

/// Why bytes from the network were not a message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message of {0} bytes is over the {MAX_MESSAGE_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("{0} bytes left over after the message")]
    TrailingBytes(usize),
}

/// A message's bytes.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    postcard::to_allocvec(message).expect("our messages always serialise")
}

/// A message from untrusted bytes: bounded in size, exact (no trailing bytes), never panics.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(DecodeError::TooLarge(bytes.len()));
    }
    let (message, rest) =
        postcard::take_from_bytes(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes(rest.len()));
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn samples() -> Vec<ClientMessage> {
        vec![
            ClientMessage::Hello {
                version: PROTOCOL_VERSION,
            },
            ClientMessage::MoveTo {
                tile: TilePos::new(12, 40),
            },
            ClientMessage::Say {
                text: "Is the harvest party tonight? 🎉".into(),
            },
            ClientMessage::Interact {
                object: "espresso machine".into(),
            },
            ClientMessage::JoinTeam {
                team: "blue".into(),
            },
            ClientMessage::LeaveTeam,
        ]
    }

    #[test]
    fn messages_round_trip() {
        for message in samples() {
            assert_eq!(decode::<ClientMessage>(&encode(&message)), Ok(message));
        }
        let positions = ServerMessage::Positions {
            time: GameTime(3_600_000),
            moved: vec![(NetId(7), TilePos::new(1, 2))],
        };
        assert_eq!(decode::<ServerMessage>(&encode(&positions)), Ok(positions));
    }

    #[test]
    fn oversized_truncated_and_padded_input_is_refused() {
        let big = vec![0u8; MAX_MESSAGE_BYTES + 1];
        assert_eq!(
            decode::<ClientMessage>(&big),
            Err(DecodeError::TooLarge(MAX_MESSAGE_BYTES + 1))
        );
        let say = encode(&ClientMessage::Say {
            text: "hello".into(),
        });
        assert!(matches!(
            decode::<ClientMessage>(&say[..say.len() - 1]),
            Err(DecodeError::Malformed(_))
        ));
        let mut padded = say.clone();
        padded.push(0);
        assert_eq!(
            decode::<ClientMessage>(&padded),
            Err(DecodeError::TrailingBytes(1))
        );
        // A variant index past the end of the enum.
        assert!(decode::<ClientMessage>(&[200]).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Any bytes at all: an error or a message, never a panic, in both directions.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode::<ClientMessage>(&bytes);
            let _ = decode::<ServerMessage>(&bytes);
        }

        /// Valid messages with bytes flipped, cut or inserted: likewise.
        #[test]
        fn mutated_messages_never_panic(
            which in 0usize..6,
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            op in 0u8..3,
        ) {
            let mut bytes = encode(&samples()[which]);
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => bytes.truncate(i),
                _ => bytes.insert(i, byte),
            }
            let _ = decode::<ClientMessage>(&bytes);
            let _ = decode::<ServerMessage>(&bytes);
        }

        /// Chat text of any characters round-trips exactly.
        #[test]
        fn any_text_round_trips(text in ".{0,300}") {
            let message = ClientMessage::Say { text };
            prop_assert_eq!(decode::<ClientMessage>(&encode(&message)), Ok(message));
        }
    }
}
