//! The SQLite database: its schema, versioned migrations, and the reads and writes the server
//! makes. Plain Rust, no Bevy: the writer thread ([`super::writer`]) owns one connection, and
//! startup reads through another before the world runs.
//!
//! The database runs in WAL mode with `synchronous = NORMAL`: a commit is atomic and survives
//! the process being killed; only a power cut can lose the last commits, never corrupt the file.

use crate::memory::{Memory, MemoryId, MemoryKind, Triple};
use agora_shared::{GameTime, TilePos};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::{BTreeMap, BTreeSet};
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
    // 2: agents' memory streams.
    "CREATE TABLE memories (
        agent         TEXT NOT NULL,    -- the agent's id (persona id, `id#2` for copies)
        id            INTEGER NOT NULL, -- its place in the agent's stream: 0, 1, 2, ...
        kind          TEXT NOT NULL CHECK (kind IN ('event', 'thought', 'chat')),
        created       INTEGER NOT NULL, -- game ms
        last_accessed INTEGER NOT NULL, -- game ms
        description   TEXT NOT NULL,
        subject       TEXT,             -- subject, predicate, object: all or none
        predicate     TEXT,
        object        TEXT,
        importance    INTEGER CHECK (importance BETWEEN 1 AND 10), -- NULL until rated
        evidence      TEXT NOT NULL,    -- ids of the memories a thought came from, `1,4,9`
        embedding     BLOB,             -- little-endian f32s; NULL until embedded
        PRIMARY KEY (agent, id)
    ) STRICT;",
    // 3: agents' plans for the day.
    "CREATE TABLE plans (
        agent TEXT PRIMARY KEY, -- the agent's id
        plan  TEXT NOT NULL     -- its DayPlan as JSON (cognition::planning)
    ) STRICT;",
    // 4: when each player was last saved (Unix seconds), so that long-gone ones are forgotten.
    // Players from before count as seen at the migration.
    "ALTER TABLE players ADD COLUMN last_seen INTEGER NOT NULL DEFAULT 0;
     UPDATE players SET last_seen = unixepoch();",
    // 5: the places each agent knows (its spatial memory: seeded from its persona, grown from
    // what it has seen), by sector name, so that a map edit cannot point a row elsewhere.
    "CREATE TABLE known_places (
        agent  TEXT NOT NULL, -- the agent's id
        sector TEXT NOT NULL, -- the sector's name on the map
        PRIMARY KEY (agent, sector)
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

/// One memory of one agent as saved, with its embedding once it has one.
#[derive(Clone, Debug, PartialEq)]
pub struct SavedMemory {
    pub agent: String,
    pub memory: Memory,
    pub embedding: Option<Vec<f32>>,
}

