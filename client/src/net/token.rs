//! Connect tokens, from a file or from the server's token endpoint, got off the frame loop: a
//! fetch can wait out an endpoint's rate limit for up to a minute, and the window must keep
//! drawing (and saying so) meanwhile.

use agora_net::fetch;
use bevy::prelude::*;
use renet_netcode::ConnectToken;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, TryRecvError, channel};

/// Where tokens come from.
#[derive(Clone, Debug)]
pub enum TokenSource {
    /// A token file (`agora-server token --player NAME --out FILE`); read again on each
    /// attempt, so a fresh one can be dropped in while the client retries.
    File(PathBuf),
    /// The server's endpoint (`serve --token-endpoint`): a fresh token per attempt.
    Url { url: String, player: String },
}

impl TokenSource {
    /// Reads or fetches a token (blocking), checked to be for `server`.
    pub fn get(&self, server: SocketAddr) -> Result<ConnectToken, String> {
        let (bytes, from) = match self {
            TokenSource::File(path) => (
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?,
                path.display().to_string(),
            ),
            TokenSource::Url { url, player } => (fetch::token(url, player)?, url.clone()),
        };
        let token = ConnectToken::read(&mut bytes.as_slice())
            .map_err(|e| format!("{from} holds no connect token: {e}"))?;
        if !token.server_addresses.contains(&Some(server)) {
            let addresses: Vec<String> = (token.server_addresses.iter().flatten())
                .map(|a| a.to_string())
                .collect();
            return Err(format!(
                "the token from {from} is for {}, not {server}: get one for this server",
                addresses.join(", ")
            ));
        }
        Ok(token)
    }
}

/// A token being got on its own thread.
pub struct Pending(Mutex<Receiver<Result<ConnectToken, String>>>);

impl Pending {
    pub fn start(source: TokenSource, server: SocketAddr) -> Self {
        let (sender, receiver) = channel();
        let spawned = std::thread::Builder::new()
            .name("token".into())
            .spawn(move || {
                let _ = sender.send(source.get(server));
            });
        if let Err(e) = spawned {
            error!("cannot start getting a token: {e}");
        }
        Self(Mutex::new(receiver))
    }

    /// The token or why not, once there.
    pub fn poll(&self) -> Option<Result<ConnectToken, String>> {
        let receiver = self.0.lock().ok()?;
        match receiver.try_recv() {
            Ok(result) => Some(result),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err("getting a token failed".into())),
        }
    }
}
