//! Progress of a run on stderr: a bar on a terminal, a plain line every 10% otherwise.

use agora_shared::GameTime;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Instant;

pub(super) struct Progress {
    mode: Mode,
    total: u64,
    started: Instant,
    next_plain_percent: u64,
}

enum Mode {
    Off,
    Bar(ProgressBar),
    Plain,
}

impl Progress {
    pub fn new(enabled: bool, total: u64) -> Self {
        let mode = if !enabled {
            Mode::Off
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% {msg} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            Mode::Bar(bar)
        } else {
            Mode::Plain
        };
        Self {
            mode,
            total,
            started: Instant::now(),
            next_plain_percent: 10,
        }
    }

    pub fn update(&mut self, done: u64, now: GameTime) {
        let rate = done as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        match &self.mode {
            Mode::Off => {}
            Mode::Bar(bar) => {
                if done.is_multiple_of(64) || done == self.total {
                    bar.set_position(done);
                    bar.set_message(format!("{now} | {rate:.0} ticks/s"));
                }
            }
            Mode::Plain => {
                let percent = done * 100 / self.total.max(1);
                if percent >= self.next_plain_percent {
                    let eta = (self.total - done) as f64 / rate.max(1e-9);
                    eprintln!(
                        "sim: {percent:>3}% game time {now}, {rate:.0} ticks/s, ETA {eta:.0}s"
                    );
                    self.next_plain_percent = percent / 10 * 10 + 10;
                }
            }
        }
    }

    pub fn finish(&self) {
        if let Mode::Bar(bar) = &self.mode {
            bar.finish_and_clear();
        }
    }
}
