//! The cost model's limits, each refusing the request it was written for.

use super::*;

const INTROSPECTION: &str = include_str!("../../testdata/introspection.graphql");

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
