//! Getting a connect token from a server's token endpoint (`GET /token?player=NAME`).

use std::time::Duration;

/// Most bytes read from a token reply (a token is 2 KiB).
const MAX_REPLY_BYTES: u64 = 64 * 1024;

/// How a token endpoint listening at `addr` is named to users (what `serve` prints):
/// `http://ADDR/token?player=NAME`. [`token`] takes it as it is.
pub fn endpoint_url(addr: std::net::SocketAddr) -> String {
    format!("http://{addr}/token?player=NAME")
}

/// The endpoint's base URL from what a user may paste: the base itself
/// (`http://127.0.0.1:5001`) or the URL `serve` prints (`http://127.0.0.1:5001/token?player=NAME`).
pub fn base_url(url: &str) -> &str {
    let url = url.trim();
    let url = url.split_once('?').map_or(url, |(path, _)| path);
    let url = url.trim_end_matches('/');
    url.strip_suffix("/token").unwrap_or(url)
}

/// Longest the endpoint's `Retry-After` is waited for in all before giving up.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);

/// A token's bytes for `player` from the endpoint at `url` (see [`base_url`]), or why not.
/// An endpoint that says "too many requests" (HTTP 429) is asked again when its
/// `Retry-After` has passed, for up to a minute.
pub fn token(url: &str, player: &str) -> Result<Vec<u8>, String> {
    let mut waited = Duration::ZERO;
    loop {
        match fetch_once(url, player)? {
            Fetched::Token(bytes) => return Ok(bytes),
            Fetched::RetryAfter(wait, why) => {
                if waited + wait > MAX_RETRY_WAIT {
                    return Err(why);
                }
                std::thread::sleep(wait);
                waited += wait;
            }
        }
    }
}

enum Fetched {
    Token(Vec<u8>),
    /// HTTP 429: how long to wait, and the endpoint's words.
    RetryAfter(Duration, String),
}

fn fetch_once(url: &str, player: &str) -> Result<Fetched, String> {
    let encoded: String = player
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let address = format!("{}/token?player={encoded}", base_url(url));
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build(),
    );
    let mut reply = agent
        .get(&address)
        .call()
        .map_err(|e| format!("{address}: {e}"))?;
    let status = reply.status().as_u16();
    let retry_after = reply
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let body = reply
        .body_mut()
        .with_config()
        .limit(MAX_REPLY_BYTES)
        .read_to_vec()
        .map_err(|e| format!("{address}: {e}"))?;
    let why = || {
        format!(
            "{address}: HTTP {status}: {}",
            String::from_utf8_lossy(&body)
        )
    };
    match (status, retry_after) {
        (200, _) => Ok(Fetched::Token(body)),
        (429, Some(seconds)) => Ok(Fetched::RetryAfter(
            Duration::from_secs(seconds.clamp(1, 10)),
            why(),
        )),
        _ => Err(why()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printed_url_and_its_base_name_the_same_endpoint() {
        let base = "http://127.0.0.1:5001";
        for pasted in [
            "http://127.0.0.1:5001",
            "http://127.0.0.1:5001/",
            "http://127.0.0.1:5001/token",
            "http://127.0.0.1:5001/token?player=NAME",
            " http://127.0.0.1:5001/token/?player=ada ",
        ] {
            assert_eq!(base_url(pasted), base, "{pasted:?}");
        }
        assert_eq!(
            base_url("https://example.org/agora/token?player=x"),
            "https://example.org/agora"
        );
    }
}
