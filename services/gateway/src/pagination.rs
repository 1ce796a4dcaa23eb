//! Relay-style cursor pagination shared by every connection type.

use async_graphql::SimpleObject;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bazaar_contracts::ApiError;

#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "PageInfo")]
pub struct PageInfo {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

/// Largest page a client may ask for.
pub const MAX_PAGE: i32 = 100;

/// Checks `first` (0..=100).
pub fn page_size(first: i32) -> Result<i64, ApiError> {
    if !(0..=MAX_PAGE).contains(&first) {
        return Err(ApiError::bad_input(
            "first",
            format!("first: must be between 0 and {MAX_PAGE}"),
        ));
    }
    Ok(first as i64)
}

/// Cursors are opaque to clients: the encoded sort key of the edge.
pub fn encode_cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

pub fn decode_cursor(cursor: Option<&str>) -> Result<Option<String>, ApiError> {
    cursor
        .map(|c| {
            URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| {
                    ApiError::bad_input("after", "after: not a cursor returned by this API")
                })
        })
        .transpose()
}
