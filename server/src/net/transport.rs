//! The game's UDP transport: the socket, netcode's server (renetcode, secure mode) and the
//! [handshake gate](super::handshakes) in front of it. It replaces renet_netcode's transport,
//! which hands every datagram to netcode unmetered, with a loop of our own around netcode's
//! public API: receive, meter connection requests, let netcode decide, deliver what it
//! decided to renet; then send renet's packets out through netcode.

use super::handshakes::{HandshakeGate, Refusal, Source, connection_request_expiry};
use agora_net::config::unix_now;
use bevy::prelude::*;
use bevy_renet::renet::ClientId;
use bevy_renet::{RenetReceive, RenetSend, RenetServer, RenetServerPlugin};
use renetcode::ServerResult;
use renetcode::{NETCODE_MAX_PACKET_BYTES, NETCODE_USER_DATA_BYTES, NetcodeServer, ServerConfig};
use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// Datagrams read per update at most, so a flood cannot hold a tick (the rest wait in the
/// socket's buffer, and the kernel drops what does not fit). Each costs little: junk fails
/// netcode's first checks, and connection requests over the gate's limits never reach its
/// decryption. 16,384 a tick is 330,000 a second at 20 Hz, above the 250,000 junk datagrams a
/// second that a flood test sent while 600 of 600 ticks held.
const MAX_DATAGRAMS_PER_UPDATE: usize = 16_384;
/// Refused handshakes are reported at most this often.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// The socket and netcode, as one resource.
#[derive(Resource)]
pub struct Transport {
    socket: UdpSocket,
    netcode: NetcodeServer,
    gate: HandshakeGate,
    buffer: Box<[u8; NETCODE_MAX_PACKET_BYTES]>,
    refusals: RefusalLog,
}

impl Transport {
    /// netcode on `socket` (made non-blocking), letting each source (an IPv4 address, an
    /// IPv6 /64) have `players_per_source` players connected.
    pub fn new(
        config: ServerConfig,
        socket: UdpSocket,
        players_per_source: usize,
    ) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        Ok(Self {
            socket,
            netcode: NetcodeServer::new(config),
            gate: HandshakeGate::new(players_per_source),
            buffer: Box::new([0; NETCODE_MAX_PACKET_BYTES]),
            refusals: RefusalLog::default(),
        })
    }

    /// The user data in a connected client's token (the player's name).
    pub fn user_data(&self, client_id: ClientId) -> Option<[u8; NETCODE_USER_DATA_BYTES]> {
        self.netcode.user_data(client_id)
    }

    /// Connection requests refused by the gate since the start.
    pub fn refused_handshakes(&self) -> u64 {
        self.refusals.total
    }

    /// Reads what arrived, lets netcode handle it, and hands renet its share.
    fn receive(&mut self, elapsed: Duration, server: &mut RenetServer) {
        self.netcode.update(elapsed);
        self.gate.expire(unix_now().as_secs());
        for _ in 0..MAX_DATAGRAMS_PER_UPDATE {
            let (len, from) = match self.socket.recv_from(&mut self.buffer[..]) {
                Ok(received) => received,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => break,
                // An ICMP "port unreachable" from an earlier send, on some systems.
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => continue,
                Err(e) => {
                    warn!("the game socket failed to receive: {e}");
                    break;
                }
            };
            let packet = &mut self.buffer[..len];
            let request = connection_request_expiry(packet);
            if request.is_some()
                && let Err(refusal) = self.gate.admit(from)
            {
                self.refusals.add(from, refusal);
                continue;
            }
            // netcode answers a request with a challenge (a pending slot) or, when the server
            // is full, a refusal (no slot): the same test as netcode's own. Asked only for a
            // request (it counts the slots), not for every datagram.
            let full =
                request.is_some() && self.netcode.connected_clients() >= self.netcode.max_clients();
            let result = self.netcode.process_packet(from, packet);
            if let (Some(expires), ServerResult::PacketToSend { addr, .. }, false) =
                (request, &result, full)
                && *addr == from
            {
                self.gate.challenged(from, expires);
            }
            deliver(result, &self.socket, server, &mut self.gate);
        }
        for client_id in self.netcode.clients_id() {
            let result = self.netcode.update_client(client_id);
            deliver(result, &self.socket, server, &mut self.gate);
        }
        for client_id in server.disconnections_id() {
            let result = self.netcode.disconnect(client_id);
            deliver(result, &self.socket, server, &mut self.gate);
        }
        self.refusals.report();
    }

    /// Sends what renet has for each client, encrypted by netcode.
    fn send(&mut self, server: &mut RenetServer) {
        for client_id in server.clients_id() {
            let Ok(packets) = server.get_packets_to_send(client_id) else {
                continue;
            };
            for packet in packets {
                match self.netcode.generate_payload_packet(client_id, &packet) {
                    Ok((addr, payload)) => {
                        if let Err(e) = self.socket.send_to(payload, addr) {
                            warn!("sending to client {client_id} ({addr}) failed: {e}");
                            break;
                        }
                    }
                    Err(e) => {
                        warn!("netcode could not seal a packet for client {client_id}: {e}");
                        break;
                    }
                }
            }
        }
    }

    /// Tells every client the server is going (netcode sends its disconnect packets).
    pub fn disconnect_all(&mut self, server: &mut RenetServer) {
        for client_id in self.netcode.clients_id() {
            let result = self.netcode.disconnect(client_id);
            deliver(result, &self.socket, server, &mut self.gate);
        }
    }
}

