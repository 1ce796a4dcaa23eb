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
                // Cursors encode an id (a UUID): anything else was tampered with, and must not
                // reach a query (PostgreSQL refuses NUL bytes where SQLite would not).
                .filter(|key| {
                    !key.is_empty()
                        && key.len() <= 64
                        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                })
                .ok_or_else(|| {
                    ApiError::bad_input("after", "after: not a cursor returned by this API")
                })
        })
        .transpose()
}

/// Declares a Relay connection type `$conn` with edges `$edge` over `$node`, and
/// `$conn::from_page(page, id, node)` building it from a service's page, each cursor encoding
/// the item's id.
macro_rules! connection {
    ($conn:ident, $edge:ident, $node:ty) => {
        #[derive(async_graphql::SimpleObject)]
        pub struct $edge {
            pub cursor: String,
            pub node: $node,
        }

        #[derive(async_graphql::SimpleObject)]
        pub struct $conn {
            pub edges: Vec<$edge>,
            pub page_info: $crate::pagination::PageInfo,
            pub total_count: i32,
        }

        impl $conn {
            pub fn from_page<T>(
                page: bazaar_contracts::page::Page<T>,
                id: impl Fn(&T) -> &str,
                node: impl Fn(T) -> $node,
            ) -> Self {
                let edges: Vec<$edge> = page
                    .items
                    .into_iter()
                    .map(|item| $edge {
                        cursor: $crate::pagination::encode_cursor(id(&item)),
                        node: node(item),
                    })
                    .collect();
                $conn {
                    page_info: $crate::pagination::PageInfo {
                        has_next_page: page.has_next_page,
                        end_cursor: edges.last().map(|e| e.cursor.clone()),
                    },
                    edges,
                    total_count: page.total_count as i32,
                }
            }
        }
    };
}
pub(crate) use connection;
