//! The arithmetic of the report: percentiles of latency samples, median and range over rounds,
//! and the least-squares slope that turns RSS at several connection counts into bytes per
//! connection. Pure functions only: no I/O, no clock.

/// The `q`-quantile (`0.0..=1.0`) of `sorted` by the nearest-rank method; `None` when empty.
///
/// `sorted` must be in ascending order. Nearest rank means the result is always one of the
/// samples (p99 of 1000 samples is the 990th smallest), so no latency is ever invented.
pub fn percentile(sorted: &[u32], q: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Median, smallest and largest of a set of measurements (one per round).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// The median (the mean of the two middle values for an even count).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`, ignoring NaNs; `None` when nothing is left.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: sorted[0],
            max: sorted[n - 1],
        })
    }
}

/// The least-squares slope of `y` over `x`; `None` with fewer than two distinct `x`.
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    Some(sxy / sxx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        fn check(samples: &[u32], q: f64, expect: Option<u32>) {
            let mut sorted = samples.to_vec();
            sorted.sort_unstable();
            assert_eq!(percentile(&sorted, q), expect, "{samples:?} q={q}");
        }
        let hundred: Vec<u32> = (1..=100).collect();
        let thousand: Vec<u32> = (1..=1000).collect();
        check(&[], 0.5, None);
        check(&[7], 0.0, Some(7));
        check(&[7], 0.999, Some(7));
        check(&[3, 1, 2], 0.5, Some(2));
        check(&hundred, 0.5, Some(50));
        check(&hundred, 0.99, Some(99));
        check(&hundred, 0.999, Some(100));
        check(&hundred, 1.0, Some(100));
        check(&thousand, 0.99, Some(990));
        check(&thousand, 0.999, Some(999));
        check(&[5, 5, 5, 1000], 0.5, Some(5));
    }

    #[test]
    fn spreads_are_median_and_range() {
        fn check(values: &[f64], expect: Option<(f64, f64, f64)>) {
            let got = Spread::of(values).map(|s| (s.median, s.min, s.max));
            assert_eq!(got, expect, "{values:?}");
        }
        check(&[], None);
        check(&[f64::NAN], None);
        check(&[4.0], Some((4.0, 4.0, 4.0)));
        check(&[3.0, 1.0, 2.0], Some((2.0, 1.0, 3.0)));
        check(&[4.0, 1.0, 3.0, 2.0], Some((2.5, 1.0, 4.0)));
        check(&[2.0, f64::NAN, 6.0], Some((4.0, 2.0, 6.0)));
    }

    #[test]
    fn slopes_fit_least_squares() {
        fn check(points: &[(f64, f64)], expect: Option<f64>) {
            let got = slope(points);
            match (got, expect) {
                (Some(g), Some(e)) => assert!((g - e).abs() < 1e-9, "{points:?}: {g} != {e}"),
                _ => assert_eq!(got, expect, "{points:?}"),
            }
        }
        check(&[], None);
        check(&[(1.0, 2.0)], None);
        check(&[(5.0, 1.0), (5.0, 9.0)], None);
        check(&[(0.0, 10.0), (1000.0, 5010.0)], Some(5.0));
        // RSS in KiB at 0, 1k, 5k and 10k connections, 4 KiB each plus noise that cancels.
        check(
            &[
                (0.0, 8000.0),
                (1000.0, 12001.0),
                (5000.0, 27999.0),
                (10000.0, 48000.0),
            ],
            Some(3.999_935_483_870_967_5),
        );
    }
}
