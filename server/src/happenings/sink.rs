use super::LogStats;
use agora_shared::events::EventRecord;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Where event batches go. `write` is called on the tick thread, so it must be cheap.
pub trait EventSink: Send + Sync + 'static {
    fn write(&mut self, batch: Vec<EventRecord>);
    /// Ends the stream; returns what was written, or why writing failed.
    /// Further writes are ignored.
    fn finish(&mut self) -> std::io::Result<LogStats>;
}

/// Discards events but counts them by kind (benchmarks, servers without a log).
#[derive(Default)]
pub struct NullSink {
    stats: LogStats,
}

impl NullSink {
    /// A sink that only counts, skipping serialisation entirely (for tick benchmarks).
    pub fn counting_only() -> Self {
        Self::default()
    }
}

impl EventSink for NullSink {
    fn write(&mut self, batch: Vec<EventRecord>) {
        for record in batch {
            self.stats.events += 1;
            *self
                .stats
                .by_kind
                .entry(record.event.kind().into())
                .or_default() += 1;
        }
    }

    fn finish(&mut self) -> std::io::Result<LogStats> {
        Ok(std::mem::take(&mut self.stats))
    }
}

/// Keeps every event in memory, for tests that inspect what happened.
#[derive(Clone, Default)]
pub struct MemorySink {
    pub records: Arc<Mutex<Vec<EventRecord>>>,
}

impl MemorySink {
    /// A copy of everything recorded so far.
    pub fn snapshot(&self) -> Vec<EventRecord> {
        self.records.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl EventSink for MemorySink {
    fn write(&mut self, batch: Vec<EventRecord>) {
        if let Ok(mut records) = self.records.lock() {
            records.extend(batch);
        }
    }

    fn finish(&mut self) -> std::io::Result<LogStats> {
        let mut stats = LogStats::default();
        for record in self.snapshot() {
            let line = serde_json::to_vec(&record).map_err(std::io::Error::other)?;
            stats.add_line(record.event.kind(), &line);
        }
        Ok(stats)
    }
}

/// Batches of events the tick thread may get ahead of the writer before it waits.
const WRITER_QUEUE_BATCHES: usize = 4096;

/// Writes `events.jsonl` on its own thread; the tick thread only sends batches. The file is
/// written through whenever the writer has caught up (every tick when serving), so a killed
/// process leaves a log that stops where it was killed.
pub struct JsonlFileSink {
    sender: Option<SyncSender<Vec<EventRecord>>>,
    writer: Option<JoinHandle<std::io::Result<LogStats>>>,
}

impl JsonlFileSink {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::File::create(path)?;
        let (sender, receiver) = sync_channel::<Vec<EventRecord>>(WRITER_QUEUE_BATCHES);
        let shown = path.display().to_string();
        let writer = std::thread::Builder::new()
            .name("event-log-writer".into())
            .spawn(move || {
                let written = write_batches(file, receiver);
                // Said at once, from here: the tick thread only learns of it at its next send,
                // and the exit status at the end.
                if let Err(e) = &written {
                    bevy::log::error!(
                        "writing the event log {shown} failed: {e}; events from now on are lost"
                    );
                }
                written
            })?;
        Ok(Self {
            sender: Some(sender),
            writer: Some(writer),
        })
    }
}

/// The writer thread: every batch to the file, until the sending side closes.
fn write_batches(
    file: std::fs::File,
    receiver: Receiver<Vec<EventRecord>>,
) -> std::io::Result<LogStats> {
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut stats = LogStats::default();
    let mut line = Vec::with_capacity(256);
    loop {
        // Whenever it has caught up, what it wrote goes to the file before it
        // waits: a killed server loses at most the batches in flight, not a buffer.
        let batch = match receiver.try_recv() {
            Ok(batch) => batch,
            Err(TryRecvError::Empty) => {
                out.flush()?;
                match receiver.recv() {
                    Ok(batch) => batch,
                    Err(_) => break,
                }
            }
            Err(TryRecvError::Disconnected) => break,
        };
        for record in batch {
            line.clear();
            serde_json::to_writer(&mut line, &record).map_err(std::io::Error::other)?;
            stats.add_line(record.event.kind(), &line);
            out.write_all(&line)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(stats)
}

impl EventSink for JsonlFileSink {
    fn write(&mut self, batch: Vec<EventRecord>) {
        if let Some(sender) = &self.sender
            && sender.send(batch).is_err()
        {
            bevy::log::warn!("the event log writer has stopped (see its error above)");
            self.sender = None;
        }
    }

    fn finish(&mut self) -> std::io::Result<LogStats> {
        self.sender = None;
        match self.writer.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(std::io::Error::other("the event log writer panicked")),
            None => Ok(LogStats::default()),
        }
    }
}

impl Drop for JsonlFileSink {
    fn drop(&mut self) {
        if let Err(e) = self.finish() {
            bevy::log::error!("writing the event log failed: {e}");
        }
    }
}
