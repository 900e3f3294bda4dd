//! How the benches print their figures (each bench is its own crate, so they
//! include this file by path; not every bench uses every function).

/// The `p` quantile of sorted, non-empty samples (nearest rank).
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> T {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The `p` quantile of sorted latencies in microseconds, in milliseconds (0 without samples).
pub fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    match sorted_us {
        [] => 0.0,
        _ => percentile(sorted_us, p) as f64 / 1000.0,
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
