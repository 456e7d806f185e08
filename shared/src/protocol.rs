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

use crate::events::PlanItem;
use crate::{GameTime, TilePos};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Bumped on every incompatible change to the messages below (2: `Inspect`, `Inspected`,
/// `Online`).
pub const PROTOCOL_VERSION: u16 = 2;
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
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
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
    /// Ask what an agent in view is thinking: answered by [`ServerMessage::Inspected`] (a
    /// few a second at most, see docs/protocol.md).
    Inspect {
        id: NetId,
    },
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
    /// The answer to [`ClientMessage::Inspect`]. Boxed: it is far larger than the rest.
    Inspected(Box<Inspection>),
    /// How many players are in the world (sent on joining, and whenever it changes).
    Online {
        players: u32,
    },
}

/// Longest text of one line of an [`Inspection`] (an activity, a plan item, a memory), in
/// characters; names and traits are held to [`MAX_NAME_CHARS`].
pub const MAX_INSPECT_TEXT_CHARS: usize = 240;
/// Most traits an inspection lists (a persona has at most 8).
pub const MAX_INSPECT_TRAITS: usize = 8;
/// Most plan stretches (and, apart, steps) an inspection lists.
pub const MAX_INSPECT_PLAN: usize = 24;
/// Most memories an inspection lists.
pub const MAX_INSPECT_MEMORIES: usize = 10;
/// Most reflections an inspection lists.
pub const MAX_INSPECT_REFLECTIONS: usize = 5;
/// An encoded inspection is at most this long, well inside [`MAX_MESSAGE_BYTES`].
pub const MAX_INSPECTION_BYTES: usize = 12 * 1024;

/// What a player may see of an agent: who it is, what it does, and (once it thinks) its plan
/// and latest memories. What the server does not have is empty, never made up: a routine
/// agent has no plan, an agent without memory no memories.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Inspection {
    pub id: NetId,
    pub name: String,
    /// 0: not known.
    pub age: u8,
    pub traits: Vec<String>,
    /// What it does for a living ("baking at Willow Cafe"); empty if it has no work.
    pub occupation: String,
    pub activity: String,
    pub emoji: String,
    /// The address its activity is at ("Maple Hollow:Willow Cafe:cafe:oven").
    pub location: String,
    /// What it chose to do with its free time today, if it planned its day.
    pub intent: Option<String>,
    /// Its plan for the day: the stretches, in order.
    pub plan: Vec<PlanItem>,
    /// The steps the hour under way was broken into.
    pub steps: Vec<PlanItem>,
    /// Its latest memories (reflections apart), newest first.
    pub memories: Vec<MemoryNote>,
    /// Its latest reflections, newest first.
    pub reflections: Vec<MemoryNote>,
}

/// One memory, as the inspector lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryNote {
    /// Its id in the agent's stream (0, 1, 2, ... in the order written).
    pub id: u32,
    pub created: GameTime,
    /// `event`, `thought` or `chat`.
    pub kind: String,
    /// 1 (mundane) to 10 (poignant); 0: not rated yet.
    pub importance: u8,
    pub text: String,
}

/// `text`, cut to `max` characters.
fn cut(text: &mut String, max: usize) {
    if let Some((at, _)) = text.char_indices().nth(max) {
        text.truncate(at);
    }
}

impl Inspection {
    /// Adds a memory, going from the newest back, to the reflections or the other memories
    /// while that list has room ([`MAX_INSPECT_REFLECTIONS`], [`MAX_INSPECT_MEMORIES`]);
    /// `false` once both are full (older memories need not be looked at).
    pub fn add_older(&mut self, note: MemoryNote, reflection: bool) -> bool {
        let (list, max) = if reflection {
            (&mut self.reflections, MAX_INSPECT_REFLECTIONS)
        } else {
            (&mut self.memories, MAX_INSPECT_MEMORIES)
        };
        if list.len() < max {
            list.push(note);
        }
        self.memories.len() < MAX_INSPECT_MEMORIES
            || self.reflections.len() < MAX_INSPECT_REFLECTIONS
    }

