//! SQL text the log builds itself: lists of sequence numbers and event-type filters.

/// Log sequence numbers (integers we read ourselves) as an SQL list.
pub(super) fn seq_list(seqs: impl Iterator<Item = i64>) -> String {
    seqs.map(|s| s.to_string()).collect::<Vec<_>>().join(",")
}

/// ` AND event_type IN ($first, ...)` with the values to bind, or nothing for every type.
pub(super) fn type_filter(types: &[String], first: usize) -> (String, &[String]) {
    if types.is_empty() {
        return (String::new(), types);
    }
    let params: Vec<String> = (first..first + types.len())
        .map(|i| format!("${i}"))
        .collect();
    (format!(" AND event_type IN ({})", params.join(",")), types)
}

/// The event types a consumer's row keeps, comma-separated, as a list.
pub(super) fn split_types(stored: &str) -> Vec<String> {
    stored
        .split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}
