//! The inspector's panel, on the right under the round's: the [`Inspection`] in words, cut to
//! fit a 720-pixel window (the server sends more than fits; the newest is kept).

use super::Inspector;
use crate::ClientSystems;
use crate::hud::{panel as panel_colour, text};
use crate::town::Clock;
use crate::town::actors::one_line as short;
use agora_shared::GameTime;
use agora_shared::events::PlanItem;
use agora_shared::protocol::{Inspection, MemoryNote};
use bevy::prelude::*;

/// Plan stretches shown: the one under way and those after it.
const PLAN_LINES: usize = 6;
const STEP_LINES: usize = 4;
const MEMORY_LINES: usize = 6;
const REFLECTION_LINES: usize = 3;
/// Longest line of the panel, in characters.
const LINE_CHARS: usize = 64;

#[derive(Component)]
pub struct InspectorText;

pub fn plugin(app: &mut App) {
    app.add_systems(Update, show.in_set(ClientSystems::Present));
}

/// "Willow Cafe, cafe, counter" for "Maple Hollow:Willow Cafe:cafe:counter": the town's name
/// is the same everywhere.
pub fn place(address: &str) -> String {
    let parts: Vec<&str> = address.split(':').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        [] => String::new(),
        [only] => only.to_string(),
        [_, rest @ ..] => rest.join(", "),
    }
}

fn span(item: &PlanItem) -> String {
    format!("{}-{}", item.start.clock(), item.end.clock())
}

fn memory_line(note: &MemoryNote) -> String {
    let rated = if note.importance == 0 {
        "-".to_string()
    } else {
        note.importance.to_string()
    };
    short(
        &format!("  {} [{rated}] {}", note.created.clock(), note.text),
        LINE_CHARS,
    )
}

/// The panel's words for `inspection` at `now`; `out_of_view` adds that it is no longer live.
pub fn inspector_text(inspection: &Inspection, now: Option<GameTime>, out_of_view: bool) -> String {
    let mut lines = Vec::new();
    let age = if inspection.age > 0 {
        format!(", {}", inspection.age)
    } else {
        String::new()
    };
    lines.push(short(
        &format!("{}{age}   (Esc closes)", inspection.name),
        LINE_CHARS,
    ));
    if !inspection.traits.is_empty() {
        lines.push(short(&inspection.traits.join(", "), LINE_CHARS));
    }
    if !inspection.occupation.is_empty() {
        lines.push(short(&inspection.occupation, LINE_CHARS));
    }
    if out_of_view {
        lines.push("(out of view: as last seen)".into());
    }
    let doing = if inspection.activity.is_empty() {
        "nothing in particular".to_string()
    } else {
        inspection.activity.clone()
    };
    let at = place(&inspection.location);
    let at = if at.is_empty() {
        String::new()
    } else {
        format!(" at {at}")
    };
    lines.push(short(&format!("Now: {doing}{at}"), LINE_CHARS));

    if let Some(intent) = &inspection.intent {
        lines.push(short(&format!("Wants to: {intent}"), LINE_CHARS));
    }
    if inspection.plan.is_empty() {
        lines.push("Plan: none made (its routine)".into());
    } else {
        lines.push("Plan:".into());
        let from = now.map_or(0, |now| {
            inspection
                .plan
                .iter()
                .position(|s| s.end > now)
                .unwrap_or(inspection.plan.len())
        });
        for item in inspection.plan.iter().skip(from).take(PLAN_LINES) {
            let under_way = now.is_some_and(|now| item.start <= now && now < item.end);
            let mark = if under_way { ">" } else { " " };
            lines.push(short(
                &format!("{mark} {} {}", span(item), item.activity),
                LINE_CHARS,
            ));
        }
        for step in inspection.steps.iter().take(STEP_LINES) {
            lines.push(short(
                &format!("      {} {}", span(step), step.activity),
                LINE_CHARS,
            ));
        }
    }
    if inspection.memories.is_empty() {
        lines.push("Memories: none".into());
    } else {
        lines.push("Memories (newest first, [importance]):".into());
        lines.extend(
            inspection
                .memories
                .iter()
                .take(MEMORY_LINES)
                .map(memory_line),
        );
    }
    if !inspection.reflections.is_empty() {
        lines.push("Reflections:".into());
        let shown = inspection.reflections.iter().take(REFLECTION_LINES);
        lines.extend(shown.map(memory_line));
    }
    lines.join("\n")
}

