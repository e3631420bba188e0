//! Proportions with confidence intervals, and percentile ranks.
//!
//! Intervals are Wilson score intervals (Wilson 1927; Agresti & Coull 1998 recommend them over
//! the normal approximation because they stay inside [0, 1] and behave for small counts and rates
//! near 0 or 1, which hole punching per NAT pair produces).

use serde::{Deserialize, Serialize};

/// The standard normal quantile for a two-sided 95 % interval.
pub const Z_95: f64 = 1.959_963_984_540_054;

/// `successes` out of `trials`, with its Wilson 95 % interval. `value` and `ci95` are absent
/// when there are no trials.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    /// The numerator.
    pub successes: u64,
    /// The denominator.
    pub trials: u64,
    /// successes / trials.
    pub value: Option<f64>,
    /// Lower and upper bound of the Wilson score 95 % interval.
    pub ci95: Option<[f64; 2]>,
}

impl Rate {
    /// The rate of `successes` in `trials` (`successes` must not exceed `trials`).
    pub fn new(successes: u64, trials: u64) -> Rate {
        debug_assert!(successes <= trials, "{successes} > {trials}");
        Rate {
            successes,
            trials,
            value: (trials > 0).then(|| successes as f64 / trials as f64),
            ci95: wilson_interval(successes, trials, Z_95),
        }
    }

    /// `62.5 % [55.1–69.4] (25/40)`, or `– (0/0)` without trials.
    pub fn describe(&self) -> String {
        match (self.value, self.ci95) {
            (Some(value), Some([low, high])) => format!(
                "{} [{}–{}] ({}/{})",
                percent(value),
                percent_bare(low),
                percent_bare(high),
                self.successes,
                self.trials
            ),
            _ => format!("– ({}/{})", self.successes, self.trials),
        }
    }
}

/// The Wilson score interval of `successes` out of `trials` for the normal quantile `z`.
pub fn wilson_interval(successes: u64, trials: u64, z: f64) -> Option<[f64; 2]> {
    if trials == 0 {
        return None;
    }
    let n = trials as f64;
    let p = successes as f64 / n;
    let z2 = z * z;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half_width = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denominator;
    Some([
        (centre - half_width).max(0.0),
        (centre + half_width).min(1.0),
    ])
}

/// The 1-based rank of the `p`-th quantile (0 < p ≤ 1) among `count` sorted values, by the
/// nearest-rank method: the smallest value with at least `p · count` values at or below it.
pub fn nearest_rank(p: f64, count: u64) -> u64 {
    ((p * count as f64).ceil() as u64).clamp(1, count.max(1))
}

/// `62.5 %`.
pub fn percent(value: f64) -> String {
    format!("{} %", percent_bare(value))
}

fn percent_bare(value: f64) -> String {
    format!("{:.1}", value * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 5e-5
    }

    #[test]
    fn wilson_matches_published_values() {
        // Reference values: Newcombe (1998), Statistics in Medicine 17, table I, method 3.
        let [low, high] = wilson_interval(81, 263, Z_95).unwrap();
        assert!(close(low, 0.2553) && close(high, 0.3662), "{low} {high}");
        let [low, high] = wilson_interval(15, 148, Z_95).unwrap();
        assert!(close(low, 0.0624) && close(high, 0.1605), "{low} {high}");
        let [low, high] = wilson_interval(0, 20, Z_95).unwrap();
        assert!(close(low, 0.0) && close(high, 0.1611), "{low} {high}");
        let [low, high] = wilson_interval(1, 29, Z_95).unwrap();
        assert!(close(low, 0.0061) && close(high, 0.1718), "{low} {high}");
    }

    #[test]
    fn no_trials_no_interval() {
        assert_eq!(wilson_interval(0, 0, Z_95), None);
        let rate = Rate::new(0, 0);
        assert_eq!((rate.value, rate.ci95), (None, None));
        assert_eq!(rate.describe(), "– (0/0)");
    }

    #[test]
    fn rates_describe_themselves() {
        assert_eq!(Rate::new(30, 40).describe(), "75.0 % [59.8–85.8] (30/40)");
    }

    #[test]
    fn nearest_rank_picks_the_covering_value() {
        assert_eq!(nearest_rank(0.5, 10), 5);
        assert_eq!(nearest_rank(0.9, 10), 9);
        assert_eq!(nearest_rank(0.5, 11), 6);
        assert_eq!(nearest_rank(0.9, 1), 1);
        assert_eq!(nearest_rank(0.5, 0), 1);
    }
}
