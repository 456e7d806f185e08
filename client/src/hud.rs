//! What the player reads over the town: the clock and who is around (top left), the
//! connection when it is not live (middle), the chat (bottom left), and the round's panel (top
//! right), which stays empty until the Director runs rounds.

use crate::ClientSystems;
use crate::net::{Connection, Link, ServerOptions};
use crate::play::chat::ChatBox;
use crate::town::actors::Actor;
use crate::town::speech::ChatLog;
use crate::town::{Clock, TownUpdate};
use agora_shared::protocol::{EntityKind, ServerMessage};
use bevy::prelude::*;

/// Chat lines shown.
const CHAT_LINES: usize = 8;

#[derive(Component)]
pub struct ClockText;
#[derive(Component)]
pub struct StatusText;
#[derive(Component)]
pub struct ChatText;
#[derive(Component)]
pub struct RoundText;

/// Players in the world, as the server (or the replayed log) last said; `None` until told.
#[derive(Resource, Default, Debug)]
pub struct Online(pub Option<u32>);

pub fn plugin(app: &mut App) {
    app.init_resource::<Online>()
        .add_systems(Startup, spawn_hud)
        .add_systems(Update, count_online.in_set(ClientSystems::Apply))
        .add_systems(
            Update,
            (clock_text, status_text, chat_text).in_set(ClientSystems::Present),
        );
}

fn count_online(mut updates: MessageReader<TownUpdate>, mut online: ResMut<Online>) {
    for update in updates.read() {
        match update {
            TownUpdate::Server(ServerMessage::Online { players }) => online.0 = Some(*players),
            TownUpdate::Reset => online.0 = None,
            _ => {}
        }
    }
}

pub fn panel() -> BackgroundColor {
    BackgroundColor(Color::srgba(0.05, 0.06, 0.08, 0.78))
}

pub fn text(size: f32) -> (TextFont, TextColor) {
    (
        TextFont::from_font_size(size),
        TextColor(Color::srgb(0.93, 0.93, 0.9)),
    )
}

fn spawn_hud(mut commands: Commands) {
    let padding = UiRect::axes(Val::Px(10.0), Val::Px(6.0));
    commands.spawn((
        ClockText,
        Text::new("connecting..."),
        text(18.0),
        panel(),
        Node {
            position_type: PositionType::Absolute,
            left: Val::Px(10.0),
            top: Val::Px(10.0),
            padding,
            border_radius: BorderRadius::all(Val::Px(4.0)),
            ..default()
        },
    ));
    commands.spawn((
        RoundText,
        Text::new("No round running"),
        text(15.0),
        panel(),
        Node {
            position_type: PositionType::Absolute,
            right: Val::Px(10.0),
            top: Val::Px(10.0),
            padding,
            border_radius: BorderRadius::all(Val::Px(4.0)),
            ..default()
        },
    ));
    commands.spawn((
        StatusText,
        Text::new(""),
        text(22.0),
        panel(),
        TextLayout::justify(Justify::Center),
        Node {
            position_type: PositionType::Absolute,
            left: Val::Percent(15.0),
            right: Val::Percent(15.0),
            top: Val::Percent(40.0),
            padding: UiRect::all(Val::Px(14.0)),
            border_radius: BorderRadius::all(Val::Px(4.0)),
            ..default()
        },
    ));
    // The chat wraps in a box of a set width: a text node positioned on its own is measured
    // narrower than the room it has.
    commands
        .spawn((
            panel(),
            Node {
                position_type: PositionType::Absolute,
                left: Val::Px(10.0),
                bottom: Val::Px(10.0),
                width: Val::Percent(42.0),
                flex_direction: FlexDirection::Column,
                padding,
                border_radius: BorderRadius::all(Val::Px(4.0)),
                ..default()
            },
        ))
        .with_child((ChatText, Text::new(""), text(15.0)));
}

