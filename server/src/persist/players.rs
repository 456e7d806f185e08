//! Players' avatars across restarts: restored offline at startup, so a returning player
//! resumes where it stood and in its team; saved whenever one moves or changes team.

use super::store::{SavedPlayer, Write};
use super::writer::Persistence;
use crate::TickSystems;
use crate::net::replication::{NetIds, Team};
use crate::net::server::{Avatars, Player, SpawnTile, avatar};
use crate::net::tokens;
use crate::world::{GameClock, Position, TownMap};
use bevy::prelude::*;

/// Avatars saved by an earlier run, restored at startup.
#[derive(Resource, Default, Debug)]
pub struct SavedPlayers(pub Vec<SavedPlayer>);

/// Changes are handed to the writer every this many ticks (half a second at 20 Hz): a walking
/// player moves every tick, and a killed server loses at most this much.
pub const SAVE_EVERY_TICKS: u64 = 10;

pub fn plugin(app: &mut App) {
    app.add_systems(
        Startup,
        restore_players.run_if(resource_exists::<SavedPlayers>),
    )
    .add_systems(
        Update,
        (save_players, save_clock)
            .in_set(TickSystems::Record)
            .run_if(resource_exists::<Persistence>)
            .run_if(every_ticks(SAVE_EVERY_TICKS)),
    );
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

fn restore_players(
    mut commands: Commands,
    saved: Res<SavedPlayers>,
    map: Res<TownMap>,
    spawn: Res<SpawnTile>,
    mut ids: ResMut<NetIds>,
    mut avatars: ResMut<Avatars>,
) {
    for player in &saved.0 {
        // The identity rule (client id = hash of the name) holds for every row we write; a row
        // that breaks it was edited by hand, and restoring it would give one name two avatars.
        if tokens::client_id(&player.name) != player.client_id {
            warn!(
                "saved player {:?}: its client id does not match its name; not restored",
                player.name
            );
            continue;
        }
        // The map may have changed since: a tile that is no longer walkable sends the avatar
        // back to the spawn.
        let tile = if map.is_walkable(player.tile) {
            player.tile
        } else {
            warn!(
                "saved player {:?} stood on {}, which is not walkable on this map; moved to the spawn",
                player.name, player.tile
            );
            spawn.0
        };
        let team = Team(player.team.clone());
        let entity = commands
            .spawn(avatar(
                player.client_id,
                &player.name,
                tile,
                team,
                ids.issue(),
            ))
            .id();
        avatars.0.insert(player.client_id, entity);
    }
    info!("restored {} players' avatars", avatars.0.len());
    commands.remove_resource::<SavedPlayers>();
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

fn save_clock(persistence: Res<Persistence>, clock: Res<GameClock>) {
    persistence.save(Write::Clock(clock.now));
}

/// Hands every player and the clock to the writer, changed or not: at shutdown, when the
/// periodic save may not have run since the last change. Follow with [`Persistence::flush`].
pub fn save_all(world: &mut World) {
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
    use agora_shared::TilePos;
    use std::path::Path;

    fn saved(name: &str, tile: TilePos) -> SavedPlayer {
        SavedPlayer {
            client_id: tokens::client_id(name),
            name: name.into(),
            tile,
            team: Some("red".into()),
        }
    }

    #[test]
    fn avatars_come_back_offline_where_they_stood_unless_the_row_is_wrong() {
        let map = TownMap::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/maps/maple_hollow.tmj"),
        )
        .unwrap();
        let walkable = |want: bool| {
            (0..map.height)
                .flat_map(|y| (0..map.width).map(move |x| TilePos::new(x, y)))
                .find(|&t| map.is_walkable(t) == want)
                .unwrap()
        };
        let (floor, wall, spawn) = (walkable(true), walkable(false), TilePos::new(60, 32));
        let mut forged = saved("eve", floor);
        forged.client_id = tokens::client_id("ada");
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .insert_resource(map)
            .insert_resource(SpawnTile(spawn))
            .init_resource::<NetIds>()
            .init_resource::<Avatars>()
            .insert_resource(SavedPlayers(vec![
                saved("ada", floor),
                saved("bob", wall),
                forged,
            ]))
            .add_plugins(plugin);
        app.update();

        let mut restored: Vec<(String, TilePos, Option<String>)> = app
            .world_mut()
            .query::<(&Player, &Position, &Team)>()
            .iter(app.world())
            .map(|(p, at, team)| (p.name.clone(), at.0, team.0.clone()))
            .collect();
        restored.sort();
        let red = Some("red".to_string());
        assert_eq!(
            restored,
            [
                ("ada".into(), floor, red.clone()),
                ("bob".into(), spawn, red)
            ]
        );
        assert_eq!(app.world().resource::<Avatars>().0.len(), 2);
        assert!(!app.world().contains_resource::<SavedPlayers>());
        let online = app
            .world_mut()
            .query_filtered::<(), With<crate::net::server::Online>>()
            .iter(app.world())
            .count();
        assert_eq!(online, 0);
    }
}