/// Everything a restarted server resumes from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Saved {
    pub clock: Option<GameTime>,
    pub players: Vec<SavedPlayer>,
    /// Each agent's memories in id order.
    pub memories: BTreeMap<String, Vec<(Memory, Option<Vec<f32>>)>>,
    /// Each agent's plan for the day, as JSON.
    pub plans: BTreeMap<String, String>,
    /// The sectors each agent knows, by name.
    pub known_places: BTreeMap<String, BTreeSet<String>>,
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
    #[error(
        "database {path} {what}. Nothing was changed. To start a new world, point --db at a new \
         file (or delete this one); to restore, copy back a backup (see `sqlite3 FILE .backup` \
         in the README)"
    )]
    NoWorld { path: PathBuf, what: String },
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
    /// A file that exists but holds no world of ours is refused rather than made into a new
    /// world: an empty (truncated) file, a database of something else, or the main file of a
    /// world copied without its `-wal` (the world is in the WAL until SQLite checkpoints).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let fail = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let existed = match std::fs::metadata(path) {
            Ok(meta) if meta.len() == 0 => {
                return Err(StoreError::NoWorld {
                    path: path.to_path_buf(),
                    what: "is empty (0 bytes)".into(),
                });
            }
            Ok(_) => true,
            Err(_) => false,
        };
        let connection = Connection::open(path).map_err(fail)?;
        let mut store = Self {
            connection,
            path: path.to_path_buf(),
        };
        // Checked before anything is configured: a file that is refused is left as it was.
        if existed {
            store.check_holds_a_world()?;
        }
        store.configure().map_err(fail)?;
        store.migrate()?;
        Ok(store)
    }

    /// An existing file must be at one of our schema versions (`user_version` set by a
    /// migration).
    fn check_holds_a_world(&self) -> Result<(), StoreError> {
        let version = self.schema_version()?;
        if version > 0 {
            return Ok(());
        }
        let tables: Vec<String> = self
            .connection
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name LIMIT 5")
            .and_then(|mut q| q.query_map([], |row| row.get(0))?.collect())
            .map_err(|e| self.fail(e))?;
        let what = if tables.is_empty() {
            let wal = format!("{}-wal", self.path.display());
            format!(
                "holds no world and no tables: if it was copied from a running or killed server, \
                 the world is in {wal}, which must be copied with it"
            )
        } else {
            format!("is not an Agora world (its tables: {})", tables.join(", "))
        };
        Err(StoreError::NoWorld {
            path: self.path.clone(),
            what,
        })
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
        let memories = self.load_memories().map_err(|e| self.fail(e))?;
        let plans = self.load_plans().map_err(|e| self.fail(e))?;
        let known_places = self.load_known_places().map_err(|e| self.fail(e))?;
        Ok(Saved {
            clock,
            players,
            memories,
            plans,
            known_places,
        })
    }

    fn load_known_places(&self) -> rusqlite::Result<BTreeMap<String, BTreeSet<String>>> {
        let mut statement = self
            .connection
            .prepare("SELECT agent, sector FROM known_places")?;
        let mut known: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            known.entry(row.get(0)?).or_default().insert(row.get(1)?);
        }
        Ok(known)
    }

    fn load_plans(&self) -> rusqlite::Result<BTreeMap<String, String>> {
        let mut statement = self
            .connection
            .prepare("SELECT agent, plan FROM plans ORDER BY agent")?;
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect()
    }

    /// Every agent's memories, in id order. Rows no server writes (a negative time, an unknown
    /// kind, an embedding that is not whole f32s) are errors naming the row.
    fn load_memories(&self) -> rusqlite::Result<BTreeMap<String, Vec<(Memory, Option<Vec<f32>>)>>> {
        let mut statement = self.connection.prepare(
            "SELECT agent, id, kind, created, last_accessed, description, subject, predicate,
                    object, importance, evidence, embedding
             FROM memories ORDER BY agent, id",
        )?;
        let invalid = |column: usize, what: String| {
            rusqlite::Error::FromSqlConversionFailure(
                column,
                rusqlite::types::Type::Text,
                what.into(),
            )
        };
        let mut streams: BTreeMap<String, Vec<(Memory, Option<Vec<f32>>)>> = BTreeMap::new();
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let agent: String = row.get(0)?;
            let id: u32 = row.get(1)?;
            let at = |what: &str| format!("memory {id} of {agent}: {what}");
            let kind = row.get_ref(2)?.as_str()?;
            let Some(kind) = MemoryKind::from_name(kind) else {
                return Err(invalid(2, at(&format!("unknown kind {kind:?}"))));
            };
            let time = |column: usize| -> rusqlite::Result<GameTime> {
                let ms: i64 = row.get(column)?;
                u64::try_from(ms)
                    .map(GameTime)
                    .map_err(|_| invalid(column, at(&format!("negative time {ms}"))))
            };
            let triple = match (row.get(6)?, row.get(7)?, row.get(8)?) {
                (Some(subject), Some(predicate), Some(object)) => Some(Triple {
                    subject,
                    predicate,
                    object,
                }),
                (None, None, None) => None,
                _ => return Err(invalid(6, at("a partial subject-predicate-object"))),
            };
            let evidence = (row.get_ref(10)?.as_str()?.split(','))
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().map(MemoryId))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| invalid(10, at(&format!("evidence: {e}"))))?;
            let embedding = match row.get_ref(11)?.as_blob_or_null()? {
                None => None,
                Some(bytes) if bytes.len() % 4 == 0 => Some(
                    bytes
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                ),
                Some(bytes) => {
                    return Err(invalid(
                        11,
                        at(&format!("a {}-byte embedding", bytes.len())),
                    ));
                }
            };
            let memory = Memory {
                id: MemoryId(id),
                kind,
                created: time(3)?,
                last_accessed: time(4)?,
                description: row.get(5)?,
                triple,
                importance: row.get(9)?,
                keywords: Vec::new(),
                evidence,
            };
            streams.entry(agent).or_default().push((memory, embedding));
        }
        Ok(streams)
    }

    /// Deletes the players not saved (not seen: a player is saved as it moves and as it
    /// leaves) for `age`, so that names that came once do not stay forever. Returns how many.
    pub fn forget_players_unseen_for(&self, age: Duration) -> Result<usize, StoreError> {
        self.connection
            .execute(
                "DELETE FROM players WHERE last_seen < unixepoch() - ?1",
                [i64::try_from(age.as_secs()).unwrap_or(i64::MAX)],
            )
            .map_err(|e| self.fail(e))
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
                "INSERT INTO players (client_id, name, x, y, team, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5, unixepoch())
                 ON CONFLICT (client_id) DO UPDATE SET
                    name = excluded.name, x = excluded.x, y = excluded.y, team = excluded.team,
                    last_seen = excluded.last_seen",
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
            let mut memory = tx.prepare_cached(
                "INSERT OR REPLACE INTO memories (agent, id, kind, created, last_accessed,
                    description, subject, predicate, object, importance, evidence, embedding)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?;
            for saved in batch.memories.values() {
                let m = &saved.memory;
                let triple = m.triple.as_ref();
                let evidence: Vec<String> = m.evidence.iter().map(|e| e.0.to_string()).collect();
                let embedding: Option<Vec<u8>> = (saved.embedding.as_ref())
                    .map(|v| v.iter().flat_map(|x| x.to_le_bytes()).collect());
                memory.execute(params![
                    saved.agent,
                    m.id.0,
                    m.kind.name(),
                    m.created.0 as i64,
                    m.last_accessed.0 as i64,
                    m.description,
                    triple.map(|t| &t.subject),
                    triple.map(|t| &t.predicate),
                    triple.map(|t| &t.object),
                    m.importance,
                    evidence.join(","),
                    embedding,
                ])?;
            }
            let mut plan = tx.prepare_cached(
                "INSERT INTO plans (agent, plan) VALUES (?1, ?2)
                 ON CONFLICT (agent) DO UPDATE SET plan = excluded.plan",
            )?;
            let mut no_plan = tx.prepare_cached("DELETE FROM plans WHERE agent = ?1")?;
            for (agent, saved) in &batch.plans {
                match saved {
                    Some(json) => plan.execute(params![agent, json])?,
                    None => no_plan.execute(params![agent])?,
                };
            }
            let mut place = tx.prepare_cached(
                "INSERT OR IGNORE INTO known_places (agent, sector) VALUES (?1, ?2)",
            )?;
            for (agent, sector) in &batch.known_places {
                place.execute(params![agent, sector])?;
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
    pub players: BTreeMap<u64, SavedPlayer>,
    pub memories: BTreeMap<(String, u32), SavedMemory>,
    /// Agent -> its plan as JSON, or `None`: it has none now.
    pub plans: BTreeMap<String, Option<String>>,
    /// (agent, sector name) an agent has come to know; places are never forgotten.
    pub known_places: BTreeSet<(String, String)>,
    pub clock: Option<GameTime>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.players.is_empty()
            && self.memories.is_empty()
            && self.plans.is_empty()
            && self.known_places.is_empty()
            && self.clock.is_none()
    }

    /// Rows in the batch.
    pub fn len(&self) -> usize {
        self.players.len()
            + self.memories.len()
            + self.plans.len()
            + self.known_places.len()
            + usize::from(self.clock.is_some())
    }

    pub fn add(&mut self, write: Write) {
        match write {
            Write::Player(p) => {
                self.players.insert(p.client_id, p);
            }
            Write::Memory(m) => {
                self.memories.insert((m.agent.clone(), m.memory.id.0), m);
            }
            Write::Plan { agent, plan } => {
                self.plans.insert(agent, plan);
            }
            Write::KnownPlace { agent, sector } => {
                self.known_places.insert((agent, sector));
            }
            Write::Clock(t) => self.clock = Some(t),
        }
    }
}