fn clock_text(
    clock: Res<Clock>,
    link: Res<Link>,
    online: Res<Online>,
    actors: Query<&Actor>,
    mut texts: Query<&mut Text, With<ClockText>>,
) {
    let (mut players, mut agents) = (0, 0);
    for actor in &actors {
        match actor.kind {
            EntityKind::Player => players += 1,
            EntityKind::Agent => agents += 1,
        }
    }
    let when = clock.now().map_or_else(
        || "--:--".to_string(),
        |t| format!("Day {} {}", t.day(), t.clock()),
    );
    let world = if link.world.is_empty() {
        "Agora"
    } else {
        &link.world
    };
    let plural = |n: usize, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
    let in_world = online.0.map_or_else(String::new, |n| {
        format!("{} online\n", plural(n as usize, "player"))
    });
    let line = format!(
        "{world}  {when}\n{in_world}{}, {} in view",
        plural(players, "player"),
        plural(agents, "agent")
    );
    for mut text in &mut texts {
        if text.0 != line {
            text.0 = line.clone();
        }
    }
}

/// The connection in words while it is not live; nothing while playing.
/// `can_go_back`: the player typed where to connect, and may change it.
pub fn status_line(
    state: Connection,
    link: &Link,
    server: &ServerOptions,
    can_go_back: bool,
) -> String {
    match state {
        Connection::Playing | Connection::Choosing => String::new(),
        Connection::GettingToken => format!("Getting a token for {}...", server.addr),
        Connection::Connecting => format!("Connecting to {}...", server.addr),
        Connection::Lost => {
            let why = link.problem.as_deref().unwrap_or("not connected");
            let next = match link.retry_at {
                Some(at) => format!(
                    "Trying again in {} s (attempt {}).",
                    at.saturating_duration_since(std::time::Instant::now())
                        .as_secs_f32()
                        .ceil(),
                    link.failures + 1
                ),
                None => "This will not fix itself: see the message above.".to_string(),
            };
            let back = if can_go_back {
                "\nEscape: back to the connect screen."
            } else {
                ""
            };
            format!("{why}\n{next}{back}")
        }
    }
}

fn status_text(
    state: Option<Res<State<Connection>>>,
    link: Res<Link>,
    server: Option<Res<ServerOptions>>,
    form: Option<Res<crate::connect::ConnectForm>>,
    mut texts: Query<(&mut Text, &mut Visibility), With<StatusText>>,
) {
    // Only a live town has a connection to speak of.
    let line = match (state, server) {
        (Some(state), Some(server)) => status_line(*state.get(), &link, &server, form.is_some()),
        _ => String::new(),
    };
    for (mut text, mut visibility) in &mut texts {
        *visibility = if line.is_empty() {
            Visibility::Hidden
        } else {
            Visibility::Inherited
        };
        if text.0 != line {
            text.0 = line.clone();
        }
    }
}

fn chat_text(
    log: Res<ChatLog>,
    chat: Res<ChatBox>,
    replay: Option<Res<crate::replay::Replay>>,
    mut texts: Query<(&mut Text, &ChildOf), With<ChatText>>,
    mut boxes: Query<&mut Visibility>,
) {
    let mut lines: Vec<String> = (log.0.iter().rev().take(CHAT_LINES).rev())
        .map(|(who, what)| format!("{who}: {what}"))
        .collect();
    // A replay has nobody to talk to: it shows what was said, and no hint.
    if replay.is_none() {
        lines.push(if chat.open {
            format!("> {}_", chat.text)
        } else {
            "Enter to talk, click to walk, /team NAME, /leave".into()
        });
    }
    let all = lines.join("\n");
    for (mut text, parent) in &mut texts {
        if text.0 != all {
            text.0 = all.clone();
        }
        // Nothing said yet in a replay: no empty box over the town.
        if let Ok(mut visibility) = boxes.get_mut(parent.parent()) {
            let shown = if all.is_empty() {
                Visibility::Hidden
            } else {
                Visibility::Inherited
            };
            visibility.set_if_neq(shown);
        }
    }
}
