//! The connection to the server: getting a token, connecting, saying hello, and turning what
//! the server sends into [`TownUpdate`]s; a lost or refused connection is shown and retried.
//!
//! It drives `agora_net`'s headless [`Client`] (the one bots and tests use) once a frame, so
//! the game speaks exactly the protocol the server is tested against.

mod token;

use crate::ClientSystems;
use crate::town::TownUpdate;
use agora_net::client::Client;
use agora_shared::protocol::{ClientMessage, NetId, PROTOCOL_VERSION, ServerMessage};
use bevy::prelude::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub use token::TokenSource;

/// Where to connect, and how to get in.
#[derive(Resource, Clone, Debug)]
pub struct ServerOptions {
    pub addr: SocketAddr,
    pub tokens: TokenSource,
}

/// Where the connection stands; the HUD says it in words.
#[derive(States, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Connection {
    /// The connect screen is up: where to connect is being typed in.
    Choosing,
    /// Reading or fetching a connect token.
    #[default]
    GettingToken,
    /// Token in hand, waiting for the server to let us in and welcome us.
    Connecting,
    /// Welcomed: the town is live.
    Playing,
    /// Refused, unreachable or lost: [`Link::problem`] says why; retried unless hopeless.
    Lost,
}

/// No answer within this long while connecting counts as an unreachable server.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// First wait before trying again; it doubles per failed attempt, up to [`MAX_RETRY_WAIT`].
const FIRST_RETRY_WAIT: Duration = Duration::from_secs(2);
const MAX_RETRY_WAIT: Duration = Duration::from_secs(30);

/// The live connection and what is known about it.
#[derive(Resource, Default)]
pub struct Link {
    client: Option<Client>,
    token: Option<token::Pending>,
    connecting_since: Option<Instant>,
    /// Why the last attempt failed, in words for the player.
    pub problem: Option<String>,
    /// When the next attempt starts; `None` when retrying cannot help (an outdated client).
    pub retry_at: Option<Instant>,
    /// Attempts that failed in a row.
    pub failures: u32,
    /// Our avatar, once welcomed.
    pub you: Option<NetId>,
    /// The town's name, from the welcome.
    pub world: String,
}

/// A command for the server; sent while playing, dropped (with a note) otherwise.
#[derive(Message, Clone, Debug)]
pub struct Outgoing(pub ClientMessage);

/// Connects with [`ServerOptions`] if they are inserted first, else starts on the connect
/// screen.
pub fn plugin(app: &mut App) {
    let first = if app.world().contains_resource::<ServerOptions>() {
        Connection::GettingToken
    } else {
        app.init_resource::<crate::connect::ConnectForm>();
        Connection::Choosing
    };
    app.insert_state(first)
        .add_plugins(crate::connect::plugin)
        .init_resource::<Link>()
        .add_message::<Outgoing>()
        .add_systems(
            Update,
            (
                get_token.run_if(in_state(Connection::GettingToken)),
                pump.run_if(
                    in_state(Connection::Connecting).or_else(in_state(Connection::Playing)),
                ),
                retry.run_if(in_state(Connection::Lost)),
            )
                .in_set(ClientSystems::Receive),
        )
        .add_systems(
            Update,
            send.in_set(ClientSystems::Send)
                .run_if(in_state(Connection::Playing)),
        )
        .add_systems(OnEnter(Connection::Lost), forget_the_town);
}

/// Starts getting a token, and connects once it is there.
fn get_token(
    options: Res<ServerOptions>,
    mut link: ResMut<Link>,
    mut next: ResMut<NextState<Connection>>,
) {
    let pending = link
        .token
        .get_or_insert_with(|| token::Pending::start(options.tokens.clone(), options.addr));
    let Some(result) = pending.poll() else {
        return;
    };
    link.token = None;
    match result.and_then(|t| Client::connect(t).map_err(|e| format!("cannot open a socket: {e}")))
    {
        Ok(client) => {
            link.client = Some(client);
            link.connecting_since = Some(Instant::now());
            next.set(Connection::Connecting);
        }
        Err(problem) => fail(&mut link, &mut next, problem, true),
    }
}

