//! The token endpoint: `GET /token?player=NAME` answers with a connect token for that player
//! (netcode's binary format), as the web backend that netcode.io recommends would. It hands a
//! token to whoever asks, so it listens on loopback by default; a public deployment puts its
//! account check in front of it. Runs on tokio, on its own thread, never in a tick.

use agora_net::config::unix_now;
use agora_net::keys::ServerKey;
use agora_net::tokens;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Longest request read (the request line and headers).
const MAX_REQUEST_BYTES: usize = 4096;
/// Requests served at once; more are closed unanswered.
const MAX_CONNECTIONS: usize = 64;

/// A running endpoint; it stops with the process.
#[derive(Debug)]
pub struct TokenEndpoint {
    pub addr: SocketAddr,
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
    std::thread::Builder::new()
        .name("token-endpoint".into())
        .spawn(move || {
            runtime.block_on(async move {
                let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
                loop {
                    let stream = match listener.accept().await {
                        Ok((stream, _)) => stream,
                        // Out of file descriptors, say: wait rather than spin.
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        continue; // Busy: the connection is dropped, closing it.
                    };
                    let (key, servers) = (key.clone(), servers.clone());
                    tokio::spawn(async move {
                        let serve = answer(stream, &key, servers, ttl);
                        let _ = tokio::time::timeout(Duration::from_secs(5), serve).await;
                        drop(slot);
                    });
                }
            })
        })?;
    Ok(TokenEndpoint { addr })
}

async fn answer(
    mut stream: tokio::net::TcpStream,
    key: &ServerKey,
    servers: Vec<SocketAddr>,
    ttl: Duration,
) -> std::io::Result<()> {
    let mut request = Vec::with_capacity(512);
    let mut buffer = [0u8; 512];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < MAX_REQUEST_BYTES {
        let n = stream.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buffer[..n]);
    }
    let line = String::from_utf8_lossy(&request);
    let target = line
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("GET "))
        .and_then(|l| l.split(' ').next())
        .unwrap_or("");
    let (status, body, kind) = match target.strip_prefix("/token?player=").map(percent_decode) {
        Some(Some(player)) => match tokens::mint(key, &player, servers, ttl, unix_now()) {
            Ok(token) => (
                "200 OK",
                tokens::to_bytes(&token),
                "application/octet-stream",
            ),
            Err(e) => ("400 Bad Request", e.to_string().into_bytes(), "text/plain"),
        },
        Some(None) => (
            "400 Bad Request",
            b"player is not valid percent-encoded UTF-8".to_vec(),
            "text/plain",
        ),
        None => (
            "404 Not Found",
            b"GET /token?player=NAME".to_vec(),
            "text/plain",
        ),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&body).await?;
    stream.shutdown().await
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
}
