//! Speech: a line said aloud is heard by every actor within earshot, the speaker included.
//! It becomes a `said` happening, a [`Heard`] message per listener (what cognition and the
//! network read), and a `heard` line in the log for each listener who is not a player.

use super::Player;
use crate::happenings::{Happened, Heard};
use crate::world::{ActorId, Occupancy};
use agora_shared::TilePos;
use agora_shared::events::Event;
use bevy::prelude::*;

/// Tiles (Chebyshev) within which speech is heard.
pub const EARSHOT: u16 = 4;

/// Without invisible characters (controls, right-to-left overrides, zero-width characters,
/// line separators: [`agora_shared::text::visible`]), trimmed, 1..=max characters; else
/// `None`. The rule for every actor's words (and team names): a model's line is held to it as
/// a player's is.
pub fn clean_text(text: &str, max: usize) -> Option<String> {
    let cleaned = agora_shared::text::visible(text);
    let count = cleaned.chars().count();
    (1..=max).contains(&count).then_some(cleaned)
}

/// `speaker` (at `tile`) says `text`, already cleaned.
pub(super) fn say(
    occupancy: &Occupancy,
    listeners: &Query<(&ActorId, Has<Player>)>,
    happened: &mut MessageWriter<Happened>,
    heard: &mut MessageWriter<Heard>,
    (speaker, speaker_id, tile): (Entity, &ActorId, TilePos),
    text: String,
) {
    happened.write(Happened(Event::Said {
        speaker: speaker_id.0.clone(),
        text: text.clone(),
        tile,
    }));
    for listener in occupancy.within(tile, EARSHOT) {
        let Ok((listener_id, is_player)) = listeners.get(listener) else {
            continue;
        };
        if listener != speaker && !is_player {
            happened.write(Happened(Event::Heard {
                agent: listener_id.0.clone(),
                speaker: speaker_id.0.clone(),
                text: text.clone(),
            }));
        }
        heard.write(Heard {
            listener,
            speaker,
            text: text.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_cleaned_and_bounded() {
        assert_eq!(clean_text("  hi\tthere\n ", 10), Some("hi there".into()));
        assert_eq!(clean_text("   ", 10), None);
        assert_eq!(clean_text(&"x".repeat(11), 10), None);
        assert_eq!(clean_text(&"é".repeat(10), 10), Some("é".repeat(10)));
        // Before: these passed into chat, team names and the log.
        assert_eq!(
            clean_text("evil\u{202E}txt.exe", 20),
            Some("eviltxt.exe".into())
        );
        assert_eq!(clean_text("\u{200B}", 10), None, "a lone zero-width space");
        assert_eq!(clean_text("a\u{2028}b", 10), Some("a b".into()));
    }
}