/// One change to save.
#[derive(Clone, Debug)]
pub enum Write {
    Player(SavedPlayer),
    Memory(SavedMemory),
    /// An agent's plan as JSON; `None` deletes it.
    Plan {
        agent: String,
        plan: Option<String>,
    },
    /// A sector (by name) an agent knows.
    KnownPlace {
        agent: String,
        sector: String,
    },
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
        let plan = |agent: &str, plan: Option<&str>| Write::Plan {
            agent: agent.into(),
            plan: plan.map(str::to_string),
        };
        batch.add(plan("iris_chen", Some("{\"day\":0}")));
        batch.add(plan("bo", Some("{}")));
        let place = |agent: &str, sector: &str| Write::KnownPlace {
            agent: agent.into(),
            sector: sector.into(),
        };
        batch.add(place("bo", "Willow Cafe"));
        batch.add(place("bo", "Riverside Park"));
        store.write(&batch).unwrap();
        // A plan given up is deleted; a new one replaces the old.
        let mut batch = Batch::default();
        batch.add(plan("bo", None));
        batch.add(plan("iris_chen", Some("{\"day\":1}")));
        // Places are added to what is known, written again harmlessly.
        batch.add(place("bo", "Willow Cafe"));
        batch.add(place("iris_chen", "Willow Cafe"));
        store.write(&batch).unwrap();
        drop(store);

        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(
            store.load().unwrap(),
            Saved {
                clock: Some(GameTime(90_000)),
                players: vec![ada(4), bob],
                memories: BTreeMap::new(),
                plans: BTreeMap::from([("iris_chen".into(), "{\"day\":1}".into())]),
                known_places: BTreeMap::from([
                    (
                        "bo".into(),
                        BTreeSet::from(["Riverside Park".into(), "Willow Cafe".into()])
                    ),
                    ("iris_chen".into(), BTreeSet::from(["Willow Cafe".into()])),
                ]),
            }
        );
        let mode: String = store
            .connection
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    fn memory(id: u32, embedded: bool) -> SavedMemory {
        SavedMemory {
            agent: "iris_chen".into(),
            memory: Memory {
                id: MemoryId(id),
                kind: if id == 0 {
                    MemoryKind::Thought
                } else {
                    MemoryKind::Event
                },
                created: GameTime(1_000 * u64::from(id)),
                last_accessed: GameTime(5_000),
                description: format!("memory {id}"),
                triple: (id > 0).then(|| Triple {
                    subject: "Bo".into(),
                    predicate: "is".into(),
                    object: "painting".into(),
                }),
                importance: embedded.then_some(7),
                keywords: vec![],
                evidence: if id == 2 {
                    vec![MemoryId(0), MemoryId(1)]
                } else {
                    vec![]
                },
            },
            embedding: embedded.then(|| vec![0.25, -1.5e-7, f32::MAX]),
        }
    }

