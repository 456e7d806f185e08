//! The database writer: a thread that owns the store and commits what the tick hands it, so a
//! tick never waits on the disk. Writes that arrive while a commit runs are gathered into the
//! next one (the latest value of each row wins), so a slow disk makes commits bigger, not the
//! tick slower. A failed commit is kept and retried with the next one: nothing is dropped,
//! and the pending rows stay bounded (one per player, one per memory, one clock).

use super::store::{Batch, Store, Write};
use bevy::log::{error, warn};
use bevy::prelude::Resource;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

enum Message {
    Write(Write),
    /// Answer once everything sent before has been committed (or the commit failed).
    Flush(Sender<Result<(), String>>),
}

/// The handle the world uses to save; dropping it commits what is pending and stops the thread.
#[derive(Resource)]
pub struct Persistence {
    sender: Option<Sender<Message>>,
    thread: Option<JoinHandle<()>>,
    counts: Arc<Counts>,
    path: PathBuf,
}

#[derive(Default)]
struct Counts {
    commits: AtomicU64,
    failures: AtomicU64,
    stopped: AtomicBool,
}

impl std::fmt::Debug for Persistence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persistence")
            .field("path", &self.path)
            .field("commits", &self.commits())
            .field("failures", &self.failures())
            .finish()
    }
}

impl Persistence {
    pub fn start(store: Store) -> Self {
        let (sender, receiver) = channel();
        let counts = Arc::new(Counts::default());
        let path = store.path().to_path_buf();
        let thread = std::thread::Builder::new()
            .name("agora-db-writer".into())
            .spawn({
                let counts = counts.clone();
                move || write_loop(store, &receiver, &counts)
            })
            .expect("the OS starts a thread");
        Self {
            sender: Some(sender),
            thread: Some(thread),
            counts,
            path,
        }
    }

    /// Queues a change; never blocks.
    pub fn save(&self, write: Write) {
        let sent = self
            .sender
            .as_ref()
            .is_some_and(|s| s.send(Message::Write(write)).is_ok());
        // The thread ends only when this handle drops, or if it panicked: say so, once.
        if !sent && !self.counts.stopped.swap(true, Ordering::Relaxed) {
            error!(
                "the database writer for {} has stopped: changes are no longer saved",
                self.path.display()
            );
        }
    }

    /// Waits until everything queued so far is committed. Blocks: for shutdown and tests,
    /// never inside a tick.
    pub fn flush(&self) -> Result<(), String> {
        let (ack, done) = channel();
        self.sender
            .as_ref()
            .and_then(|s| s.send(Message::Flush(ack)).ok())
            .ok_or("the database writer has stopped")?;
        done.recv()
            .map_err(|_| "the database writer has stopped".to_string())?
    }

    pub fn commits(&self) -> u64 {
        self.counts.commits.load(Ordering::Relaxed)
    }

    /// Commits that failed (each is retried with the next).
    pub fn failures(&self) -> u64 {
        self.counts.failures.load(Ordering::Relaxed)
    }
}

impl Drop for Persistence {
    fn drop(&mut self) {
        self.sender.take();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            error!("the database writer for {} panicked", self.path.display());
        }
    }
}

fn write_loop(mut store: Store, receiver: &Receiver<Message>, counts: &Counts) {
    let mut pending = Batch::default();
    let mut failing = Failing::default();
    while let Ok(first) = receiver.recv() {
        let mut acks = Vec::new();
        for message in std::iter::once(first).chain(receiver.try_iter()) {
            match message {
                Message::Write(write) => pending.add(write),
                Message::Flush(ack) => acks.push(ack),
            }
        }
        let result = commit(&mut store, &mut pending, counts);
        failing.report(&result, &store, pending.len());
        for ack in acks {
            let _ = ack.send(result.clone());
        }
    }
    // The handle dropped: commit what is left.
    if commit(&mut store, &mut pending, counts).is_err() {
        error!(
            "{} rows were not saved to {}",
            pending.len(),
            store.path().display()
        );
    }
}

/// How often a failure that goes on (a full disk) is reported again.
const REPORT_FAILURES_EVERY: Duration = Duration::from_secs(30);

/// A run of failed commits: the first is reported at once, then one line every
/// [`REPORT_FAILURES_EVERY`] while it lasts (a commit is tried every half second), and its end.
#[derive(Default)]
struct Failing {
    attempts: u64,
    reported: Option<Instant>,
}

impl Failing {
    fn report(&mut self, result: &Result<(), String>, store: &Store, waiting: usize) {
        let path = store.path().display();
        match result {
            Ok(()) if self.attempts > 0 => {
                warn!(
                    "saving to {path} works again, after {} failed attempts",
                    self.attempts
                );
                *self = Self::default();
            }
            Ok(()) => {}
            Err(e) => {
                self.attempts += 1;
                if self.attempts == 1 {
                    error!("saving failed (will retry with the next write): {e}");
                    self.reported = Some(Instant::now());
                } else if self
                    .reported
                    .is_none_or(|t| t.elapsed() >= REPORT_FAILURES_EVERY)
                {
                    error!(
                        "saving still fails after {} attempts ({waiting} rows waiting): {e}",
                        self.attempts
                    );
                    self.reported = Some(Instant::now());
                }
            }
        }
    }
}

fn commit(store: &mut Store, pending: &mut Batch, counts: &Counts) -> Result<(), String> {
    if pending.is_empty() {
        return Ok(());
    }
    match store.write(pending) {
        Ok(()) => {
            counts.commits.fetch_add(1, Ordering::Relaxed);
            *pending = Batch::default();
            Ok(())
        }
        Err(e) => {
            counts.failures.fetch_add(1, Ordering::Relaxed);
            Err(e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::store::SavedPlayer;
    use agora_shared::{GameTime, TilePos};

    #[test]
    fn queued_writes_are_committed_and_readable_while_the_writer_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("world.sqlite");
        let persistence = Persistence::start(Store::open(&path).unwrap());
        for x in 0..100 {
            persistence.save(Write::Player(SavedPlayer {
                client_id: 1,
                name: "ada".into(),
                tile: TilePos::new(x, 1),
                team: None,
            }));
        }
        persistence.save(Write::Clock(GameTime(5)));
        persistence.flush().unwrap();
        assert!(persistence.commits() >= 1);
        // A second connection (a researcher's, say) reads the committed state meanwhile.
        let saved = Store::open(&path).unwrap().load().unwrap();
        assert_eq!(saved.players[0].tile, TilePos::new(99, 1));
        assert_eq!(saved.clock, Some(GameTime(5)));
        assert_eq!(persistence.failures(), 0);
    }

    #[test]
    fn dropping_the_handle_commits_what_is_pending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("world.sqlite");
        let persistence = Persistence::start(Store::open(&path).unwrap());
        persistence.save(Write::Clock(GameTime(42)));
        drop(persistence);
        let saved = Store::open(&path).unwrap().load().unwrap();
        assert_eq!(saved.clock, Some(GameTime(42)));
    }
}
