//! Players' messages, decoded and checked against the world before anything changes. A
//! player acts only through its own avatar (the connection's client id picks it), within a
//! message rate; malformed or unexpected messages are dropped and counted, and a client that
//! keeps breaking the rules is disconnected.

use super::replication::{Net, Team, View};
use super::server::{Avatars, Dropped, Joined, Player};
use crate::agents::Agent;
use crate::agents::brain::Activity;
use crate::event_log::EventLog;
use crate::world::{ActorId, Destination, GameClock, Occupancy, Place, Position, TownMap};
use agora_shared::events::Event;
use agora_shared::protocol::{
    Channel, ClientMessage, MAX_NAME_CHARS, MAX_SAY_CHARS, PROTOCOL_VERSION, ServerMessage, decode,
    encode,
};
use bevy::prelude::*;
use bevy_renet::RenetServer;
use bevy_renet::renet::ClientId;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;

/// Tiles (Chebyshev) within which speech is heard.
pub const EARSHOT: u16 = 4;
/// Shown beside a player who is using an object.
pub const INTERACT_EMOJI: &str = "\u{270b}";
/// Messages a client may send per second before they are refused.
pub const MESSAGES_PER_SECOND: u32 = 20;
/// Refusals (rate or rule) after which a client is disconnected.
pub const STRIKES_TO_DISCONNECT: u32 = 50;
/// Messages read from one client in one tick; the rest wait for the next tick.
pub const MESSAGES_PER_TICK: usize = 2 * MESSAGES_PER_SECOND as usize;
/// A client sending more than this is disconnected: no honest client comes close, and renet
/// buffers out-of-order reliable messages without a bound of its own.
pub const MAX_CLIENT_BYTES_PER_SECOND: f64 = 128_000.0;

/// A client's message rate (GCRA: a steady 20 a second, bursts of up to 20) and its
/// misbehaviour count.
#[derive(Component, Debug)]
pub struct Budget {
    rate: DefaultDirectRateLimiter,
    pub strikes: u32,
}

impl Default for Budget {
    fn default() -> Self {
        let per_second = NonZeroU32::new(MESSAGES_PER_SECOND).expect("a positive rate");
        Self {
            rate: RateLimiter::direct(Quota::per_second(per_second)),
            strikes: 0,
        }
    }
}

impl Budget {
    fn allow(&mut self) -> bool {
        self.rate.check().is_ok()
    }
}

pub fn plugin(app: &mut App) {
    app.add_systems(
        Update,
        handle_messages
            .in_set(crate::TickSystems::Input)
            .run_if(resource_exists::<RenetServer>),
    );
}

