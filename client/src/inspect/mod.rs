//! The agent inspector: click an agent (or name it with `--inspect NAME`) to see who it is,
//! what it is doing and where, its plan for the day and its latest memories and reflections;
//! Escape closes it. It asks with
//! [`ClientMessage::Inspect`] while it is open (every [`REFRESH`]) and shows the
//! [`ServerMessage::Inspected`] answers, live from the server or, in a replay, from the log
//! (which answers the same question). [`panel`] draws it.

pub mod panel;

use crate::ClientSystems;
use crate::net::Outgoing;
use crate::play::chat::ChatBox;
use crate::town::TownUpdate;
use crate::town::actors::{Actor, agent_at};
use agora_shared::protocol::{ClientMessage, Inspection, NetId, ServerMessage};
use bevy::prelude::*;
use std::time::Duration;

/// How often an open inspector asks again: within the server's 2 a second, with room for the
/// player to click through agents.
pub const REFRESH: Duration = Duration::from_secs(2);

/// Whom the inspector shows, and what it last heard.
#[derive(Resource, Default, Debug)]
pub struct Inspector {
    pub target: Option<NetId>,
    pub shown: Option<Inspection>,
    /// The agent left view: what was last heard stays, and no more is asked.
    pub out_of_view: bool,
    /// Counts down to the next ask.
    next_ask: Option<Timer>,
}

/// `--inspect NAME`: the agent to open the inspector on once it is in view (for following
/// one agent through a replay, and for screenshots).
#[derive(Resource, Clone, Debug)]
pub struct InspectAtStart(pub String);

impl Inspector {
    /// Opens on `id` (asking at once).
    pub fn open(&mut self, id: NetId) {
        if self.target != Some(id) {
            self.shown = None;
        }
        self.target = Some(id);
        self.out_of_view = false;
        self.next_ask = None;
    }

    pub fn close(&mut self) {
        *self = Self::default();
    }
}

pub fn plugin(app: &mut App) {
    app.init_resource::<Inspector>()
        .add_plugins(panel::plugin)
        .add_systems(
            Update,
            (
                open_at_start.run_if(resource_exists::<InspectAtStart>),
                pick,
                ask,
            )
                .chain()
                .in_set(ClientSystems::Receive),
        )
        .add_systems(Update, hear.in_set(ClientSystems::Apply));
}

/// Whether the pointer is over a panel or bar that takes clicks: the town under it does not.
pub fn over_ui(interactions: &Query<&Interaction>) -> bool {
    interactions.iter().any(|i| *i != Interaction::None)
}

fn pick(
    buttons: Res<ButtonInput<MouseButton>>,
    keys: Res<ButtonInput<KeyCode>>,
    chat: Res<ChatBox>,
    windows: Query<&Window>,
    cameras: Query<(&Camera, &GlobalTransform)>,
    actors: Query<(&Actor, &Transform)>,
    interactions: Query<&Interaction>,
    mut inspector: ResMut<Inspector>,
) {
    if keys.just_pressed(KeyCode::Escape) && !chat.open {
        inspector.close();
    }
    if !buttons.just_pressed(MouseButton::Left) || over_ui(&interactions) {
        return;
    }
    let (Ok(window), Ok((camera, at))) = (windows.single(), cameras.single()) else {
        return;
    };
    let point = window
        .cursor_position()
        .and_then(|cursor| camera.viewport_to_world_2d(at, cursor).ok());
    if let Some(id) = point.and_then(|p| agent_at(p, actors.iter())) {
        inspector.open(id);
    }
}

/// Opens on the agent `--inspect` names as soon as it is in view, once.
fn open_at_start(
    mut commands: Commands,
    wanted: Res<InspectAtStart>,
    actors: Query<&Actor>,
    mut inspector: ResMut<Inspector>,
) {
    if let Some(actor) = actors.iter().find(|a| a.name == wanted.0) {
        inspector.open(actor.id);
        commands.remove_resource::<InspectAtStart>();
    }
}

