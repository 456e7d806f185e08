//! Teams: players (and, later, agents) group up for the Director's rounds.

use bevy::prelude::*;

/// An actor's team, if any.
#[derive(Component, Clone, Debug, Default, PartialEq, Eq)]
pub struct Team(pub Option<String>);
