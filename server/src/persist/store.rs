//! The SQLite database: its schema, versioned migrations, and the reads and writes the server
//! makes. Plain Rust, no Bevy: the writer thread ([`super::writer`]) owns one connection, and
//! startup reads through another before the world runs.
//!
//! The database runs in WAL mode with `synchronous = NORMAL`: a commit is atomic and survives
//! the process being killed; only a power cut can lose the last commits, never corrupt the file.

use agora_shared::{GameTime, TilePos};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The newest schema this server knows. Each entry of [`MIGRATIONS`] moves a database one
/// version up; `PRAGMA user_version` records where it is.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

const MIGRATIONS: &[&str] = &[
    // 1: players' avatars and the world clock.
    "CREATE TABLE players (
        client_id INTEGER PRIMARY KEY, -- netcode client id (u64, stored bit for bit as i64)
        name      TEXT NOT NULL,
        x         INTEGER NOT NULL,
        y         INTEGER NOT NULL,
        team      TEXT
    ) STRICT;
    CREATE TABLE world (
        key   TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) STRICT;",
];

/// A player's avatar as saved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedPlayer {
    pub client_id: u64,
    pub name: String,
    pub tile: TilePos,
    pub team: Option<String>,
}

/// Everything a restarted server resumes from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Saved {
    pub clock: Option<GameTime>,
    pub players: Vec<SavedPlayer>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "database {path} has schema version {found}, newer than this server's {SCHEMA_VERSION}: \
         run a newer agora-server, or point --db at another file"
    )]
    TooNew { path: PathBuf, found: u32 },
    #[error("database {path}: {what}")]
    Invalid { path: PathBuf, what: String },
}

/// One connection to the database.
pub struct Store {
    connection: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens the database at `path`, creating it if absent, and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let fail = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let connection = Connection::open(path).map_err(fail)?;
        let mut store = Self {
            connection,
            path: path.to_path_buf(),
        };
        store.configure().map_err(fail)?;
        store.migrate()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn fail(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn configure(&mut self) -> rusqlite::Result<()> {
        // Another process (a researcher's query) may hold the lock for a moment.
        self.connection.busy_timeout(Duration::from_secs(5))?;
        let mode: String = self
            .connection
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(rusqlite::Error::InvalidQuery);
        }
        self.connection
            .pragma_update(None, "synchronous", "NORMAL")?;
        self.connection.pragma_update(None, "foreign_keys", true)?;
        Ok(())
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let found: u32 = self
            .connection
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(|e| self.fail(e))?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found,
            });
        }
        let path = self.path.clone();
        let fail = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        for (version, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            let tx = self.connection.transaction().map_err(fail)?;
            tx.execute_batch(sql)
                .and_then(|()| tx.pragma_update(None, "user_version", version as u32 + 1))
                .and_then(|()| tx.commit())
                .map_err(fail)?;
        }
        Ok(())
    }

    /// The schema version the file is at.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        self.connection
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(|e| self.fail(e))
    }

    /// What a restarted server resumes from.
    pub fn load(&self) -> Result<Saved, StoreError> {
        let (clock, players) = self.load_inner().map_err(|e| self.fail(e))?;
        let clock = clock
            .map(|ms| {
                u64::try_from(ms)
                    .map(GameTime)
                    .map_err(|_| StoreError::Invalid {
                        path: self.path.clone(),
                        what: format!("the saved clock is negative ({ms} ms)"),
                    })
            })
            .transpose()?;
        Ok(Saved { clock, players })
    }

    /// The raw clock and the players (whose columns rusqlite range-checks).
    fn load_inner(&self) -> rusqlite::Result<(Option<i64>, Vec<SavedPlayer>)> {
        let clock = self
            .connection
            .query_row("SELECT value FROM world WHERE key = 'clock'", [], |row| {
                row.get::<_, i64>(0)
            })
            .optional()?;
        let mut statement = self
            .connection
            .prepare("SELECT client_id, name, x, y, team FROM players ORDER BY name")?;
        let players = statement
            .query_map([], |row| {
                Ok(SavedPlayer {
                    client_id: row.get::<_, i64>(0)? as u64,
                    name: row.get(1)?,
                    tile: TilePos::new(row.get(2)?, row.get(3)?),
                    team: row.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((clock, players))
    }

    /// Writes a batch in one transaction: all of it lands, or none.
    pub fn write(&mut self, batch: &Batch) -> Result<(), StoreError> {
        self.write_inner(batch).map_err(|e| self.fail(e))
    }

    fn write_inner(&mut self, batch: &Batch) -> rusqlite::Result<()> {
        let tx = self.connection.transaction()?;
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO players (client_id, name, x, y, team) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (client_id) DO UPDATE SET
                    name = excluded.name, x = excluded.x, y = excluded.y, team = excluded.team",
            )?;
            for p in batch.players.values() {
                upsert.execute(params![
                    p.client_id as i64,
                    p.name,
                    p.tile.x,
                    p.tile.y,
                    p.team
                ])?;
            }
            if let Some(clock) = batch.clock {
                tx.execute(
                    "INSERT INTO world (key, value) VALUES ('clock', ?1)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    [clock.0 as i64],
                )?;
            }
        }
        tx.commit()
    }
}

/// Writes gathered for one transaction; later writes of the same row replace earlier ones.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    pub players: std::collections::BTreeMap<u64, SavedPlayer>,
    pub clock: Option<GameTime>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.players.is_empty() && self.clock.is_none()
    }

    pub fn add(&mut self, write: Write) {
        match write {
            Write::Player(p) => {
                self.players.insert(p.client_id, p);
            }
            Write::Clock(t) => self.clock = Some(t),
        }
    }
}

