//! Players' messages, decoded and turned into the same [`ActorCommand`]s agents' brains issue:
//! `net/` holds no gameplay. A player acts only through its own avatar (the connection's client
//! id picks it), within a message rate; malformed or unexpected messages are dropped and
//! counted, commands the world's rules refuse come back as `Refused`, and a client that keeps
//! breaking the rules is disconnected, as is one that says nothing for too long
//! ([`IdleLimits`]): a connected client holds one of the server's few slots.

use super::inspect::InspectAsked;
use super::replication::{Net, ReplicationSystems, View};
use super::server::{Avatars, Dropped, Joined};
use crate::actors::{Action, ActorCommand, Player, Refused};
use crate::schedule::TickSystems;
use crate::time::GameClock;
use crate::world::{ActorId, TownMap};
use agora_shared::protocol::{
    Channel, ClientMessage, PROTOCOL_VERSION, ServerMessage, decode, encode,
};
use bevy::prelude::*;
use bevy_renet::RenetServer;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

/// Messages a client may send per second before they are refused.
pub const MESSAGES_PER_SECOND: u32 = 20;
/// Inspections a client may ask for per second (bursts of [`INSPECT_BURST`]): each answer is
/// up to 12 KiB, and a panel that refreshes every 2 s needs far fewer.
pub const INSPECTS_PER_SECOND: u32 = 2;
pub const INSPECT_BURST: u32 = 4;
/// Refusals (rate or rule) after which a client is disconnected.
pub const STRIKES_TO_DISCONNECT: u32 = 50;
/// Messages read from one client in one tick; the rest wait for the next tick.
pub const MESSAGES_PER_TICK: usize = 2 * MESSAGES_PER_SECOND as usize;
/// A client sending more than this is disconnected: no honest client comes close, and renet
/// buffers out-of-order reliable messages without a bound of its own.
pub const MAX_CLIENT_BYTES_PER_SECOND: f64 = 128_000.0;

/// A client's message rate (GCRA: a steady 20 a second, bursts of up to 20), its rate of
/// inspections within that, and its misbehaviour count.
#[derive(Component, Debug)]
pub struct Budget {
    rate: DefaultDirectRateLimiter,
    inspect_rate: DefaultDirectRateLimiter,
    pub strikes: u32,
}

impl Default for Budget {
    fn default() -> Self {
        let positive = |n| NonZeroU32::new(n).expect("a positive rate");
        Self {
            rate: RateLimiter::direct(Quota::per_second(positive(MESSAGES_PER_SECOND))),
            inspect_rate: RateLimiter::direct(
                Quota::per_second(positive(INSPECTS_PER_SECOND))
                    .allow_burst(positive(INSPECT_BURST)),
            ),
            strikes: 0,
        }
    }
}

impl Budget {
    fn allow(&mut self) -> bool {
        self.rate.check().is_ok()
    }

    fn allow_inspect(&mut self) -> bool {
        self.inspect_rate.check().is_ok()
    }
}

/// When a client's last message arrived (wall-clock time: idle limits are about real time).
#[derive(Component, Debug)]
pub struct LastMessage(pub Instant);

impl Default for LastMessage {
    fn default() -> Self {
        Self(Instant::now())
    }
}

/// How long a connected client may say nothing before it is disconnected: `hello` before its
/// first `Hello` (a client that connects and waits holds a slot for nothing), `idle` once it
/// has joined (`None`: never).
#[derive(Resource, Clone, Copy, Debug)]
pub struct IdleLimits {
    pub hello: Duration,
    pub idle: Option<Duration>,
}

/// Seconds a joined player may send nothing, by default (`serve --idle-kick`).
pub const IDLE_KICK_SECONDS: u64 = 600;

impl Default for IdleLimits {
    fn default() -> Self {
        Self {
            hello: Duration::from_secs(10),
            idle: Some(Duration::from_secs(IDLE_KICK_SECONDS)),
        }
    }
}

pub fn plugin(app: &mut App) {
    app.add_message::<ActorCommand>()
        .add_message::<Refused>()
        .add_message::<InspectAsked>()
        .init_resource::<IdleLimits>()
        .add_systems(
            Update,
            (
                (decode_messages, disconnect_idle)
                    .chain()
                    .in_set(TickSystems::Input),
                answer_refusals
                    .in_set(TickSystems::Record)
                    .before(ReplicationSystems::Views),
            )
                .run_if(resource_exists::<RenetServer>),
        );
}

