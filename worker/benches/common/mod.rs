//! Statistics the benches share: the median of per-round figures and a percentile of sorted
//! latencies. Each bench includes this file with `mod common;`.

/// The median of `values` (the mean of the middle two for an even count; NaN when empty).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The `p` quantile (0..=1) of `sorted`, nearest rank (NaN when empty).
#[allow(dead_code)] // not every bench reports latencies
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}
