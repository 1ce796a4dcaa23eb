//! How the cost model says no: the setting that refused a request, as a GraphQL error.

/// Why a request was refused: the setting that refused it and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub limit: &'static str,
    pub message: String,
}

impl Refusal {
    pub(super) fn over(limit: &'static str, what: &str, max: usize) -> Refusal {
        Refusal {
            limit,
            message: format!("the query has more {what} than the limit of {max} ({limit})"),
        }
    }

    /// The GraphQL error: `BAD_USER_INPUT`, with `extensions.limit` naming the setting.
    pub fn into_server_error(self) -> async_graphql::ServerError {
        let mut error = async_graphql::ServerError::new(self.message, None);
        let mut ext = async_graphql::ErrorExtensionValues::default();
        ext.set("code", "BAD_USER_INPUT");
        ext.set("limit", self.limit);
        error.extensions = Some(ext);
        error
    }
}
