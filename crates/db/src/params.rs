//! Bind-parameter lists for statements whose length depends on the data: `IN (...)` lists and
//! multi-row `VALUES`, numbered `$n` as every statement here is.

/// Most rows one multi-row statement carries: a few columns each stays far below SQLite's
/// 32 766 and PostgreSQL's 65 535 bind parameters.
pub const ROWS_PER_STATEMENT: usize = 1000;

/// `$first, $first+1, ...` for `count` values.
pub fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `($first, ...), (...)`: `rows` tuples of `columns` consecutive parameters.
pub fn value_rows(first: usize, rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| format!("({})", placeholders(first + row * columns, columns)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The pieces of an `UPDATE` that sets a different value per row in one statement, for `rows`
/// (key, value) pairs bound in that order from `$first`: `CASE key WHEN $k THEN $v ... END`
/// and the list of the keys' parameters, for `WHERE key IN (...)`.
pub fn case_by_key(key: &str, first: usize, rows: usize) -> (String, String) {
    let cases: String = (0..rows)
        .map(|i| format!(" WHEN ${} THEN ${}", first + 2 * i, first + 2 * i + 1))
        .collect();
    let keys: Vec<String> = (0..rows).map(|i| format!("${}", first + 2 * i)).collect();
    (format!("CASE {key}{cases} END"), keys.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parameters_in_order() {
        assert_eq!(placeholders(3, 2), "$3, $4");
        assert_eq!(placeholders(1, 0), "");
        assert_eq!(value_rows(2, 2, 3), "($2, $3, $4), ($5, $6, $7)");
        assert_eq!(
            case_by_key("id", 2, 2),
            (
                "CASE id WHEN $2 THEN $3 WHEN $4 THEN $5 END".into(),
                "$2, $4".into()
            )
        );
    }
}
