//! One GraphQL request as it arrives over HTTP, and which of its document's operations runs:
//! what the persisted-document lookup, the GET safety check and the response cache all read.

use async_graphql::Positioned;
use async_graphql::parser::parse_query;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, OperationType,
};
use serde::Deserialize;
use serde_json::Value;

/// One GraphQL request as it arrives, before its document is resolved.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Incoming {
    pub query: Option<String>,
    pub operation_name: Option<String>,
    pub variables: Option<Value>,
    pub extensions: Option<serde_json::Map<String, Value>>,
    /// GraphQL over HTTP's persisted documents: the document's hash instead of its text.
    pub document_id: Option<String>,
}

/// Whether the operation that would run is a query. A document that does not parse, or names
/// no operation it has, counts as a query here: execution then reports the real error.
pub fn is_query(document: &str, operation: Option<&str>) -> bool {
    let Ok(document) = parse_query(document) else {
        return true;
    };
    chosen_operation(&document, operation).is_none_or(|op| op.node.ty == OperationType::Query)
}

/// The operation of `document` that runs for the requested `name` (the only one when no name
/// is given), as execution will choose it.
pub fn chosen_operation<'a>(
    document: &'a ExecutableDocument,
    name: Option<&str>,
) -> Option<&'a Positioned<OperationDefinition>> {
    match (&document.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        (DocumentOperations::Multiple(_), None) => None,
    }
}