/// Reads and writes the socket; hands every message on as a [`TownUpdate`].
fn pump(
    time: Res<Time>,
    options: Res<ServerOptions>,
    state: Res<State<Connection>>,
    mut link: ResMut<Link>,
    mut next: ResMut<NextState<Connection>>,
    mut updates: MessageWriter<TownUpdate>,
) {
    let Some(client) = link.client.as_mut() else {
        return;
    };
    let was_connected = client.is_connected();
    client.pump(time.delta());
    if !was_connected && client.is_connected() {
        client.send(&ClientMessage::Hello {
            version: PROTOCOL_VERSION,
        });
    }
    let inbox = std::mem::take(&mut client.inbox);
    let trouble = client.trouble();
    let connected = client.is_connected();
    for message in inbox {
        match &message {
            ServerMessage::Welcome { you, world, .. } => {
                link.you = Some(*you);
                link.world = world.clone();
                link.failures = 0;
                link.problem = None;
                next.set(Connection::Playing);
            }
            ServerMessage::Outdated { message, .. } => {
                let problem = format!("the server refused this client: {message}");
                return fail(&mut link, &mut next, problem, false);
            }
            _ => {}
        }
        updates.write(TownUpdate::Server(message));
    }
    if let Some(problem) = trouble {
        let problem = problem + reuse_hint(&options.tokens, link.failures);
        return fail(&mut link, &mut next, problem, true);
    }
    match state.get() {
        Connection::Playing if !connected => {
            let problem = "the connection to the server was lost".to_string();
            fail(&mut link, &mut next, problem, true);
        }
        Connection::Connecting
            if link
                .connecting_since
                .is_some_and(|t| t.elapsed() > CONNECT_TIMEOUT) =>
        {
            let problem = format!(
                "no answer from the server at {} within {} s (is it running, and is its UDP port open?){}",
                options.addr,
                CONNECT_TIMEOUT.as_secs(),
                reuse_hint(&options.tokens, link.failures)
            );
            fail(&mut link, &mut next, problem, true);
        }
        _ => {}
    }
}

/// After a failed attempt with a token file: netcode lets a token in once, from one address,
/// so a second attempt with the same file is turned away.
fn reuse_hint(tokens: &TokenSource, failures: u32) -> &'static str {
    match tokens {
        TokenSource::File(_) if failures > 0 => {
            "; a token file lets one connection in: put a fresh one in the file \
             (agora-server token), or connect with --token-url"
        }
        _ => "",
    }
}

/// Ends the attempt: says why (on stderr too), and schedules the next one if it can help.
fn fail(link: &mut Link, next: &mut NextState<Connection>, problem: String, retry: bool) {
    if let Some(mut client) = link.client.take() {
        client.disconnect();
    }
    link.failures += 1;
    link.you = None;
    link.retry_at = retry.then(|| Instant::now() + retry_wait(link.failures));
    eprintln!(
        "agora-client: {problem}{}",
        if retry {
            format!(
                " (trying again in {} s)",
                retry_wait(link.failures).as_secs()
            )
        } else {
            String::new()
        }
    );
    link.problem = Some(problem);
    next.set(Connection::Lost);
}

/// How long to wait after `failures` failed attempts in a row.
pub fn retry_wait(failures: u32) -> Duration {
    (FIRST_RETRY_WAIT * 2u32.saturating_pow(failures.saturating_sub(1).min(8))).min(MAX_RETRY_WAIT)
}

fn retry(mut link: ResMut<Link>, mut next: ResMut<NextState<Connection>>) {
    if link.retry_at.is_some_and(|t| Instant::now() >= t) {
        link.retry_at = None;
        next.set(Connection::GettingToken);
    }
}

/// What was in view is stale once the connection is gone; a new one sends it all again.
fn forget_the_town(mut updates: MessageWriter<TownUpdate>) {
    updates.write(TownUpdate::Reset);
}

fn send(mut link: ResMut<Link>, mut outgoing: MessageReader<Outgoing>) {
    let Some(client) = link.client.as_mut() else {
        return;
    };
    for Outgoing(message) in outgoing.read() {
        client.send(message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_and_cap() {
        assert_eq!(retry_wait(1), Duration::from_secs(2));
        assert_eq!(retry_wait(2), Duration::from_secs(4));
        assert_eq!(retry_wait(4), Duration::from_secs(16));
        assert_eq!(retry_wait(5), MAX_RETRY_WAIT);
        assert_eq!(retry_wait(u32::MAX), MAX_RETRY_WAIT);
    }
}
