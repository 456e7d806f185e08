//! Players across restarts: what the database remembers becomes the server's
//! [`AwayPlayers`] at startup, so a returning player resumes where it stood and in its team;
//! a player is saved whenever it moves or changes team, and when it leaves.

use super::store::{SavedPlayer, Write};
use super::writer::Persistence;
use crate::actors::{Away, AwayPlayers, Player, Team};
use crate::schedule::TickSystems;
use crate::time::GameClock;
use crate::world::Position;
use agora_net::tokens;
use bevy::prelude::*;

/// The players a database remembers, as the server's [`AwayPlayers`]. A row whose client id
/// is not its name's (client id = hash of the name, for every row we write) was edited by
/// hand; taking it would give one name two identities, so it is skipped.
pub fn away_players(saved: Vec<SavedPlayer>) -> AwayPlayers {
    let mut away = AwayPlayers::default();
    for player in saved {
        if tokens::client_id(&player.name) != player.client_id {
            warn!(
                "saved player {:?}: its client id does not match its name; not restored",
                player.name
            );
            continue;
        }
        away.0.insert(
            player.client_id,
            Away {
                name: player.name,
                tile: player.tile,
                team: player.team,
                strikes: 0,
                net: None,
            },
        );
    }
    away
}

/// Changes are handed to the writer every this many ticks (half a second at 20 Hz): a walking
/// player moves every tick, and a killed server loses at most this much.
pub const SAVE_EVERY_TICKS: u64 = 10;

pub fn plugin(app: &mut App) {
    app.add_systems(
        Update,
        (save_players, save_clock)
            .in_set(TickSystems::Save)
            .run_if(resource_exists::<Persistence>)
            .run_if(every_ticks(SAVE_EVERY_TICKS)),
    )
    .add_observer(save_leaving_player);
}

/// True on the first tick and every `n` ticks after. Change detection spans the ticks in
/// between: a system run this way sees every change since its last run.
fn every_ticks(n: u64) -> impl FnMut(Local<u64>) -> bool {
    move |mut ticks: Local<u64>| {
        let due = ticks.is_multiple_of(n);
        *ticks += 1;
        due
    }
}

fn row(player: &Player, position: &Position, team: &Team) -> Write {
    Write::Player(SavedPlayer {
        client_id: player.client_id,
        name: player.name.clone(),
        tile: position.0,
        team: team.0.clone(),
    })
}

fn save_players(
    persistence: Res<Persistence>,
    changed: Query<(&Player, &Position, &Team), Or<(Changed<Position>, Changed<Team>)>>,
) {
    for (player, position, team) in &changed {
        persistence.save(row(player, position, team));
    }
}

/// A player's last state, as its avatar leaves the world (the periodic save may not have run
/// since it last moved).
fn save_leaving_player(
    leaving: On<Remove, Player>,
    persistence: Option<Res<Persistence>>,
    players: Query<(&Player, &Position, &Team)>,
) {
    if let (Some(persistence), Ok((player, position, team))) =
        (persistence, players.get(leaving.entity))
    {
        persistence.save(row(player, position, team));
    }
}

fn save_clock(persistence: Res<Persistence>, clock: Res<GameClock>) {
    persistence.save(Write::Clock(clock.now));
}

/// Hands every player and the clock to the writer, changed or not.
pub(super) fn save_all(world: &mut World) {
    let mut players = world.query::<(&Player, &Position, &Team)>();
    let rows: Vec<Write> = players
        .iter(world)
        .map(|(player, position, team)| row(player, position, team))
        .collect();
    let clock = world.get_resource::<GameClock>().map(|c| c.now);
    if let Some(persistence) = world.get_resource::<Persistence>() {
        rows.into_iter().for_each(|r| persistence.save(r));
        if let Some(now) = clock {
            persistence.save(Write::Clock(now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::Store;
    use agora_shared::{GameTime, TilePos};

    fn saved(name: &str, x: u16) -> SavedPlayer {
        SavedPlayer {
            client_id: tokens::client_id(name),
            name: name.into(),
            tile: TilePos::new(x, 5),
            team: Some("red".into()),
        }
    }

    #[test]
    fn saved_rows_become_away_players_unless_the_id_is_not_the_names() {
        let mut forged = saved("eve", 3);
        forged.client_id = tokens::client_id("ada");
        let away = away_players(vec![saved("ada", 1), saved("bob", 2), forged]);
        assert_eq!(away.0.len(), 2);
        let ada = &away.0[&tokens::client_id("ada")];
        assert_eq!(
            (ada.name.as_str(), ada.tile, ada.team.as_deref()),
            ("ada", TilePos::new(1, 5), Some("red"))
        );
    }

    #[test]
    fn moves_and_team_changes_are_saved_and_so_is_a_player_who_leaves() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("world.sqlite");
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .insert_resource(GameClock::new(GameTime(0), 1_000))
            .insert_resource(Persistence::start(Store::open(&path).unwrap()))
            .add_plugins(plugin);
        let player = |name: &str| Player {
            client_id: tokens::client_id(name),
            name: name.into(),
        };
        let ada = app
            .world_mut()
            .spawn((player("ada"), Position(TilePos::new(1, 1)), Team(None)))
            .id();
        let bob = app
            .world_mut()
            .spawn((player("bob"), Position(TilePos::new(2, 2)), Team(None)))
            .id();
        app.update();
        // Changes between periodic saves: the next save sees them all.
        app.world_mut().get_mut::<Position>(ada).unwrap().0 = TilePos::new(9, 9);
        app.world_mut().get_mut::<Team>(ada).unwrap().0 = Some("red".into());
        for _ in 0..SAVE_EVERY_TICKS {
            app.update();
        }
        // Bob moves and leaves before the next periodic save.
        app.world_mut().get_mut::<Position>(bob).unwrap().0 = TilePos::new(7, 7);
        app.world_mut().despawn(bob);
        app.world().resource::<Persistence>().flush().unwrap();

        let saved = Store::open(&path).unwrap().load().unwrap();
        let tiles: Vec<(String, TilePos, Option<String>)> = saved
            .players
            .into_iter()
            .map(|p| (p.name, p.tile, p.team))
            .collect();
        assert_eq!(
            tiles,
            [
                ("ada".into(), TilePos::new(9, 9), Some("red".into())),
                ("bob".into(), TilePos::new(7, 7), None)
            ]
        );
        assert_eq!(saved.clock, Some(GameTime(0)));
    }
}
