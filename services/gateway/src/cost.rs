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

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet, TypeCondition};
use async_graphql::{Name, Positioned};

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

/// Brackets nested deeper than this are refused while counting tokens, before the parser
/// (which recurses once per level) sees them. No query within the depth limits comes close.
const MAX_NESTING: usize = 64;

/// Introspection fields that return a list of schema elements.
const INTROSPECTION_LISTS: [&str; 8] = [
    "types",
    "fields",
    "inputFields",
    "interfaces",
    "possibleTypes",
    "enumValues",
    "args",
    "directives",
];

/// Why a request was refused: the setting that refused it and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub limit: &'static str,
    pub message: String,
}

impl Refusal {
    fn over(limit: &'static str, what: &str, max: usize) -> Refusal {
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
    let mut expansion = Expansion {
        document: &document,
        memo: HashMap::new(),
    };
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

/// Counts GraphQL tokens, stopping as soon as there are more than `max`. Whitespace, commas
/// and comments are not tokens; a string is one token.
pub fn count_tokens(query: &str, max: usize) -> Result<usize, Refusal> {
    let bytes = query.as_bytes();
    let (mut i, mut tokens, mut nesting) = (0, 0usize, 0usize);
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
                continue;
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 3;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'.' if bytes[i..].starts_with(b"...") => i += 3,
            b'_' | b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' => {
                i += 1;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'.' | b'+'))
                {
                    i += 1;
                }
            }
            b'{' | b'(' | b'[' => {
                nesting += 1;
                if nesting > MAX_NESTING {
                    return Err(Refusal::over(
                        "max_query_depth",
                        "nested brackets",
                        MAX_NESTING,
                    ));
                }
                i += 1;
            }
            b'}' | b')' | b']' => {
                nesting = nesting.saturating_sub(1);
                i += 1;
            }
            _ => i += 1,
        }
        tokens += 1;
        if tokens > max {
            return Err(Refusal::over("max_query_tokens", "tokens", max));
        }
    }
    Ok(tokens)
}

/// What the document contains as written (fragments counted once, where they are defined).
#[derive(Default)]
struct Written {
    aliases: usize,
    directives: usize,
    spreads: usize,
}

impl Written {
    fn count(&mut self, set: &Positioned<SelectionSet>) {
        for item in &set.node.items {
            self.directives += item.node.directives().len();
            match &item.node {
                Selection::Field(field) => {
                    self.aliases += usize::from(field.node.alias.is_some());
                    self.count(&field.node.selection_set);
                }
                Selection::FragmentSpread(_) => self.spreads += 1,
                Selection::InlineFragment(inline) => self.count(&inline.node.selection_set),
            }
        }
    }
}

/// The expanded size of a selection set. Saturating: a doubling per fragment overflows u64
/// after 64 levels, and the answer is "too many" either way.
#[derive(Debug, Default, Clone, Copy)]
struct Size {
    selections: u64,
    depth: u64,
    introspection_depth: u64,
}

impl Size {
    /// Two sets side by side: their selections add up, the deeper one sets the depth.
    fn beside(self, other: Size) -> Size {
        Size {
            selections: self.selections.saturating_add(other.selections),
            depth: self.depth.max(other.depth),
            introspection_depth: self.introspection_depth.max(other.introspection_depth),
        }
    }

    /// The larger of each measure: a fragment definition counts against the limits on its
    /// own, not added to the operations that use it.
    fn worst(self, other: Size) -> Size {
        Size {
            selections: self.selections.max(other.selections),
            depth: self.depth.max(other.depth),
            introspection_depth: self.introspection_depth.max(other.introspection_depth),
        }
    }
}

/// Memoised expansion of fragments: each (fragment, introspection or not) is computed once.
struct Expansion<'a> {
    document: &'a ExecutableDocument,
    memo: HashMap<(&'a Name, bool), Option<Size>>,
}