    /// Holds every field to its limit, then shortens the longest list (from its end: the
    /// oldest memories, the latest plan stretches) until the encoding fits
    /// [`MAX_INSPECTION_BYTES`]: an answer always fits one message, whatever the agent's mind
    /// holds, and keeps some of each.
    pub fn bound(&mut self) {
        cut(&mut self.name, MAX_NAME_CHARS);
        self.traits.truncate(MAX_INSPECT_TRAITS);
        for t in &mut self.traits {
            cut(t, MAX_NAME_CHARS);
        }
        cut(&mut self.emoji, 8);
        for text in [&mut self.occupation, &mut self.activity, &mut self.location] {
            cut(text, MAX_INSPECT_TEXT_CHARS);
        }
        if let Some(intent) = &mut self.intent {
            cut(intent, MAX_INSPECT_TEXT_CHARS);
        }
        for (list, max) in [
            (&mut self.plan, MAX_INSPECT_PLAN),
            (&mut self.steps, MAX_INSPECT_PLAN),
        ] {
            list.truncate(max);
            for item in list {
                cut(&mut item.activity, MAX_INSPECT_TEXT_CHARS);
                cut(&mut item.location, MAX_INSPECT_TEXT_CHARS);
            }
        }
        for (list, max) in [
            (&mut self.memories, MAX_INSPECT_MEMORIES),
            (&mut self.reflections, MAX_INSPECT_REFLECTIONS),
        ] {
            list.truncate(max);
            for note in list {
                cut(&mut note.kind, 8);
                cut(&mut note.text, MAX_INSPECT_TEXT_CHARS);
            }
        }
        // The fixed fields take at most ~6 KiB (4-byte characters throughout); the lists give
        // way, the longest first, each from its end (the oldest memories, the latest
        // stretches), until the rest fits.
        while encode(self).len() > MAX_INSPECTION_BYTES {
            let longest = [
                self.plan.len(),
                self.steps.len(),
                self.memories.len(),
                self.reflections.len(),
            ]
            .into_iter()
            .enumerate()
            .max_by_key(|&(i, len)| (len, std::cmp::Reverse(i)));
            match longest {
                Some((_, 0)) | None => break,
                Some((0, _)) => drop(self.plan.pop()),
                Some((1, _)) => drop(self.steps.pop()),
                Some((2, _)) => drop(self.memories.pop()),
                Some(_) => drop(self.reflections.pop()),
            }
        }
    }
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
            ClientMessage::Inspect { id: NetId(3) },
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
        let inspected = ServerMessage::Inspected(Box::new(Inspection {
            id: NetId(4),
            name: "Iris Chen".into(),
            age: 31,
            traits: vec!["curious".into()],
            plan: vec![PlanItem {
                start: GameTime(0),
                end: GameTime(60_000),
                activity: "painting".into(),
                location: "town:studio".into(),
            }],
            memories: vec![MemoryNote {
                id: 2,
                created: GameTime(5),
                kind: "chat".into(),
                importance: 4,
                text: "Ada said hello".into(),
            }],
            ..Inspection::default()
        }));
        assert_eq!(decode::<ServerMessage>(&encode(&inspected)), Ok(inspected));
    }

    /// The largest mind there could be, in 4-byte characters: bounded, it fits one message
    /// and keeps its newest memories.
    #[test]
    fn an_inspection_always_fits_a_message() {
        let long = |n: usize| "\u{1F600}".repeat(n);
        let note = |id| MemoryNote {
            id,
            created: GameTime(u64::from(id)),
            kind: long(50),
            importance: 5,
            text: long(1000),
        };
        let item = || PlanItem {
            start: GameTime(0),
            end: GameTime(1),
            activity: long(1000),
            location: long(1000),
        };
        let mut inspection = Inspection {
            id: NetId(1),
            name: long(500),
            age: 40,
            traits: vec![long(500); 50],
            occupation: long(5000),
            activity: long(5000),
            emoji: long(100),
            location: long(5000),
            intent: Some(long(5000)),
            plan: vec![item(); 100],
            steps: vec![item(); 100],
            memories: (0..100).map(note).collect(),
            reflections: (0..100).map(note).collect(),
        };
        inspection.bound();
        assert!(encode(&inspection).len() <= MAX_INSPECTION_BYTES);
        let message = encode(&ServerMessage::Inspected(Box::new(inspection.clone())));
        assert!(decode::<ServerMessage>(&message).is_ok());
        assert_eq!(inspection.name.chars().count(), MAX_NAME_CHARS);
        assert_eq!(inspection.traits.len(), MAX_INSPECT_TRAITS);
        assert!(!inspection.memories.is_empty(), "the newest memory is kept");
        assert!(
            !inspection.plan.is_empty() && !inspection.reflections.is_empty(),
            "some of each list stays"
        );
        assert_eq!(
            inspection.memories[0].id, 0,
            "newest first: the list's head stays"
        );
        // A small mind is left as it was.
        let mut small = Inspection {
            name: "Iris".into(),
            memories: vec![MemoryNote::default(); 3],
            ..Inspection::default()
        };
        let before = small.clone();
        small.bound();
        assert_eq!(small, before);
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
            which in 0usize..7,
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
