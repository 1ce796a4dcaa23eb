//! The document's size as written and once its fragments are expanded: the walks behind the
//! alias, directive, spread, selection, depth and introspection limits.

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet, TypeCondition};
use async_graphql::{Name, Positioned};

use super::refusal::Refusal;

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

/// What the document contains as written (fragments counted once, where they are defined).
#[derive(Default)]
pub(super) struct Written {
    pub(super) aliases: usize,
    pub(super) directives: usize,
    pub(super) spreads: usize,
}

impl Written {
    pub(super) fn count(&mut self, set: &Positioned<SelectionSet>) {
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
pub(super) struct Size {
    pub(super) selections: u64,
    pub(super) depth: u64,
    pub(super) introspection_depth: u64,
}

impl Size {
    /// Two sets side by side: their selections add up, the deeper one sets the depth.
    pub(super) fn beside(self, other: Size) -> Size {
        Size {
            selections: self.selections.saturating_add(other.selections),
            depth: self.depth.max(other.depth),
            introspection_depth: self.introspection_depth.max(other.introspection_depth),
        }
    }

    /// The larger of each measure: a fragment definition counts against the limits on its
    /// own, not added to the operations that use it.
    pub(super) fn worst(self, other: Size) -> Size {
        Size {
            selections: self.selections.max(other.selections),
            depth: self.depth.max(other.depth),
            introspection_depth: self.introspection_depth.max(other.introspection_depth),
        }
    }
}

/// Memoised expansion of fragments: each (fragment, introspection or not) is computed once.
pub(super) struct Expansion<'a> {
    document: &'a ExecutableDocument,
    memo: HashMap<(&'a Name, bool), Option<Size>>,
}

impl<'a> Expansion<'a> {
    pub(super) fn new(document: &'a ExecutableDocument) -> Self {
        Expansion {
            document,
            memo: HashMap::new(),
        }
    }

    /// `introspection`: inside `__schema` or `__type`, where data depth does not grow.
    pub(super) fn set(
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

    pub(super) fn fragment(
        &mut self,
        name: &'a Name,
        introspection: bool,
    ) -> Result<Size, Refusal> {
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

/// Fragments on `__Type`, `__Field`, … only ever apply inside introspection.
fn on_introspection_type(condition: &Positioned<TypeCondition>) -> bool {
    condition.node.on.node.starts_with("__")
}
