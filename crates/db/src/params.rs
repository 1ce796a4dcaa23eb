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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parameters_in_order() {
        assert_eq!(placeholders(3, 2), "$3, $4");
        assert_eq!(placeholders(1, 0), "");
        assert_eq!(value_rows(2, 2, 3), "($2, $3, $4), ($5, $6, $7)");
    }
}