fn show(
    mut commands: Commands,
    inspector: Res<Inspector>,
    clock: Res<Clock>,
    replay: Option<Res<crate::replay::Replay>>,
    mut panels: Query<(Entity, &mut Text, &ChildOf), With<InspectorText>>,
) {
    let words = match (&inspector.target, &inspector.shown) {
        (None, _) => None,
        (Some(_), None) => Some("Asking...".to_string()),
        (Some(_), Some(shown)) => {
            let now = match &replay {
                Some(replay) => Some(GameTime(replay.now as u64)),
                None => clock.now(),
            };
            Some(inspector_text(shown, now, inspector.out_of_view))
        }
    };
    match (words, panels.single_mut()) {
        (None, Ok((_, _, parent))) => commands.entity(parent.parent()).despawn(),
        (None, Err(_)) => {}
        (Some(words), Ok((_, mut text, _))) => {
            if text.0 != words {
                text.0 = words;
            }
        }
        (Some(words), Err(_)) => {
            // A box of a set width holding the text: a text node positioned on its own is
            // measured narrower than it is drawn, and its background runs past its words.
            commands
                .spawn((
                    panel_colour(),
                    // Clicks on the panel are not clicks on the town under it.
                    Interaction::default(),
                    Node {
                        position_type: PositionType::Absolute,
                        right: Val::Px(10.0),
                        top: Val::Px(64.0),
                        width: Val::Px(LINE_CHARS as f32 * 8.6 + 20.0),
                        max_width: Val::Percent(50.0),
                        flex_direction: FlexDirection::Column,
                        padding: UiRect::axes(Val::Px(10.0), Val::Px(6.0)),
                        border_radius: BorderRadius::all(Val::Px(4.0)),
                        ..default()
                    },
                ))
                .with_child((InspectorText, Text::new(words), text(14.0)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_drop_the_town() {
        assert_eq!(
            place("Maple Hollow:Willow Cafe:cafe:counter"),
            "Willow Cafe, cafe, counter"
        );
        assert_eq!(place("Maple Hollow"), "Maple Hollow");
        assert_eq!(place(""), "");
    }

    #[test]
    fn the_panel_says_what_the_server_said_and_no_more() {
        let at = |c: &str| c.parse::<GameTime>().unwrap();
        let item = |start: &str, end: &str, activity: &str| PlanItem {
            start: at(start),
            end: at(end),
            activity: activity.into(),
            location: String::new(),
        };
        let routine = Inspection {
            name: "Iris Chen".into(),
            age: 31,
            activity: "painting".into(),
            location: "town:Studio:loft:easel".into(),
            ..Inspection::default()
        };
        let words = inspector_text(&routine, Some(at("09:00")), false);
        assert!(words.starts_with("Iris Chen, 31"), "{words}");
        assert!(
            words.contains("Now: painting at Studio, loft, easel"),
            "{words}"
        );
        assert!(words.contains("Plan: none made"), "{words}");
        assert!(words.contains("Memories: none"), "{words}");

        let planned = Inspection {
            intent: Some("see the harvest party".into()),
            plan: vec![
                item("07:00", "08:00", "breakfast"),
                item("08:00", "12:00", "painting"),
                item("12:00", "13:00", "lunch"),
            ],
            steps: vec![item("09:00", "09:15", "mixing colours")],
            memories: vec![MemoryNote {
                id: 3,
                created: at("08:55"),
                kind: "chat".into(),
                importance: 6,
                text: "Ada said: \"the party is at six\"".into(),
            }],
            ..routine
        };
        let words = inspector_text(&planned, Some(at("09:00")), true);
        assert!(words.contains("(out of view"), "{words}");
        assert!(words.contains("Wants to: see the harvest party"), "{words}");
        assert!(
            !words.contains("breakfast"),
            "what is over is not shown: {words}"
        );
        assert!(words.contains("> 08:00-12:00 painting"), "{words}");
        assert!(words.contains("  12:00-13:00 lunch"), "{words}");
        assert!(words.contains("09:00-09:15 mixing colours"), "{words}");
        assert!(words.contains("08:55 [6] Ada said"), "{words}");
        assert!(
            words.lines().all(|l| l.chars().count() <= LINE_CHARS),
            "{words}"
        );
    }
}