    #[test]
    fn memories_survive_reopening_bit_for_bit_and_a_version_1_database_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("world.sqlite");
        // A database of the first schema, with a player in it.
        {
            let connection = Connection::open(&path).unwrap();
            connection.execute_batch(MIGRATIONS[0]).unwrap();
            connection.pragma_update(None, "user_version", 1).unwrap();
            connection
                .execute("INSERT INTO players VALUES (7, 'ada', 1, 2, NULL)", [])
                .unwrap();
        }
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let mut batch = Batch::default();
        for id in [2, 0, 1] {
            batch.add(Write::Memory(memory(id, id != 1)));
        }
        store.write(&batch).unwrap();
        drop(store);

        let saved = Store::open(&path).unwrap().load().unwrap();
        assert_eq!(saved.players.len(), 1, "the migration kept the player");
        let stream = &saved.memories["iris_chen"];
        let expected: Vec<(Memory, Option<Vec<f32>>)> = (0..3)
            .map(|id| memory(id, id != 1))
            .map(|m| (m.memory, m.embedding))
            .collect();
        assert_eq!(stream, &expected);
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
                 INSERT INTO players VALUES (1, 'ada', 70000, 3, NULL, 0);",
            )
            .unwrap();
        let e = store.load().unwrap_err().to_string();
        assert!(e.contains("edited.sqlite"), "{e}");

        // A memory row no server writes.
        store
            .connection
            .execute_batch(
                "DELETE FROM players;
                 INSERT INTO memories VALUES ('iris', 0, 'event', 5, 5, 'x', NULL, NULL, NULL,
                                              NULL, '', x'0102');",
            )
            .unwrap();
        let e = store.load().unwrap_err().to_string();
        assert!(
            e.contains("memory 0 of iris") && e.contains("2-byte"),
            "{e}"
        );

        let junk = dir.path().join("junk.sqlite");
        std::fs::write(&junk, vec![0x42; 4096]).unwrap();
        let e = Store::open(&junk).unwrap_err().to_string();
        assert!(e.contains("junk.sqlite"), "{e}");
        assert!(e.contains("not a database"), "{e}");
    }

    /// Before: every name that ever joined stayed as a row forever (264 after one 75 s run of
    /// joining names). Now rows carry when they were last saved, and old ones are forgotten.
    #[test]
    fn players_not_seen_for_long_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("world.sqlite")).unwrap();
        let mut batch = Batch::default();
        batch.add(Write::Player(ada(3)));
        store.write(&batch).unwrap();
        // Bob was last seen 100 days ago.
        store
            .connection
            .execute(
                "INSERT INTO players VALUES (9, 'bob', 1, 1, NULL, unixepoch() - 100 * 86400)",
                [],
            )
            .unwrap();
        let ninety_days = Duration::from_secs(90 * 86_400);
        assert_eq!(store.forget_players_unseen_for(ninety_days).unwrap(), 1);
        assert_eq!(store.load().unwrap().players, vec![ada(3)]);
        assert_eq!(store.forget_players_unseen_for(ninety_days).unwrap(), 0);
    }

    /// Before: each of these started a new, empty world without a word (exit 0, no players,
    /// the clock back at the start).
    #[test]
    fn a_file_that_holds_no_world_is_refused_and_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("truncated.sqlite");
        std::fs::write(&empty, b"").unwrap();
        let e = Store::open(&empty).unwrap_err().to_string();
        assert!(
            e.contains("truncated.sqlite is empty") && e.contains("--db"),
            "{e}"
        );
        assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);

        let other = dir.path().join("other.sqlite");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE recipes (name TEXT);")
            .unwrap();
        let before = std::fs::read(&other).unwrap();
        let e = Store::open(&other).unwrap_err().to_string();
        assert!(
            e.contains("not an Agora world (its tables: recipes)"),
            "{e}"
        );
        assert_eq!(
            std::fs::read(&other).unwrap(),
            before,
            "a refused file was changed"
        );

        // A world copied while its server runs: its pages are still in the WAL.
        let live = dir.path().join("live.sqlite");
        let mut store = Store::open(&live).unwrap();
        let mut batch = Batch::default();
        batch.add(Write::Clock(GameTime(90_000)));
        store.write(&batch).unwrap();
        let copy = dir.path().join("copy.sqlite");
        std::fs::copy(&live, &copy).unwrap();
        assert!(dir.path().join("live.sqlite-wal").exists());
        let e = Store::open(&copy).unwrap_err().to_string();
        assert!(
            e.contains("copy.sqlite-wal, which must be copied with it"),
            "{e}"
        );
        drop(store);
        // Copied with its WAL, it opens with the world in it.
        let whole = dir.path().join("whole.sqlite");
        std::fs::copy(&live, &whole).unwrap();
        if dir.path().join("live.sqlite-wal").exists() {
            std::fs::copy(
                dir.path().join("live.sqlite-wal"),
                dir.path().join("whole.sqlite-wal"),
            )
            .unwrap();
        }
        let reopened = Store::open(&whole).unwrap();
        assert_eq!(reopened.load().unwrap().clock, Some(GameTime(90_000)));
    }
}