/// Carries out what netcode decided about one packet.
fn deliver(
    result: ServerResult,
    socket: &UdpSocket,
    server: &mut RenetServer,
    gate: &mut HandshakeGate,
) {
    let send = |payload: &[u8], addr: SocketAddr| {
        if let Err(e) = socket.send_to(payload, addr) {
            warn!("sending to {addr} failed: {e}");
        }
    };
    match result {
        ServerResult::None => {}
        ServerResult::PacketToSend { payload, addr } => send(payload, addr),
        ServerResult::Payload { client_id, payload } => {
            if let Err(e) = server.process_packet_from(payload, client_id) {
                warn!("client {client_id}: a packet renet could not read ({e})");
            }
        }
        ServerResult::ClientConnected {
            client_id,
            addr,
            payload,
            ..
        } => {
            gate.connected(addr);
            server.add_connection(client_id);
            send(payload, addr);
        }
        ServerResult::ClientDisconnected {
            client_id,
            addr,
            payload,
        } => {
            gate.disconnected(addr);
            server.remove_connection(client_id);
            if let Some(payload) = payload {
                send(payload, addr);
            }
        }
    }
}

/// Refused handshakes, counted and reported now and then (a flood would otherwise print a
/// line per datagram).
#[derive(Debug, Default)]
struct RefusalLog {
    total: u64,
    since_report: HashMap<(Source, Refusal), u64>,
    last_report: Option<Instant>,
}

impl RefusalLog {
    fn add(&mut self, from: SocketAddr, refusal: Refusal) {
        self.total += 1;
        *self
            .since_report
            .entry((Source::of(from), refusal))
            .or_default() += 1;
    }

    fn report(&mut self) {
        if self.since_report.is_empty()
            || self.last_report.is_some_and(|t| t.elapsed() < REPORT_EVERY)
        {
            return;
        }
        self.last_report = Some(Instant::now());
        let mut counts: Vec<_> = self.since_report.drain().collect();
        counts.sort_by(|a, b| {
            b.1.cmp(&a.1)
                .then_with(|| a.0.0.to_string().cmp(&b.0.0.to_string()))
        });
        let total: u64 = counts.iter().map(|c| c.1).sum();
        let top: Vec<String> = counts
            .iter()
            .take(3)
            .map(|((source, refusal), n)| match refusal {
                Refusal::SourceBusy => format!(
                    "{n} from {source} (over {} handshakes at once)",
                    super::handshakes::PENDING_PER_SOURCE
                ),
                Refusal::Full => format!("{n} from {source} (the handshake table is full)"),
                Refusal::SourcePlaying => {
                    format!("{n} from {source} (as many players connected as one address may)")
                }
            })
            .collect();
        warn!(
            "refused {total} connection requests: {}{}",
            top.join(", "),
            if counts.len() > 3 { ", ..." } else { "" }
        );
    }
}

pub fn plugin(app: &mut App) {
    app.add_systems(
        PreUpdate,
        receive
            .in_set(RenetReceive)
            .run_if(resource_exists::<Transport>)
            .run_if(resource_exists::<RenetServer>)
            .after(RenetServerPlugin::update_system)
            .before(RenetServerPlugin::emit_server_events_system),
    )
    .add_systems(
        PostUpdate,
        send.in_set(RenetSend)
            .run_if(resource_exists::<Transport>)
            .run_if(resource_exists::<RenetServer>),
    )
    .add_systems(
        Last,
        disconnect_on_exit
            .run_if(resource_exists::<Transport>)
            .run_if(resource_exists::<RenetServer>),
    );
}

fn receive(
    mut transport: ResMut<Transport>,
    mut server: ResMut<RenetServer>,
    time: Res<Time<Real>>,
) {
    transport.receive(time.delta(), &mut server);
}

fn send(mut transport: ResMut<Transport>, mut server: ResMut<RenetServer>) {
    transport.send(&mut server);
}

fn disconnect_on_exit(
    exit: MessageReader<AppExit>,
    mut transport: ResMut<Transport>,
    mut server: ResMut<RenetServer>,
) {
    if !exit.is_empty() {
        transport.disconnect_all(&mut server);
    }
}
