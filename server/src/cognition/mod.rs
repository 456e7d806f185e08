//! Cognition: what agents make of the world with a language model. For now the seam it grows
//! from: the model queue, whose results reach brains before they think.

pub mod model_queue;

use bevy::prelude::*;

pub fn plugin(app: &mut App) {
    app.add_plugins(model_queue::plugin);
}
