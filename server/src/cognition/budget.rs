//! The model budget: each agent may spend so many tokens per game hour, and what it spends
//! them on goes by priority. A conversation with a player always goes ahead; agents' talk
//! with each other (their reactions to meeting) may use the whole budget, planning stops at
//! 80% of it and reflection at 60%, so what matters more always finds room. An agent out of
//! budget falls back on what needs no model: its routine, and silence.

use agora_shared::GameTime;
use bevy::prelude::*;
use std::collections::HashMap;

/// What a model call is for, most important first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// Answering a player: never refused.
    Player,
    /// Reacting to what the agent meets: talking with another agent.
    React,
    /// Planning the day and the next hour.
    Plan,
    /// Reflecting on what happened.
    Reflect,
}

impl Need {
    /// The share of the hourly budget, in percent, up to which this need may spend.
    fn ceiling_percent(self) -> u64 {
        match self {
            Need::Player => u64::MAX,
            Need::React => 100,
            Need::Plan => 80,
            Need::Reflect => 60,
        }
    }
}

/// Tokens spent per agent in the current game hour.
#[derive(Resource, Debug)]
pub struct TokenBudget {
    /// Prompt and output tokens an agent may spend per game hour (the 2,600).
    pub per_hour: u32,
    spent: HashMap<Entity, (u64, u32)>,
}

impl Default for TokenBudget {
    fn default() -> Self {
        Self::new(2_600)
    }
}

impl TokenBudget {
    pub fn new(per_hour: u32) -> Self {
        Self {
            per_hour,
            spent: HashMap::new(),
        }
    }

    fn spent(&self, agent: Entity, now: GameTime) -> u32 {
        let hour = now.0 / 3_600_000;
        self.spent
            .get(&agent)
            .filter(|(h, _)| *h == hour)
            .map_or(0, |&(_, spent)| spent)
    }

    /// Whether `agent` may make a call for `need` now.
    pub fn allows(&self, agent: Entity, now: GameTime, need: Need) -> bool {
        let ceiling = u64::from(self.per_hour).saturating_mul(need.ceiling_percent()) / 100;
        u64::from(self.spent(agent, now)) < ceiling
    }

    /// Counts tokens a call of `agent`'s used.
    pub fn spend(&mut self, agent: Entity, now: GameTime, tokens: u32) {
        let hour = now.0 / 3_600_000;
        let entry = self.spent.entry(agent).or_insert((hour, 0));
        if entry.0 != hour {
            *entry = (hour, 0);
        }
        entry.1 = entry.1.saturating_add(tokens);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_needs_stop_first_and_the_budget_renews_each_hour() {
        let mut budget = TokenBudget::new(1_000);
        let agent = Entity::from_raw_u32(7).unwrap();
        let other = Entity::from_raw_u32(8).unwrap();
        let now = GameTime::from_minutes(8 * 60);
        let allowed = |b: &TokenBudget| {
            [Need::Player, Need::React, Need::Plan, Need::Reflect].map(|n| b.allows(agent, now, n))
        };
        assert_eq!(allowed(&budget), [true; 4]);
        budget.spend(agent, now, 600);
        assert_eq!(allowed(&budget), [true, true, true, false]);
        budget.spend(agent, now, 200);
        assert_eq!(allowed(&budget), [true, true, false, false]);
        budget.spend(agent, now, 200);
        assert_eq!(allowed(&budget), [true, false, false, false]);
        assert!(
            budget.allows(other, now, Need::Reflect),
            "budgets are per agent"
        );
        let next_hour = GameTime::from_minutes(9 * 60);
        assert!(budget.allows(agent, next_hour, Need::Reflect));
    }
}
