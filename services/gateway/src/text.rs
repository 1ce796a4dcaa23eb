//! Text PostgreSQL cannot store: a NUL character in any string a client sends (argument
//! literal or variable, at any depth) is refused before anything runs, as BAD_USER_INPUT
//! naming the argument path (`input.email`, `search`), identically on both backends. Valid
//! UTF-8 is already guaranteed by JSON and GraphQL parsing; NUL is the one character left.

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Positioned, Value, Variables};

/// The first argument path holding a NUL, if any. Each fragment definition is visited once
/// where it is written, so this is linear in the document and the variables.
pub fn nul_argument(document: &ExecutableDocument, variables: &Variables) -> Option<String> {
    let sets = document
        .operations
        .iter()
        .map(|(_, op)| &op.node.selection_set)
        .chain(document.fragments.values().map(|f| &f.node.selection_set));
    for set in sets {
        if let Some(path) = in_set(set, variables) {
            return Some(path);
        }
    }
    None
}

fn in_set(set: &Positioned<SelectionSet>, variables: &Variables) -> Option<String> {
    for item in &set.node.items {
        let directives = item.node.directives().iter();
        let found = directives
            .flat_map(|d| d.node.arguments.iter())
            .chain(match &item.node {
                Selection::Field(field) => field.node.arguments.iter(),
                _ => [].iter(),
            })
            .find_map(|(name, value)| in_argument(name, &value.node, variables))
            .or_else(|| match &item.node {
                Selection::Field(field) => in_set(&field.node.selection_set, variables),
                Selection::InlineFragment(inline) => in_set(&inline.node.selection_set, variables),
                Selection::FragmentSpread(_) => None,
            });
        if found.is_some() {
            return found;
        }
    }
    None
}

fn in_argument(
    name: &Positioned<Name>,
    value: &async_graphql_value::Value,
    variables: &Variables,
) -> Option<String> {
    in_argument_at(value, name.node.to_string(), variables)
}

fn in_argument_at(
    value: &async_graphql_value::Value,
    path: String,
    variables: &Variables,
) -> Option<String> {
    use async_graphql_value::Value as Literal;
    match value {
        Literal::Variable(var) => in_value(variables.get(var)?, path),
        Literal::String(s) => s.contains('\0').then_some(path),
        Literal::List(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| in_argument_at(item, format!("{path}.{i}"), variables)),
        Literal::Object(fields) => fields
            .iter()
            .find_map(|(key, item)| in_argument_at(item, format!("{path}.{key}"), variables)),
        _ => None,
    }
}

fn in_value(value: &Value, path: String) -> Option<String> {
    match value {
        Value::String(s) => s.contains('\0').then_some(path),
        Value::List(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| in_value(item, format!("{path}.{i}"))),
        Value::Object(fields) => fields
            .iter()
            .find_map(|(key, item)| in_value(item, format!("{path}.{key}"))),
        _ => None,
    }
}

/// The refusal: BAD_USER_INPUT with `extensions.field`.
pub fn refusal(field: String) -> async_graphql::ServerError {
    let mut error = async_graphql::ServerError::new(
        format!("{field}: text must not contain NUL characters"),
        None,
    );
    let mut ext = async_graphql::ErrorExtensionValues::default();
    ext.set("code", "BAD_USER_INPUT");
    ext.set("field", field);
    error.extensions = Some(ext);
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(query: &str, variables: serde_json::Value) -> Option<String> {
        let document = async_graphql::parser::parse_query(query).unwrap();
        nul_argument(&document, &Variables::from_json(variables))
    }

    #[test]
    fn finds_nul_in_literals_variables_and_nested_inputs() {
        let nested = r#"mutation($n: String!) { placeOrder(input: {items: [{productId: "p", quantity: 1}, {productId: $n, quantity: 1}]}) { id } }"#;
        let register = "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }";
        let cases = [
            (
                r#"{ products(search: "a\u0000b") { totalCount } }"#,
                serde_json::json!({}),
                Some("search"),
            ),
            (
                register,
                serde_json::json!({"i": {"email": "a\u{0}@x.test", "password": "p", "name": "n"}}),
                Some("input.email"),
            ),
            (
                nested,
                serde_json::json!({"n": "x\u{0}"}),
                Some("input.items.1.productId"),
            ),
            (
                r#"{ ...F } fragment F on Query { product(id: "a\u0000") { id } }"#,
                serde_json::json!({}),
                Some("id"),
            ),
            (
                r#"{ products(search: "fine") { totalCount } }"#,
                serde_json::json!({}),
                None,
            ),
        ];
        for (query, variables, field) in cases {
            assert_eq!(find(query, variables).as_deref(), field, "{query}");
        }
    }
}
