//! A headless player client over renet and netcode, without Bevy: what bots and tests use to
//! play. The Bevy game client speaks the same protocol with the same [`connection_config`].

use crate::config::{connection_config, unix_now};
use agora_shared::TilePos;
use agora_shared::protocol::{
    Channel, ClientMessage, EntityKind, NetId, ServerMessage, decode, encode,
};
use renet::RenetClient;
use renet_netcode::{ClientAuthentication, ConnectToken, NetcodeClientTransport};
use std::collections::HashMap;
use std::net::UdpSocket;
use std::time::Duration;

pub struct Client {
    pub renet: RenetClient,
    pub transport: NetcodeClientTransport,
    /// Every message received, in order.
    pub inbox: Vec<ServerMessage>,
    /// Messages from the server that did not decode (a server bug or a version skew).
    pub undecodable: u64,
}

impl Client {
    /// Starts connecting with `token` from a fresh loopback-or-any UDP port.
    pub fn connect(token: ConnectToken) -> std::io::Result<Self> {
        Self::connect_from(token, "0.0.0.0:0".parse().expect("an address"))
    }

    /// Starts connecting with `token` from a socket bound to `local` (a host with several
    /// addresses, or a test playing two hosts on loopback: 127.0.0.2).
    pub fn connect_from(token: ConnectToken, local: std::net::SocketAddr) -> std::io::Result<Self> {
        let socket = UdpSocket::bind(local)?;
        let transport = NetcodeClientTransport::new(
            unix_now(),
            ClientAuthentication::Secure {
                connect_token: token,
            },
            socket,
        )
        .map_err(std::io::Error::other)?;
        Ok(Self {
            renet: RenetClient::new(connection_config()),
            transport,
            inbox: Vec::new(),
            undecodable: 0,
        })
    }

    pub fn is_connected(&self) -> bool {
        self.renet.is_connected()
    }

    /// Queues a message (dropped if not connected yet).
    pub fn send(&mut self, message: &ClientMessage) {
        if self.renet.is_connected() {
            self.renet.send_message(Channel::Reliable, encode(message));
        }
    }

    /// Receives and sends: call every few milliseconds with the time since the last call.
    pub fn pump(&mut self, dt: Duration) {
        self.renet.update(dt);
        if self.transport.update(dt, &mut self.renet).is_err() {
            return;
        }
        for channel in [Channel::Reliable, Channel::Unreliable] {
            while let Some(bytes) = self.renet.receive_message(channel) {
                match decode(&bytes) {
                    Ok(message) => self.inbox.push(message),
                    Err(_) => self.undecodable += 1,
                }
            }
        }
        let _ = self.transport.send_packets(&mut self.renet);
    }

    pub fn disconnect(&mut self) {
        self.transport.disconnect();
    }

    /// Why this client is not playing, in words for whoever runs it: what the server said
    /// (an outdated client), or why the connection ended or never began; `None` while it is
    /// connecting, or welcomed and connected.
    pub fn trouble(&self) -> Option<String> {
        use renet_netcode::NetcodeDisconnectReason as Netcode;
        if let Some(message) = self.inbox.iter().find_map(|m| match m {
            ServerMessage::Outdated { message, .. } => Some(message.clone()),
            _ => None,
        }) {
            return Some(format!("the server refused this client: {message}"));
        }
        match self.transport.disconnect_reason() {
            Some(Netcode::ConnectionRequestTimedOut) => {
                return Some(
                    "no answer from the server (is it running at that address, and is the UDP \
                     port open? is the token for that address?)"
                        .into(),
                );
            }
            Some(Netcode::ConnectionDenied) => {
                return Some(
                    "the server denied the connection (full, or the token was refused)".into(),
                );
            }
            Some(Netcode::ConnectTokenExpired) => {
                return Some("the connect token expired before the server answered (is this machine's clock right?)".into());
            }
            Some(Netcode::DisconnectedByClient) | None => {}
            Some(other) => return Some(other.to_string()),
        }
        if let Some(reason) = self.renet.disconnect_reason() {
            return Some(reason.to_string());
        }
        None
    }

    /// The avatar the server gave us, once welcomed.
    pub fn welcome(&self) -> Option<NetId> {
        self.inbox.iter().find_map(|m| match m {
            ServerMessage::Welcome { you, .. } => Some(*you),
            _ => None,
        })
    }

    /// The entities in view and where this client last saw them.
    pub fn tiles(&self) -> HashMap<NetId, TilePos> {
        let mut seen = HashMap::new();
        for m in &self.inbox {
            match m {
                ServerMessage::Spawned { id, tile, .. } => {
                    seen.insert(*id, *tile);
                }
                ServerMessage::Despawned { id } => {
                    seen.remove(id);
                }
                // Positions travel unreliably and may overtake a `Despawned`: only entities
                // still in view move.
                ServerMessage::Positions { moved, .. } => {
                    for (id, tile) in moved {
                        if let Some(at) = seen.get_mut(id) {
                            *at = *tile;
                        }
                    }
                }
                _ => {}
            }
        }
        seen
    }

    /// The entities of one kind in view, and their tiles.
    pub fn in_view(&self, kind: EntityKind) -> HashMap<NetId, TilePos> {
        let mut tiles = self.tiles();
        let of_kind: std::collections::HashSet<NetId> = self
            .inbox
            .iter()
            .filter_map(|m| match m {
                ServerMessage::Spawned { id, kind: k, .. } if *k == kind => Some(*id),
                _ => None,
            })
            .collect();
        tiles.retain(|id, _| of_kind.contains(id));
        tiles
    }
}
