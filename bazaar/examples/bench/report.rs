//! How the benchmark reports: percentiles, anomalies (missed targets) and memory.

/// Order → CONFIRMED latencies (ms) of `clocks`, sorted.
pub fn confirm_latencies(clocks: &[(i64, Option<i64>)]) -> Vec<i64> {
    let mut ms: Vec<i64> = clocks
        .iter()
        .filter_map(|(created, confirmed)| confirmed.map(|c| c - created))
        .collect();
    ms.sort_unstable();
    ms
}

pub fn percentile(sorted: &[i64], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n => sorted[((n - 1) as f64 * p / 100.0).round() as usize] as f64,
    }
}

pub fn anomaly(what: String) {
    println!("!!!!!!!!  ANOMALY: {what}");
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Prints this process's peak (VmHWM) and current (VmRSS) resident memory.
pub fn memory(when: &str) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |k: &str| {
        let line = status.lines().find(|l| l.starts_with(k)).unwrap_or(k);
        line[k.len()..].trim().to_owned()
    };
    let (peak, now) = (field("VmHWM:"), field("VmRSS:"));
    println!(
        "memory    {when:<6} peak_rss={peak}  rss={now}  (server and load generator in one process)"
    );
}