/// Asks about the target now and then while it is in view.
fn ask(time: Res<Time>, mut inspector: ResMut<Inspector>, mut outgoing: MessageWriter<Outgoing>) {
    let Some(id) = inspector.target else { return };
    if inspector.out_of_view {
        return;
    }
    let due = match &mut inspector.next_ask {
        None => true,
        Some(timer) => timer.tick(time.delta()).just_finished(),
    };
    if due {
        inspector.next_ask = Some(Timer::new(REFRESH, TimerMode::Repeating));
        outgoing.write(Outgoing(ClientMessage::Inspect { id }));
    }
}

fn hear(mut updates: MessageReader<TownUpdate>, mut inspector: ResMut<Inspector>) {
    for update in updates.read() {
        let Some(target) = inspector.target else {
            return;
        };
        match update {
            TownUpdate::Server(ServerMessage::Inspected(answer)) if answer.id == target => {
                inspector.shown = Some((**answer).clone());
            }
            TownUpdate::Server(ServerMessage::Despawned { id }) if *id == target => {
                inspector.out_of_view = true;
            }
            // Back in view: ask again.
            TownUpdate::Server(ServerMessage::Spawned { id, .. })
                if *id == target && inspector.out_of_view =>
            {
                inspector.open(target);
            }
            TownUpdate::Reset => inspector.close(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bevy::time::TimeUpdateStrategy;

    fn app() -> App {
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .insert_resource(TimeUpdateStrategy::ManualDuration(Duration::from_millis(
                100,
            )))
            .add_message::<TownUpdate>()
            .add_message::<Outgoing>()
            .init_resource::<Inspector>()
            .add_systems(Update, (ask, hear).chain());
        app
    }

    fn asked(app: &mut App) -> Vec<NetId> {
        let mut messages = app.world_mut().resource_mut::<Messages<Outgoing>>();
        (messages.drain())
            .filter_map(|Outgoing(m)| match m {
                ClientMessage::Inspect { id } => Some(id),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_open_inspector_asks_now_and_then_and_shows_the_answer() {
        let mut app = app();
        app.update();
        assert!(asked(&mut app).is_empty(), "closed: nothing asked");
        app.world_mut().resource_mut::<Inspector>().open(NetId(4));
        app.update();
        assert_eq!(asked(&mut app), [NetId(4)]);
        // About every 2 s after that: 2 more in 4.5 s of 100 ms frames.
        let mut more = Vec::new();
        for _ in 0..45 {
            app.update();
            more.extend(asked(&mut app));
        }
        assert_eq!(more.len(), 2);

        let answer = |id: u32, name: &str| {
            TownUpdate::Server(ServerMessage::Inspected(Box::new(Inspection {
                id: NetId(id),
                name: name.into(),
                ..Inspection::default()
            })))
        };
        app.world_mut().write_message(answer(9, "someone else"));
        app.world_mut().write_message(answer(4, "Iris Chen"));
        app.update();
        let shown = app.world().resource::<Inspector>().shown.clone();
        assert_eq!(shown.unwrap().name, "Iris Chen");

        // Out of view: it keeps what it showed and stops asking, until the agent is back.
        app.world_mut()
            .write_message(TownUpdate::Server(ServerMessage::Despawned {
                id: NetId(4),
            }));
        app.update();
        asked(&mut app);
        for _ in 0..30 {
            app.update();
            assert!(asked(&mut app).is_empty());
        }
        assert!(app.world().resource::<Inspector>().shown.is_some());
        app.world_mut()
            .write_message(TownUpdate::Server(ServerMessage::Spawned {
                id: NetId(4),
                kind: agora_shared::protocol::EntityKind::Agent,
                name: "Iris Chen".into(),
                tile: agora_shared::TilePos::new(1, 1),
                activity: String::new(),
                emoji: String::new(),
                team: None,
            }));
        app.update();
        app.update();
        assert_eq!(asked(&mut app), [NetId(4)]);
        app.world_mut().write_message(TownUpdate::Reset);
        app.update();
        assert_eq!(app.world().resource::<Inspector>().target, None);
    }
}
