//! The token endpoint: `GET /token?player=NAME` answers with a connect token for that player
//! (netcode's binary format), as the web backend that netcode.io recommends would. It hands a
//! token to whoever asks, so it listens on loopback by default; a public deployment puts its
//! account check in front of it. Runs on tokio, on its own thread, never in a tick.
//!
//! Whoever asks is still bounded: a request head must arrive within [`HEAD_TIMEOUT`], an
//! address may have [`CONNECTIONS_PER_ADDRESS`] requests open and fetch tokens at a metered
//! rate (HTTP 429 with `Retry-After` past it), and tokens are good for [`TOKEN_TTL`], so a pile
//! of fetched, unused tokens is soon worth nothing.

use super::handshakes::{Source, release};
use agora_net::config::unix_now;
use agora_net::keys::ServerKey;
use agora_net::tokens;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Longest request read (the request line and headers).
const MAX_REQUEST_BYTES: usize = 4096;
/// Longest wait for a request's head: a client that connects and says nothing is closed.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest a whole request may take, reply included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Requests served at once; more are closed unanswered.
const MAX_CONNECTIONS: usize = 512;
/// Requests served at once for one client address (IPv6: one /64), so that one client holding
/// connections open cannot take every slot.
pub const CONNECTIONS_PER_ADDRESS: usize = 8;
/// Tokens one address may fetch at once (enough to fill a server with bots from one machine)...
const TOKEN_BURST: u32 = super::server::MAX_CLIENTS as u32;
/// ... and then per second.
const TOKENS_PER_SECOND: u32 = 2;
/// How long an endpoint's token may be used to connect: time enough to fetch and connect.
pub const TOKEN_TTL: Duration = Duration::from_secs(30);
/// Addresses the token meter remembers before it forgets those that are back to a full burst.
const METERED_ADDRESSES: usize = 4096;

/// A running endpoint; it stops with the process.
#[derive(Debug)]
pub struct TokenEndpoint {
    pub addr: SocketAddr,
}

/// What every request shares: the key, the servers, and the per-address bounds.
struct Shared {
    key: ServerKey,
    servers: Vec<SocketAddr>,
    ttl: Duration,
    minted: DefaultKeyedRateLimiter<Source>,
    open: Mutex<HashMap<Source, usize>>,
}

/// One open request of an address; dropping it frees the address's slot.
struct AddressSlot {
    shared: Arc<Shared>,
    source: Source,
}

impl AddressSlot {
    fn take(shared: &Arc<Shared>, source: Source) -> Option<Self> {
        let mut open = shared.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(source).or_default();
        if *count >= CONNECTIONS_PER_ADDRESS {
            return None;
        }
        *count += 1;
        Some(Self {
            shared: shared.clone(),
            source,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.shared.open.lock().unwrap_or_else(|e| e.into_inner());
        release(&mut open, self.source);
    }
}

/// Starts serving tokens for the game servers at `servers`, valid for `ttl`.
pub fn start(
    bind: SocketAddr,
    key: ServerKey,
    servers: Vec<SocketAddr>,
    ttl: Duration,
) -> std::io::Result<TokenEndpoint> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    let listener = runtime.block_on(TcpListener::bind(bind))?;
    let addr = listener.local_addr()?;
    let quota = Quota::per_second(NonZeroU32::new(TOKENS_PER_SECOND).expect("not zero"))
        .allow_burst(NonZeroU32::new(TOKEN_BURST).expect("not zero"));
    let shared = Arc::new(Shared {
        key,
        servers,
        ttl,
        minted: RateLimiter::keyed(quota),
        open: Mutex::new(HashMap::new()),
    });
    std::thread::Builder::new()
        .name("token-endpoint".into())
        .spawn(move || {
            runtime.block_on(async move {
                let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
                loop {
                    let (stream, peer) = match listener.accept().await {
                        Ok(accepted) => accepted,
                        // Out of file descriptors, say: wait rather than spin.
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    // Busy in all, or for this address: the connection is dropped, closing it.
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        continue;
                    };
                    let Some(address_slot) = AddressSlot::take(&shared, Source::of(peer)) else {
                        continue;
                    };
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        let serve = answer(stream, peer, &shared);
                        let _ = tokio::time::timeout(REQUEST_TIMEOUT, serve).await;
                        drop((address_slot, slot));
                    });
                }
            })
        })?;
    Ok(TokenEndpoint { addr })
}

/// Reads a request head: up to its blank line, [`MAX_REQUEST_BYTES`], or the end of input.
async fn read_head(stream: &mut tokio::net::TcpStream) -> std::io::Result<Vec<u8>> {
    let mut request = Vec::with_capacity(512);
    let mut buffer = [0u8; 512];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < MAX_REQUEST_BYTES {
        let n = stream.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buffer[..n]);
    }
    Ok(request)
}

async fn answer(
    mut stream: tokio::net::TcpStream,
    peer: SocketAddr,
    shared: &Shared,
) -> std::io::Result<()> {
    let Ok(request) = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)).await else {
        return Ok(()); // Said nothing in time: closed unanswered.
    };
    let request = request?;
    let line = String::from_utf8_lossy(&request);
    let target = line
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("GET "))
        .and_then(|l| l.split(' ').next())
        .unwrap_or("");
    let reply = reply(target, peer, shared);
    let retry = reply
        .retry_after
        .map_or(String::new(), |s| format!("Retry-After: {s}\r\n"));
    let head = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{retry}Connection: close\r\n\r\n",
        reply.status,
        reply.kind,
        reply.body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&reply.body).await?;
    stream.shutdown().await
}