/// One change to save.
#[derive(Clone, Debug)]
pub enum Write {
    Player(SavedPlayer),
    Clock(GameTime),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ada(x: u16) -> SavedPlayer {
        SavedPlayer {
            client_id: u64::MAX - 1, // high bit set: must survive the i64 column
            name: "ada".into(),
            tile: TilePos::new(x, 7),
            team: Some("red".into()),
        }
    }

    #[test]
    fn writes_survive_reopening_and_later_writes_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("world.sqlite");
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.load().unwrap(), Saved::default());
        let mut batch = Batch::default();
        batch.add(Write::Player(ada(3)));
        batch.add(Write::Player(ada(4)));
        batch.add(Write::Clock(GameTime(90_000)));
        store.write(&batch).unwrap();
        let mut bob = ada(9);
        bob.client_id = 5;
        bob.name = "bob".into();
        bob.team = None;
        let mut batch = Batch::default();
        batch.add(Write::Player(bob.clone()));
        store.write(&batch).unwrap();
        drop(store);

        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(
            store.load().unwrap(),
            Saved {
                clock: Some(GameTime(90_000)),
                players: vec![ada(4), bob],
            }
        );
        let mode: String = store
            .connection
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn newer_schemas_edited_values_and_files_that_are_not_databases_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let newer = dir.path().join("newer.sqlite");
        Connection::open(&newer)
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let e = Store::open(&newer).unwrap_err().to_string();
        assert!(e.contains("newer than this server's"), "{e}");

        // Values no server writes: a negative clock, a tile off any map.
        let edited = dir.path().join("edited.sqlite");
        let store = Store::open(&edited).unwrap();
        store
            .connection
            .execute("INSERT INTO world (key, value) VALUES ('clock', -5)", [])
            .unwrap();
        let e = store.load().unwrap_err().to_string();
        assert!(e.contains("edited.sqlite") && e.contains("negative"), "{e}");
        store
            .connection
            .execute_batch(
                "UPDATE world SET value = 5;
                 INSERT INTO players VALUES (1, 'ada', 70000, 3, NULL);",
            )
            .unwrap();
        let e = store.load().unwrap_err().to_string();
        assert!(e.contains("edited.sqlite"), "{e}");

        let junk = dir.path().join("junk.sqlite");
        std::fs::write(&junk, vec![0x42; 4096]).unwrap();
        let e = Store::open(&junk).unwrap_err().to_string();
        assert!(e.contains("junk.sqlite"), "{e}");
        assert!(e.contains("not a database"), "{e}");
    }
}
