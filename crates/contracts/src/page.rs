//! Keyset pagination as every service's list operations speak it: ask for the first `n`
//! after a cursor (an id), get one page back with whether more follow.

use serde::{Deserialize, Serialize};

/// Which page of a list to answer: at most `first` items after the item `after`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PageRequest {
    pub first: i64,
    pub after: Option<String>,
}

/// One page of a keyset-paginated list.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_next_page: bool,
    pub total_count: i64,
}
