//! The query depth limit, written for data: introspection (`__schema`, `__type`) is not counted
//! against it, because the standard introspection query of GraphiQL and graphql-js nests
//! `ofType` seven times and every client tool sends it first. Introspection gets the bound
//! graphql-js itself applies instead (`MaxIntrospectionDepthRule`: `fields`, `interfaces`,
//! `possibleTypes` and `inputFields` nested fewer than 3 times), which is what keeps
//! `__type { fields { type { fields { ... } } } }` from growing with the schema's cycles.
//!
//! Both walks visit each fragment once (memoised), so a document full of spreads costs time
//! linear in its size. The issue-9 cost model is expected to replace the data half of this.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Field, Selection, SelectionSet};
use async_graphql::{ServerError, ServerResult, Variables};

/// graphql-js `MaxIntrospectionDepthRule`'s limit on nested list fields in introspection.
const MAX_INTROSPECTION_LISTS: usize = 3;
const INTROSPECTION_LISTS: [&str; 4] = ["fields", "interfaces", "possibleTypes", "inputFields"];

/// Schema extension refusing documents deeper than `max_depth` data fields, and any
/// introspection when it is turned off (async-graphql alone would answer `null` silently).
#[derive(Clone, Copy)]
pub struct DepthLimit {
    pub max_depth: usize,
    pub introspection: bool,
}

impl ExtensionFactory for DepthLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(DepthLimitExtension(*self))
    }
}

struct DepthLimitExtension(DepthLimit);

#[async_trait::async_trait]
impl Extension for DepthLimitExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        check(&document, self.0.max_depth, self.0.introspection)?;
        Ok(document)
    }
}

/// Checks every operation of the document (the one that runs is chosen later).
pub fn check(
    document: &ExecutableDocument,
    max_depth: usize,
    introspection: bool,
) -> ServerResult<()> {
    let mut walk = Walk {
        document,
        memo: HashMap::new(),
        saw_introspection: false,
    };
    for (_, operation) in document.operations.iter() {
        let set = &operation.node.selection_set.node;
        if walk.data_depth(set) > max_depth {
            return Err(ServerError::new("Query is nested too deep.", None));
        }
        if walk.saw_introspection && !introspection {
            return Err(ServerError::new(
                "GraphQL introspection is turned off on this server",
                None,
            ));
        }
        if walk.introspection_lists(set) >= MAX_INTROSPECTION_LISTS {
            return Err(ServerError::new(
                "Introspection query is nested too deep.",
                None,
            ));
        }
    }
    Ok(())
}

struct Walk<'a> {
    document: &'a ExecutableDocument,
    /// Per (measure, fragment): its value, `None` while it is being computed (a cycle, which
    /// validation rejects later; counted as 0 here so the walk ends).
    memo: HashMap<(Memo, &'a str), Option<usize>>,
    /// Whether `__schema` or `__type` appeared anywhere (`__typename` is not introspection).
    saw_introspection: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Memo {
    Depth,
    Lists,
    Introspection,
}

impl<'a> Walk<'a> {
    /// `measure` of a fragment's selection set, computed once per document.
    fn fragment(
        &mut self,
        which: Memo,
        name: &'a str,
        measure: fn(&mut Self, &'a SelectionSet) -> usize,
    ) -> usize {
        if let Some(known) = self.memo.get(&(which, name)) {
            return known.unwrap_or(0);
        }
        self.memo.insert((which, name), None);
        let document = self.document;
        let value = document
            .fragments
            .get(name)
            .map_or(0, |f| measure(self, &f.node.selection_set.node));
        self.memo.insert((which, name), Some(value));
        value
    }

    /// The largest `field` measure over `set`, looking through inline fragments and (memoised)
    /// fragment spreads, which `measure` handles as a whole.
    fn max_over(
        &mut self,
        set: &'a SelectionSet,
        which: Memo,
        measure: fn(&mut Self, &'a SelectionSet) -> usize,
        field: fn(&mut Self, &'a Field) -> usize,
    ) -> usize {
        let mut deepest = 0;
        for selection in &set.items {
            let value = match &selection.node {
                Selection::Field(f) => field(self, &f.node),
                Selection::InlineFragment(inline) => measure(self, &inline.node.selection_set.node),
                Selection::FragmentSpread(spread) => {
                    self.fragment(which, &spread.node.fragment_name.node, measure)
                }
            };
            deepest = deepest.max(value);
        }
        deepest
    }

    fn data_depth(&mut self, set: &'a SelectionSet) -> usize {
        self.max_over(set, Memo::Depth, Self::data_depth, |walk, field| {
            if is_introspection(field) {
                walk.saw_introspection = true;
                1
            } else {
                1 + walk.data_depth(&field.selection_set.node)
            }
        })
    }

    /// The most list fields nested under any introspection field in `set`.
    fn introspection_lists(&mut self, set: &'a SelectionSet) -> usize {
        self.max_over(
            set,
            Memo::Introspection,
            Self::introspection_lists,
            |walk, field| {
                if is_introspection(field) {
                    walk.lists_in(&field.selection_set.node)
                } else {
                    walk.introspection_lists(&field.selection_set.node)
                }
            },
        )
    }

    /// The deepest nesting of introspection list fields in `set`.
    fn lists_in(&mut self, set: &'a SelectionSet) -> usize {
        self.max_over(set, Memo::Lists, Self::lists_in, |walk, field| {
            let own = usize::from(INTROSPECTION_LISTS.contains(&field.name.node.as_str()));
            own + walk.lists_in(&field.selection_set.node)
        })
    }
}

/// `__schema` and `__type`; `__typename` is an ordinary leaf.
fn is_introspection(field: &Field) -> bool {
    matches!(field.name.node.as_str(), "__schema" | "__type")
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn depth_ok(query: &str, max: usize) -> bool {
        check(&parse_query(query).expect("parses"), max, true).is_ok()
    }

    #[test]
    fn introspection_can_be_refused_even_inside_fragments() {
        let q = "{ __typename ...F } fragment F on Query { __type(name: \"Query\") { name } }";
        let doc = parse_query(q).expect("parses");
        assert!(check(&doc, 12, true).is_ok());
        assert!(check(&doc, 12, false).is_err());
        assert!(check(&parse_query("{ __typename }").expect("parses"), 12, false).is_ok());
    }

    #[test]
    fn data_depth_counts_fields_through_fragments() {
        let q = "query { a { b { c } } ...F } fragment F on Query { x { y { z { w } } } }";
        assert!(depth_ok(q, 4));
        assert!(!depth_ok(q, 3));
    }

    #[test]
    fn introspection_is_not_data_depth_but_has_its_own_bound() {
        let of_type = "ofType { ".repeat(12) + "name" + &" }".repeat(12);
        assert!(depth_ok(
            &format!("{{ __schema {{ types {{ fields {{ type {{ {of_type} }} }} }} }} }}"),
            3
        ));
        let cyclic = "{ __type(name: \"Query\") { fields { type { fields { type { fields { name } } } } } } }";
        assert!(!depth_ok(cyclic, 12));
        let via_fragment = "{ __schema { types { ...T } } } fragment T on __Type { fields { type { fields { type { interfaces { name } } } } } }";
        assert!(!depth_ok(via_fragment, 12));
    }

    #[test]
    fn fragment_cycles_end() {
        assert!(depth_ok(
            "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
            3
        ));
    }
}