fn handle_messages(
    mut commands: Commands,
    mut server: ResMut<RenetServer>,
    mut dropped: ResMut<Dropped>,
    mut log: ResMut<EventLog>,
    avatars: Res<Avatars>,
    map: Res<TownMap>,
    clock: Res<GameClock>,
    occupancy: Res<Occupancy>,
    mut players: Query<(
        &ActorId,
        &Position,
        &Net,
        Option<&Activity>,
        Option<&Team>,
        Has<Joined>,
        &mut Budget,
    )>,
    listeners: Query<&ActorId, With<Agent>>,
    joined: Query<(&Player, &View), With<Joined>>,
) {
    for client_id in server.clients_id() {
        let Some(&entity) = avatars.0.get(&client_id) else {
            continue;
        };
        let Ok((actor, position, net, activity, team, mut is_joined, mut budget)) =
            players.get_mut(entity)
        else {
            continue;
        };
        // What this tick's earlier messages made of the player (their inserts apply later):
        // the object in use, and the team. Repeating either changes nothing and sends nothing.
        let mut using: Option<String> = activity
            .filter(|a| !a.description.is_empty())
            .map(|a| a.location.clone());
        let mut in_team: Option<String> = team.and_then(|t| t.0.clone());
        if server.bytes_received_per_sec(client_id) > MAX_CLIENT_BYTES_PER_SECOND {
            warn!("{}: sending too much; disconnecting", actor.0);
            server.disconnect(client_id);
            continue;
        }
        let mut replies: Vec<ServerMessage> = Vec::new();
        let mut strikes = 0;
        // Clients have nothing to send unreliably: whatever comes is dropped and counted.
        while server
            .receive_message(client_id, Channel::Unreliable)
            .is_some()
        {
            dropped.messages += 1;
            strikes += 1;
        }
        let mut read = 0;
        while read < MESSAGES_PER_TICK && budget.strikes + strikes < STRIKES_TO_DISCONNECT {
            let Some(bytes) = server.receive_message(client_id, Channel::Reliable) else {
                break;
            };
            read += 1;
            let message = match decode::<ClientMessage>(&bytes) {
                Ok(m) => m,
                Err(e) => {
                    debug!("{}: dropped a message: {e}", actor.0);
                    dropped.messages += 1;
                    strikes += 1;
                    continue;
                }
            };
            if !budget.allow() {
                strikes += 1;
                continue;
            }
            match (message, is_joined) {
                (ClientMessage::Hello { version }, false) => {
                    if version != PROTOCOL_VERSION {
                        replies.push(ServerMessage::Outdated {
                            server_version: PROTOCOL_VERSION,
                            message: format!(
                                "this server speaks protocol {PROTOCOL_VERSION}, your client {version}: \
                                 update your client"
                            ),
                        });
                        continue;
                    }
                    replies.push(ServerMessage::Welcome {
                        version: PROTOCOL_VERSION,
                        you: net.0,
                        world: map.world.clone(),
                        tick_ms: clock.ms_per_tick as u32,
                        time: clock.now,
                    });
                    // Replication sends what is in view, this player included.
                    commands.entity(entity).insert((Joined, View::default()));
                    is_joined = true;
                }
                (_, false) | (ClientMessage::Hello { .. }, true) => {
                    dropped.messages += 1;
                    strikes += 1;
                }
                (ClientMessage::MoveTo { tile }, true) => {
                    if map.is_walkable(tile) {
                        commands.entity(entity).insert(Destination {
                            tile,
                            location: map.address_at(tile),
                        });
                        // Walking away ends whatever the player was using.
                        if using.take().is_some() {
                            commands.entity(entity).insert(Activity {
                                description: String::new(),
                                emoji: String::new(),
                                location: String::new(),
                                until: clock.now,
                            });
                        }
                    } else {
                        strikes += 1;
                        replies.push(ServerMessage::Refused {
                            reason: format!("tile {tile} is not walkable"),
                        });
                    }
                }
                (ClientMessage::Say { text }, true) => match clean_text(&text, MAX_SAY_CHARS) {
                    Some(text) => {
                        say(
                            &mut server,
                            &mut log,
                            &clock,
                            &occupancy,
                            &listeners,
                            &joined,
                            (entity, actor, net, position),
                            text,
                        );
                    }
                    None => {
                        strikes += 1;
                        replies.push(ServerMessage::Refused {
                            reason: format!("say 1 to {MAX_SAY_CHARS} characters"),
                        });
                    }
                },
                (ClientMessage::JoinTeam { team }, true) => match clean_text(&team, MAX_NAME_CHARS)
                {
                    Some(team) => {
                        if in_team.as_ref() != Some(&team) {
                            commands.entity(entity).insert(Team(Some(team.clone())));
                            in_team = Some(team);
                        }
                    }
                    None => {
                        strikes += 1;
                        replies.push(ServerMessage::Refused {
                            reason: format!("team names are 1 to {MAX_NAME_CHARS} characters"),
                        });
                    }
                },
                (ClientMessage::LeaveTeam, true) => {
                    if in_team.take().is_some() {
                        commands.entity(entity).insert(Team(None));
                    }
                }
                (ClientMessage::Interact { object }, true) => {
                    let found = map
                        .arena_at(position.0)
                        .and_then(|arena| map.find_object(Place::Arena(arena), &object));
                    match found {
                        // Using an object is the player's activity until it walks away: others
                        // in view see it, and the event log records it with the object's address.
                        Some(found) => {
                            let address = map.object_address(found);
                            if using.as_ref() != Some(&address) {
                                commands.entity(entity).insert(Activity {
                                    description: format!("using the {object}"),
                                    emoji: INTERACT_EMOJI.into(),
                                    location: address.clone(),
                                    until: clock.now,
                                });
                                using = Some(address);
                            }
                        }
                        None => {
                            strikes += 1;
                            replies.push(ServerMessage::Refused {
                                reason: format!("there is no {object:?} here"),
                            });
                        }
                    }
                }
            }
        }
        budget.strikes += strikes;
        for reply in replies {
            server.send_message(client_id, Channel::Reliable, encode(&reply));
        }
        if budget.strikes >= STRIKES_TO_DISCONNECT {
            warn!("{}: too many refused messages; disconnecting", actor.0);
            server.disconnect(client_id);
        }
    }
}