/// Reads each client's messages (at most [`MESSAGES_PER_TICK`]) and turns them into commands
/// for its avatar.
fn decode_messages(
    mut commands: Commands,
    mut server: ResMut<RenetServer>,
    mut dropped: ResMut<Dropped>,
    mut orders: MessageWriter<ActorCommand>,
    mut inspections: MessageWriter<InspectAsked>,
    avatars: Res<Avatars>,
    map: Res<TownMap>,
    clock: Res<GameClock>,
    mut players: Query<(&ActorId, &Net, Has<Joined>, &mut Budget, &mut LastMessage)>,
) {
    for client_id in server.clients_id() {
        let Some(&entity) = avatars.0.get(&client_id) else {
            continue;
        };
        let Ok((actor, net, mut is_joined, mut budget, mut last)) = players.get_mut(entity) else {
            continue;
        };
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
        // Every command may yet be refused (in Act) and count as a strike: a client near the
        // limit gets no more commands in than strikes it has left.
        let (mut read, mut commands_sent) = (0, 0);
        while read < MESSAGES_PER_TICK
            && budget.strikes + strikes + commands_sent < STRIKES_TO_DISCONNECT
        {
            let Some(bytes) = server.receive_message(client_id, Channel::Reliable) else {
                break;
            };
            read += 1;
            let message = match decode::<ClientMessage>(&bytes) {
                Ok(m) => {
                    last.0 = Instant::now();
                    m
                }
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
            let action = match (message, is_joined) {
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
                    continue;
                }
                (_, false) | (ClientMessage::Hello { .. }, true) => {
                    dropped.messages += 1;
                    strikes += 1;
                    continue;
                }
                (ClientMessage::MoveTo { tile }, true) => Action::MoveTo { tile, place: None },
                (ClientMessage::Say { text }, true) => Action::Say(text),
                (ClientMessage::Interact { object }, true) => Action::Use(object),
                (ClientMessage::JoinTeam { team }, true) => Action::JoinTeam(team),
                (ClientMessage::LeaveTeam, true) => Action::LeaveTeam,
                // Not an action in the world: answered once views are up to date.
                (ClientMessage::Inspect { id }, true) => {
                    if budget.allow_inspect() {
                        inspections.write(InspectAsked { player: entity, id });
                    } else {
                        replies.push(ServerMessage::Refused {
                            reason: format!(
                                "inspecting too fast: at most {INSPECTS_PER_SECOND} a second"
                            ),
                        });
                        strikes += 1;
                    }
                    continue;
                }
            };
            orders.write(ActorCommand {
                actor: entity,
                action,
            });
            commands_sent += 1;
        }
        for reply in replies {
            server.send_message(client_id, Channel::Reliable, encode(&reply));
        }
        strike(&mut server, &mut budget, client_id, &actor.0, strikes);
    }
}

/// Disconnects clients that said nothing for longer than [`IdleLimits`] allows.
fn disconnect_idle(
    mut server: ResMut<RenetServer>,
    limits: Res<IdleLimits>,
    players: Query<(&Player, &ActorId, Has<Joined>, &LastMessage)>,
) {
    for (player, actor, joined, last) in &players {
        let quiet = last.0.elapsed();
        let over = match (joined, limits.idle) {
            (false, _) => quiet > limits.hello,
            (true, Some(idle)) => quiet > idle,
            (true, None) => false,
        };
        if over && server.is_connected(player.client_id) {
            let what = if joined {
                "sent nothing"
            } else {
                "never said hello"
            };
            warn!(
                "{}: {what} for {} s; disconnecting",
                actor.0,
                quiet.as_secs()
            );
            server.disconnect(player.client_id);
        }
    }
}

/// Adds `strikes` to a client's record, and disconnects it once the record reaches the limit.
fn strike(server: &mut RenetServer, budget: &mut Budget, client_id: u64, who: &str, strikes: u32) {
    let before = budget.strikes;
    budget.strikes += strikes;
    if before < STRIKES_TO_DISCONNECT && budget.strikes >= STRIKES_TO_DISCONNECT {
        warn!("{who}: too many refused messages; disconnecting");
        server.disconnect(client_id);
    }
}

/// A player whose command the rules refused is told why, and it counts as a strike.
fn answer_refusals(
    mut server: ResMut<RenetServer>,
    mut refused: MessageReader<Refused>,
    mut players: Query<(&Player, &ActorId, &mut Budget)>,
) {
    for Refused { actor, reason } in refused.read() {
        let Ok((player, id, mut budget)) = players.get_mut(*actor) else {
            continue; // An agent's, or a player gone since.
        };
        let reply = ServerMessage::Refused {
            reason: reason.clone(),
        };
        server.send_message(player.client_id, Channel::Reliable, encode(&reply));
        strike(&mut server, &mut budget, player.client_id, &id.0, 1);
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
    fn inspections_have_a_smaller_budget_of_their_own() {
        let mut budget = Budget::default();
        let burst = (0..100).take_while(|_| budget.allow_inspect()).count();
        assert_eq!(burst, INSPECT_BURST as usize);
        // Other messages are not held up by it.
        assert!(budget.allow());
    }
}