/// An HTTP reply.
struct Reply {
    status: &'static str,
    kind: &'static str,
    body: Vec<u8>,
    /// Seconds, for `Retry-After`.
    retry_after: Option<u64>,
}

impl Reply {
    fn text(status: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            kind: "text/plain",
            body: body.into(),
            retry_after: None,
        }
    }
}

/// The reply to a request for `target` from `peer`.
fn reply(target: &str, peer: SocketAddr, shared: &Shared) -> Reply {
    let player = match target.strip_prefix("/token?player=").map(percent_decode) {
        Some(Some(player)) => player,
        Some(None) => {
            return Reply::text(
                "400 Bad Request",
                "player is not valid percent-encoded UTF-8",
            );
        }
        None => return Reply::text("404 Not Found", "GET /token?player=NAME"),
    };
    if let Err(wait) = shared.minted.check_key(&Source::of(peer)) {
        if shared.minted.len() > METERED_ADDRESSES {
            shared.minted.retain_recent();
        }
        let seconds = wait.wait_time_from(DefaultClock::default().now()).as_secs() + 1;
        return Reply {
            retry_after: Some(seconds),
            ..Reply::text(
                "429 Too Many Requests",
                format!("too many tokens for this address; retry in {seconds} s"),
            )
        };
    }
    match tokens::mint(
        &shared.key,
        &player,
        shared.servers.clone(),
        shared.ttl,
        unix_now(),
    ) {
        Ok(token) => Reply {
            kind: "application/octet-stream",
            ..Reply::text("200 OK", tokens::to_bytes(&token))
        },
        Err(e) => Reply::text("400 Bad Request", e.to_string()),
    }
}
/// `%XX` and `+` decoding of a query value.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bevy_renet::netcode::ConnectToken;

    #[test]
    fn hands_out_tokens_and_refuses_bad_requests() {
        let key = ServerKey::generate();
        let game: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let endpoint = start(
            "127.0.0.1:0".parse().unwrap(),
            key,
            vec![game],
            Duration::from_secs(60),
        )
        .unwrap();
        let url = format!("http://{}", endpoint.addr);
        let bytes = agora_net::fetch::token(&url, "Ada Lovelace").unwrap();
        let token = ConnectToken::read(&mut bytes.as_slice()).unwrap();
        assert_eq!(token.client_id, tokens::client_id("Ada Lovelace"));
        let err = agora_net::fetch::token(&url, "<script>").unwrap_err();
        assert!(
            err.contains("HTTP 400") && err.contains("player name"),
            "{err}"
        );
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build(),
        );
        let reply = agent.get(&format!("{url}/admin")).call().unwrap();
        assert_eq!(reply.status().as_u16(), 404);
        assert_eq!(percent_decode("a%20b+c"), Some("a b c".into()));
        assert_eq!(percent_decode("%zz"), None);
    }

    fn endpoint() -> (String, SocketAddr) {
        let game: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let endpoint = start(
            "127.0.0.1:0".parse().unwrap(),
            ServerKey::generate(),
            vec![game],
            TOKEN_TTL,
        )
        .unwrap();
        (format!("http://{}", endpoint.addr), endpoint.addr)
    }

    /// Before: 64 connections held open without a request (each kept up to 5 s) starved the
    /// endpoint, and 0 of 92 honest requests got a token.
    #[test]
    fn idle_connections_from_one_address_do_not_starve_the_endpoint() {
        let (url, addr) = endpoint();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let idle: Vec<tokio::net::TcpStream> = runtime.block_on(async {
            let mut idle = Vec::new();
            for _ in 0..256 {
                let socket = tokio::net::TcpSocket::new_v4().unwrap();
                socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
                idle.push(socket.connect(addr).await.unwrap());
            }
            idle
        });
        for i in 0..32 {
            let player = format!("honest{i}");
            if let Err(e) = agora_net::fetch::token(&url, &player) {
                panic!("request {i} while 256 connections idle: {e}");
            }
        }
        // A connection that says nothing is closed once its head is overdue.
        let closed = runtime.block_on(async {
            let mut quiet = idle.into_iter().next().unwrap();
            let mut byte = [0u8; 1];
            let wait = HEAD_TIMEOUT + Duration::from_secs(3);
            tokio::time::timeout(wait, quiet.read(&mut byte)).await
        });
        assert!(
            matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
            "an idle connection was still open after {HEAD_TIMEOUT:?}: {closed:?}"
        );
    }

    #[test]
    fn one_address_gets_a_burst_of_tokens_then_a_meter() {
        let (url, _) = endpoint();
        for i in 0..TOKEN_BURST {
            agora_net::fetch::token(&url, &format!("bot{i}")).unwrap();
        }
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build(),
        );
        let reply = agent
            .get(&format!("{url}/token?player=one+more"))
            .call()
            .unwrap();
        assert_eq!(reply.status().as_u16(), 429);
        let wait: u64 = reply.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=2).contains(&wait), "Retry-After: {wait}");
        // The client waits as told, and is served.
        let bytes = agora_net::fetch::token(&url, "patient").unwrap();
        let token = ConnectToken::read(&mut bytes.as_slice()).unwrap();
        assert_eq!(token.client_id, tokens::client_id("patient"));
        assert_eq!(
            token.expire_timestamp - token.create_timestamp,
            TOKEN_TTL.as_secs()
        );
    }
}
