//! The cost model: bounds a GraphQL request before anything else looks at it, in time linear
//! in its text, so that no document, however crafted, costs more than its share.
//!
//! Counted, in this order: lexical tokens (before parsing), then on the parsed document
//! aliases, directives and fragment spreads as written, then the number of field selections
//! once every fragment is expanded, the data depth and the nesting of introspection lists.
//! Expansion is computed per fragment once and memoised, so `fragment F21 { ...F20 ...F20 }`
//! is refused after visiting 22 fragments, not 2^21 selections. `__typename` and
//! introspection fields are selections like any other.
//!
//! Introspection is costed on its own terms: the data depth limit does not apply inside
//! `__schema` / `__type` (the standard introspection query nests `ofType` ten deep), but the
//! nesting of its list fields (`types`, `fields`, `args`, …) does, as Apollo Router does: each
//! such level multiplies the response by the size of the schema, whereas `ofType` does not.

mod expansion;
mod refusal;
#[cfg(test)]
mod tests;
mod tokens;

use async_graphql::parser::types::ExecutableDocument;

use expansion::{Expansion, Size, Written};
use refusal::Refusal;
use tokens::count_tokens;

/// The limits; each is a documented setting (`config.default.toml`).
#[derive(Debug, Clone)]
pub struct CostLimits {
    pub max_tokens: usize,
    pub max_aliases: usize,
    pub max_directives: usize,
    pub max_fragment_spreads: usize,
    pub max_selections: usize,
    pub max_depth: usize,
    pub max_introspection_depth: usize,
}

impl Default for CostLimits {
    fn default() -> Self {
        CostLimits {
            max_tokens: 2000,
            max_aliases: 30,
            max_directives: 50,
            max_fragment_spreads: 100,
            max_selections: 1000,
            max_depth: 12,
            max_introspection_depth: 3,
        }
    }
}

/// Checks `query` against `limits` and returns its parsed document, or `None` when it does
/// not parse (the caller lets the GraphQL engine report the syntax error).
pub fn check(query: &str, limits: &CostLimits) -> Result<Option<ExecutableDocument>, Refusal> {
    count_tokens(query, limits.max_tokens)?;
    let Ok(document) = async_graphql::parser::parse_query(query) else {
        return Ok(None);
    };
    let mut written = Written::default();
    for (_, operation) in document.operations.iter() {
        written.directives += operation.node.directives.len();
        written.count(&operation.node.selection_set);
    }
    for fragment in document.fragments.values() {
        written.directives += fragment.node.directives.len();
        written.count(&fragment.node.selection_set);
    }
    if written.aliases > limits.max_aliases {
        return Err(Refusal::over(
            "max_query_aliases",
            "aliases",
            limits.max_aliases,
        ));
    }
    if written.directives > limits.max_directives {
        return Err(Refusal::over(
            "max_query_directives",
            "directives",
            limits.max_directives,
        ));
    }
    if written.spreads > limits.max_fragment_spreads {
        return Err(Refusal::over(
            "max_query_fragment_spreads",
            "fragment spreads",
            limits.max_fragment_spreads,
        ));
    }
    let mut expansion = Expansion::new(&document);
    // Validation visits every operation and also every fragment definition on its own, so
    // both are bounded: the operations together, and each fragment.
    let mut total = Size::default();
    for (_, operation) in document.operations.iter() {
        total = total.beside(expansion.set(&operation.node.selection_set, false)?);
    }
    for (name, _) in document.fragments.iter() {
        total = total.worst(expansion.fragment(name, false)?);
    }
    if total.selections > limits.max_selections as u64 {
        return Err(Refusal {
            limit: "max_query_selections",
            message: format!(
                "the query selects more than {} fields once its fragments are expanded \
                 (max_query_selections)",
                limits.max_selections
            ),
        });
    }
    if total.depth > limits.max_depth as u64 {
        return Err(Refusal::over(
            "max_query_depth",
            "levels of nesting",
            limits.max_depth,
        ));
    }
    if total.introspection_depth > limits.max_introspection_depth as u64 {
        return Err(Refusal::over(
            "max_introspection_depth",
            "nested introspection lists",
            limits.max_introspection_depth,
        ));
    }
    Ok(Some(document))
}

/// The crafted request of issue 9, for tests and the benchmark: `query { ...F(n-1) }
/// fragment F0 on Query { __typename } fragment Fk on Query { ...Fk-1 ...Fk-1 }`, which
/// selects 2^(n-1) fields in about 40 bytes per level.
pub fn fragment_explosion(levels: usize) -> String {
    let mut q = format!(
        "query {{ ...F{} }} fragment F0 on Query {{ __typename }}",
        levels.saturating_sub(1)
    );
    for n in 1..levels {
        q.push_str(&format!(
            " fragment F{n} on Query {{ ...F{m} ...F{m} }}",
            m = n - 1
        ));
    }
    q
}
