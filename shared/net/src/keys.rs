//! The server's netcode private key. It signs and encrypts connect tokens, so whoever holds it
//! can let anyone in as anyone: it comes from the environment or a file, never from code, and
//! is never logged.

use std::path::{Path, PathBuf};

/// Key length (netcode's `NETCODE_KEY_BYTES`).
pub const KEY_BYTES: usize = 32;
const HEX_DIGITS: usize = KEY_BYTES * 2;
/// Environment variable that holds the key as 64 hex digits; it wins over the file.
pub const KEY_ENV: &str = "AGORA_SERVER_KEY";

/// The private key. `Debug` shows no bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerKey([u8; KEY_BYTES]);

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKey(<secret>)")
    }
}

/// Where a key came from, so the server can say so at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyOrigin {
    Environment,
    File(PathBuf),
    /// No key existed: a fresh one was written here.
    Created(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{KEY_ENV} must be {HEX_DIGITS} hex digits")]
    BadEnvironment,
    #[error("{0}: a key file holds {HEX_DIGITS} hex digits")]
    BadFile(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ServerKey {
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> Self {
        Self(bytes)
    }

    pub fn bytes(&self) -> &[u8; KEY_BYTES] {
        &self.0
    }

    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        Self(renet_netcode::generate_random_bytes::<KEY_BYTES>())
    }

    /// `$AGORA_SERVER_KEY` if set, else the key file at `path`; if there is no such file, a new
    /// key is written there (owner-only permissions) and [`KeyOrigin::Created`] says so.
    pub fn load_or_create(path: &Path) -> Result<(Self, KeyOrigin), KeyError> {
        if let Ok(hex) = std::env::var(KEY_ENV) {
            let key = from_hex(hex.trim()).ok_or(KeyError::BadEnvironment)?;
            return Ok((key, KeyOrigin::Environment));
        }
        let io = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let key =
                    from_hex(text.trim()).ok_or_else(|| KeyError::BadFile(path.to_path_buf()))?;
                Ok((key, KeyOrigin::File(path.to_path_buf())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                write_private(path, &to_hex(&key)).map_err(io)?;
                Ok((key, KeyOrigin::Created(path.to_path_buf())))
            }
            Err(e) => Err(io(e)),
        }
    }
}

fn to_hex(key: &ServerKey) -> String {
    key.0.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Option<ServerKey> {
    if text.len() != KEY_BYTES * 2 || !text.is_ascii() {
        return None;
    }
    let mut bytes = [0u8; KEY_BYTES];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(ServerKey(bytes))
}

/// Writes a file only its owner can read (on Unix), never over an existing one.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    writeln!(file, "{text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_key_file_is_created_once_and_then_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/server.key");
        let (first, origin) = ServerKey::load_or_create(&path).unwrap();
        assert_eq!(origin, KeyOrigin::Created(path.clone()));
        let (again, origin) = ServerKey::load_or_create(&path).unwrap();
        assert_eq!(origin, KeyOrigin::File(path.clone()));
        assert_eq!(first, again);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "only the owner may read the key");
        }
        assert_ne!(ServerKey::generate(), ServerKey::generate());
    }

    #[test]
    fn broken_key_files_are_errors_and_debug_shows_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.key");
        std::fs::write(&path, "not hex").unwrap();
        assert!(matches!(
            ServerKey::load_or_create(&path),
            Err(KeyError::BadFile(_))
        ));
        let key = ServerKey::from_bytes([0xab; KEY_BYTES]);
        assert_eq!(from_hex(&to_hex(&key)), Some(key.clone()));
        assert!(!format!("{key:?}").contains("ab"));
    }
}