impl<'a> Expansion<'a> {
    /// `introspection`: inside `__schema` or `__type`, where data depth does not grow.
    fn set(
        &mut self,
        set: &'a Positioned<SelectionSet>,
        introspection: bool,
    ) -> Result<Size, Refusal> {
        let mut size = Size::default();
        for item in &set.node.items {
            let part = match &item.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    let enters = name == "__schema" || name == "__type";
                    let inner = self.set(&field.node.selection_set, introspection || enters)?;
                    let lists = u64::from(introspection && INTROSPECTION_LISTS.contains(&name));
                    Size {
                        selections: inner.selections.saturating_add(1),
                        depth: if introspection {
                            0
                        } else if enters {
                            1
                        } else {
                            inner.depth + 1
                        },
                        introspection_depth: inner.introspection_depth + lists,
                    }
                }
                Selection::InlineFragment(inline) => {
                    let on_schema = inline.node.type_condition.as_ref();
                    let inside = introspection || on_schema.is_some_and(on_introspection_type);
                    self.set(&inline.node.selection_set, inside)?
                }
                Selection::FragmentSpread(spread) => {
                    self.fragment(&spread.node.fragment_name.node, introspection)?
                }
            };
            size = size.beside(part);
        }
        Ok(size)
    }

    fn fragment(&mut self, name: &'a Name, introspection: bool) -> Result<Size, Refusal> {
        let Some(fragment) = self.document.fragments.get(name) else {
            // Unknown fragments are refused by validation; they add nothing here.
            return Ok(Size::default());
        };
        let introspection = introspection || on_introspection_type(&fragment.node.type_condition);
        match self.memo.get(&(name, introspection)) {
            Some(Some(size)) => return Ok(*size),
            Some(None) => {
                return Err(Refusal {
                    limit: "max_query_fragment_spreads",
                    message: format!("fragment {name} spreads itself"),
                });
            }
            None => {}
        }
        self.memo.insert((name, introspection), None);
        let size = self.set(&fragment.node.selection_set, introspection)?;
        self.memo.insert((name, introspection), Some(size));
        Ok(size)
    }
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

/// Fragments on `__Type`, `__Field`, … only ever apply inside introspection.
fn on_introspection_type(condition: &Positioned<TypeCondition>) -> bool {
    condition.node.on.node.starts_with("__")
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const INTROSPECTION: &str = include_str!("../testdata/introspection.graphql");

    fn refused_by(query: &str) -> &'static str {
        check(query, &CostLimits::default()).unwrap_err().limit
    }

    #[test]
    fn fragment_explosion_is_refused_in_linear_time() {
        let started = std::time::Instant::now();
        assert_eq!(refused_by(&fragment_explosion(22)), "max_query_selections");
        let many_spreads = CostLimits {
            max_tokens: 100_000,
            max_fragment_spreads: 1000,
            ..CostLimits::default()
        };
        let refused = check(&fragment_explosion(100), &many_spreads).unwrap_err();
        assert_eq!(
            refused.limit, "max_query_selections",
            "saturates, no overflow"
        );
        assert!(started.elapsed() < std::time::Duration::from_millis(50));
    }

    #[test]
    fn the_standard_introspection_query_passes() {
        assert!(
            check(INTROSPECTION, &CostLimits::default())
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn deep_data_and_deep_introspection_lists_are_refused() {
        let mut deep = "id".to_string();
        for _ in 0..12 {
            deep = format!("orders {{ {deep} }}");
        }
        assert_eq!(refused_by(&format!("{{ {deep} }}")), "max_query_depth");
        let lists =
            "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }";
        assert_eq!(refused_by(lists), "max_introspection_depth");
        let brackets = format!("{}{}", "{ a ".repeat(100), "}".repeat(100));
        assert_eq!(refused_by(&brackets), "max_query_depth");
    }

    #[test]
    fn typename_counts_as_a_selection() {
        let many = format!("{{ {} }}", "__typename ".repeat(1001));
        assert_eq!(refused_by(&many), "max_query_selections");
    }

    #[test]
    fn tokens_aliases_directives_and_spreads_are_bounded() {
        assert_eq!(refused_by(&"{ a }".repeat(700)), "max_query_tokens");
        let aliases: String = (0..31).map(|i| format!(" a{i}: me {{ id }}")).collect();
        assert_eq!(refused_by(&format!("{{{aliases} }}")), "max_query_aliases");
        let directives = format!("{{ me {} {{ id }} }}", "@skip(if: false) ".repeat(51));
        assert_eq!(refused_by(&directives), "max_query_directives");
        let spreads = format!(
            "{{ {} }} fragment F on Query {{ me {{ id }} }}",
            "...F ".repeat(101)
        );
        assert_eq!(refused_by(&spreads), "max_query_fragment_spreads");
        let cycle = "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }";
        assert_eq!(refused_by(cycle), "max_query_fragment_spreads");
    }

    #[test]
    fn tokens_are_counted_like_the_grammar() {
        let q = "query Q($id: ID!) { # a comment\n product(id: $id, s: \"a, b\") { ...on Product { id } } }";
        // query Q ( $ id : ID ! ) { product ( id : $ id s : "…" ) { ... on Product { id } } }
        assert_eq!(count_tokens(q, 1000).unwrap(), 29);
        assert_eq!(
            count_tokens("\"\"\"block \\\"\"\" string\"\"\" x", 10).unwrap(),
            2
        );
    }
}
