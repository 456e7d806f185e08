//! Choosing the next token from logits: greedy, or temperature + top-p with a repetition
//! penalty, from a seeded generator so the same seed gives the same text.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How to pick tokens. `temperature == 0` is greedy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SamplingParams {
    pub temperature: f32,
    pub top_p: f32,
    /// > 1 discourages tokens already in the prompt or output (the 270M model loops without it).
    pub repetition_penalty: f32,
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 0.7,
            top_p: 0.9,
            repetition_penalty: 1.15,
            seed: 0,
        }
    }
}

/// A sampler for one generation.
pub struct Sampler {
    params: SamplingParams,
    rng: ChaCha8Rng,
}

impl Sampler {
    pub fn new(params: SamplingParams) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(params.seed),
            params,
        }
    }

    /// Picks a token id. `logits` is modified (penalty applied); `recent` are the token ids the
    /// repetition penalty applies to.
    pub fn sample(&mut self, logits: &mut [f32], recent: &[u32]) -> u32 {
        let penalty = self.params.repetition_penalty;
        if penalty != 1.0 {
            let mut seen: Vec<u32> = recent.to_vec();
            seen.sort_unstable();
            seen.dedup();
            for id in seen {
                if let Some(l) = logits.get_mut(id as usize) {
                    *l = if *l > 0.0 { *l / penalty } else { *l * penalty };
                }
            }
        }
        if self.params.temperature <= 0.0 {
            return argmax(logits);
        }
        let t = self.params.temperature;
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut candidates: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .map(|(i, &l)| (i as u32, ((l - max) / t).exp()))
            .filter(|(_, p)| *p > 1e-7)
            .collect();
        candidates.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let total: f32 = candidates.iter().map(|c| c.1).sum();
        let mut kept = 0.0;
        let mut cut = candidates.len();
        for (i, c) in candidates.iter().enumerate() {
            kept += c.1 / total;
            if kept >= self.params.top_p {
                cut = i + 1;
                break;
            }
        }
        candidates.truncate(cut.max(1));
        let mass: f32 = candidates.iter().map(|c| c.1).sum();
        let mut x = self.rng.random::<f32>() * mass;
        for (id, p) in &candidates {
            x -= p;
            if x <= 0.0 {
                return *id;
            }
        }
        candidates[candidates.len() - 1].0
    }
}

pub fn argmax(values: &[f32]) -> u32 {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best as u32
}

/// `log softmax(logits)`, computed stably.
pub fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let log_sum = logits.iter().map(|l| (l - max).exp()).sum::<f32>().ln() + max;
    logits.iter().map(|l| l - log_sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_picks_the_largest() {
        let mut s = Sampler::new(SamplingParams {
            temperature: 0.0,
            repetition_penalty: 1.0,
            ..Default::default()
        });
        assert_eq!(s.sample(&mut [0.1, 3.0, 2.0], &[]), 1);
    }

    #[test]
    fn penalty_can_change_the_choice() {
        let params = SamplingParams {
            temperature: 0.0,
            repetition_penalty: 2.0,
            ..Default::default()
        };
        assert_eq!(Sampler::new(params).sample(&mut [0.0, 3.0, 2.0], &[1]), 2);
    }

    #[test]
    fn same_seed_same_choices_other_seed_other_choices() {
        let logits: Vec<f32> = (0..50).map(|i| (i % 7) as f32 * 0.3).collect();
        let draw = |seed| {
            let mut s = Sampler::new(SamplingParams {
                temperature: 1.0,
                top_p: 1.0,
                repetition_penalty: 1.0,
                seed,
            });
            (0..20)
                .map(|_| s.sample(&mut logits.clone(), &[]))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
    }

    #[test]
    fn top_p_keeps_only_the_head() {
        let mut s = Sampler::new(SamplingParams {
            temperature: 1.0,
            top_p: 0.5,
            repetition_penalty: 1.0,
            seed: 3,
        });
        for _ in 0..100 {
            assert_eq!(s.sample(&mut [10.0, 0.0, 0.0, 0.0], &[]), 0);
        }
    }

    #[test]
    fn log_prob_is_normalised() {
        let logits = [1.0, 2.0, 3.0];
        let total: f32 = log_softmax(&logits).iter().map(|l| l.exp()).sum();
        assert!((total - 1.0).abs() < 1e-5);
    }
}
