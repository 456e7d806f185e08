//! Game time: an absolute instant ([`GameTime`]) and a time of day ([`ClockTime`]).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

pub const MS_PER_MINUTE: u64 = 60_000;
pub const MINUTES_PER_DAY: u16 = 24 * 60;
pub const MS_PER_DAY: u64 = MINUTES_PER_DAY as u64 * MS_PER_MINUTE;

/// An instant in game time, in milliseconds since midnight at the start of day 1.
///
/// Integer milliseconds keep runs exactly reproducible (no float drift) and cover both the
/// 10-second ticks of a simulation and the 50 ms ticks of a real-time server.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct GameTime(pub u64);

impl GameTime {
    /// Midnight at the start of `day` (1-based) plus a time of day.
    pub fn at(day: u32, clock: ClockTime) -> Self {
        let day = u64::from(day.max(1) - 1);
        GameTime(day * MS_PER_DAY + u64::from(clock.minutes()) * MS_PER_MINUTE)
    }

    pub fn from_minutes(minutes: u64) -> Self {
        GameTime(minutes * MS_PER_MINUTE)
    }

    /// 1-based day number.
    pub fn day(self) -> u32 {
        (self.0 / MS_PER_DAY) as u32 + 1
    }

    /// Time of day, truncated to the minute.
    pub fn clock(self) -> ClockTime {
        ClockTime(((self.0 % MS_PER_DAY) / MS_PER_MINUTE) as u16)
    }

    /// Whole minutes since the start of day 1.
    pub fn total_minutes(self) -> u64 {
        self.0 / MS_PER_MINUTE
    }

    pub fn plus_minutes(self, minutes: u64) -> Self {
        GameTime(self.0 + minutes * MS_PER_MINUTE)
    }

    /// Game hours as a float, for reports.
    pub fn hours_f64(self) -> f64 {
        self.0 as f64 / (60.0 * MS_PER_MINUTE as f64)
    }
}

impl fmt::Display for GameTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = (self.0 / 1000) % 60;
        write!(f, "day {} {}:{secs:02}", self.day(), self.clock())
    }
}

/// Parses "HH:MM" (day 1) or "day D HH:MM".
impl FromStr for GameTime {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some(rest) = s.strip_prefix("day ") {
            let (day, clock) = rest
                .trim()
                .split_once(' ')
                .ok_or_else(|| format!("expected \"day D HH:MM\", got {s:?}"))?;
            let day: u32 = day
                .parse()
                .ok()
                .filter(|d| *d >= 1)
                .ok_or_else(|| format!("day must be a number from 1, got {day:?}"))?;
            Ok(GameTime::at(day, clock.parse()?))
        } else {
            Ok(GameTime::at(1, s.parse()?))
        }
    }
}

/// A time of day, minutes after midnight (0..1440). Written "HH:MM" in files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClockTime(u16);

impl ClockTime {
    pub fn new(hour: u8, minute: u8) -> Option<Self> {
        (hour < 24 && minute < 60).then(|| ClockTime(u16::from(hour) * 60 + u16::from(minute)))
    }

    pub fn from_minutes(minutes: u16) -> Self {
        ClockTime(minutes % MINUTES_PER_DAY)
    }

    pub fn minutes(self) -> u16 {
        self.0
    }

    pub fn hour(self) -> u8 {
        (self.0 / 60) as u8
    }

    pub fn minute(self) -> u8 {
        (self.0 % 60) as u8
    }

    /// Minutes from `self` forward to `later`, wrapping past midnight (0..1440).
    pub fn minutes_until(self, later: ClockTime) -> u16 {
        (later.0 + MINUTES_PER_DAY - self.0) % MINUTES_PER_DAY
    }
}

impl fmt::Display for ClockTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour(), self.minute())
    }
}

impl FromStr for ClockTime {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (h, m) = s
            .split_once(':')
            .ok_or_else(|| format!("expected \"HH:MM\", got {s:?}"))?;
        let digits = |part: &str| {
            (!part.is_empty() && part.len() <= 2 && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse::<u8>().ok())
                .flatten()
        };
        let hour = digits(h).ok_or_else(|| format!("expected \"HH:MM\", got {s:?}"))?;
        let minute = digits(m)
            .filter(|_| m.len() == 2)
            .ok_or_else(|| format!("expected \"HH:MM\", got {s:?}"))?;
        if hour > 23 {
            return Err(format!(
                "hour {hour} is out of range, expected \"HH:MM\" with HH 00-23"
            ));
        }
        if minute > 59 {
            return Err(format!(
                "minute {minute} is out of range, expected \"HH:MM\" with MM 00-59"
            ));
        }
        Ok(ClockTime(u16::from(hour) * 60 + u16::from(minute)))
    }
}

impl Serialize for ClockTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ClockTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_parses_and_prints() {
        let t: ClockTime = "06:30".parse().unwrap();
        assert_eq!(t.minutes(), 390);
        assert_eq!(t.to_string(), "06:30");
        assert_eq!("7:05".parse::<ClockTime>().unwrap().to_string(), "07:05");
    }

    #[test]
    fn clock_rejects_out_of_range_and_garbage() {
        assert!(
            "27:00"
                .parse::<ClockTime>()
                .unwrap_err()
                .contains("hour 27")
        );
        assert!(
            "12:75"
                .parse::<ClockTime>()
                .unwrap_err()
                .contains("minute 75")
        );
        for bad in ["", "1200", "ab:cd", "12:5", "-1:00", "12:00:00"] {
            assert!(bad.parse::<ClockTime>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn minutes_until_wraps_midnight() {
        let late: ClockTime = "23:00".parse().unwrap();
        let early: ClockTime = "01:30".parse().unwrap();
        assert_eq!(late.minutes_until(early), 150);
        assert_eq!(early.minutes_until(late), 1290);
    }

    #[test]
    fn game_time_days_and_clock() {
        let t: GameTime = "day 2 07:15".parse().unwrap();
        assert_eq!(t.day(), 2);
        assert_eq!(t.clock().to_string(), "07:15");
        assert_eq!(t.to_string(), "day 2 07:15:00");
        assert_eq!("00:00".parse::<GameTime>().unwrap(), GameTime(0));
        assert!("day 0 01:00".parse::<GameTime>().is_err());
    }
}