/// Trimmed, control characters removed, 1..=max characters; else `None`.
fn clean_text(text: &str, max: usize) -> Option<String> {
    let cleaned: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let count = cleaned.chars().count();
    (1..=max).contains(&count).then_some(cleaned)
}

/// Speech: to every joined player in earshot who has the speaker in view (so no client hears
/// from an id it was never shown), and into the log as heard by each agent there.
fn say(
    server: &mut RenetServer,
    log: &mut EventLog,
    clock: &GameClock,
    occupancy: &Occupancy,
    listeners: &Query<&ActorId, With<Agent>>,
    joined: &Query<(&Player, &View), With<Joined>>,
    (speaker_entity, speaker, net, position): (Entity, &ActorId, &Net, &Position),
    text: String,
) {
    log.record(
        clock,
        Event::Said {
            speaker: speaker.0.clone(),
            text: text.clone(),
            tile: position.0,
        },
    );
    let mut heard_by: Vec<ClientId> = Vec::new();
    for entity in occupancy.within(position.0, EARSHOT) {
        if let Ok(agent) = listeners.get(entity) {
            log.record(
                clock,
                Event::Heard {
                    agent: agent.0.clone(),
                    speaker: speaker.0.clone(),
                    text: text.clone(),
                },
            );
        }
        if let Ok((player, view)) = joined.get(entity)
            && view.sees(speaker_entity)
        {
            heard_by.push(player.client_id);
        }
    }
    let message = encode(&ServerMessage::Said { id: net.0, text });
    for client_id in heard_by {
        server.send_message(client_id, Channel::Reliable, message.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn budget_allows_a_burst_then_the_steady_rate() {
        let mut budget = Budget::default();
        let burst = (0..100).take_while(|_| budget.allow()).count();
        assert_eq!(burst, MESSAGES_PER_SECOND as usize);
        assert!(!budget.allow());
        // Messages flow again as time passes (at most a second's worth).
        std::thread::sleep(Duration::from_secs_f64(2.0 / MESSAGES_PER_SECOND as f64));
        let refilled = (0..100).take_while(|_| budget.allow()).count();
        assert!(
            (1..=MESSAGES_PER_SECOND as usize).contains(&refilled),
            "{refilled}"
        );
    }

    #[test]
    fn text_is_trimmed_cleaned_and_bounded() {
        assert_eq!(clean_text("  hi\tthere\n ", 10), Some("hi there".into()));
        assert_eq!(clean_text("   ", 10), None);
        assert_eq!(clean_text(&"x".repeat(11), 10), None);
        assert_eq!(clean_text(&"é".repeat(10), 10), Some("é".repeat(10)));
    }
}
