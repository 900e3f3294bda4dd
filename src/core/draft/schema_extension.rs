//! The schema a draft is checked against: the repository's schema, extended
//! with the argument types the catalogue declares and the observations show,
//! the session attributes calls carried (`context.session`), and the element
//! keys of set arguments all of one kind (`context.derived`). Types that
//! contradict each other are reported, not guessed at.

use crate::core::catalogue::Catalogue;
use crate::core::schema::Schema;
use crate::core::summary::Summary;
use crate::core::types::{ArgType, Attr, Inferred};
use std::collections::BTreeMap;

/// Extend the schema with the catalogue's and the observations' argument
/// types; returns the type conflicts, worded for the evidence.
pub(super) fn extend_schema(
    schema: &mut Schema,
    summary: &Summary,
    catalogue: Option<&Catalogue>,
) -> Vec<String> {
    let mut conflicts = Vec::new();
    let mut problems = Vec::new();
    if let Some(catalogue) = catalogue {
        for (name, tool) in &catalogue.tools {
            conflicts.extend(schema.add_tool(name, &tool.args));
        }
    }
    // Observed types as schema attributes; a conflicting type cannot be represented.
    let mut attributes = |tool: &str, what: &str, types| {
        let mut attrs = BTreeMap::new();
        for (name, inferred) in types {
            match Inferred::to_arg_type(&inferred) {
                Some(ty) => {
                    attrs.insert(name, Attr { ty, required: false });
                }
                None if inferred == Inferred::Conflict => problems.push(format!(
                    "{tool}: {what} `{name}` was observed with incompatible types; calls carrying it cannot be represented"
                )),
                None => {}
            }
        }
        attrs
    };
    for (tool, types) in summary.tool_types() {
        let attrs = attributes(&tool, "argument", types);
        conflicts.extend(schema.add_tool(&tool, &attrs));
    }
    for (tool, types) in summary.session_types() {
        let attrs = attributes(&tool, "session attribute", types);
        conflicts.extend(schema.add_session(&tool, &attrs));
    }
    let strings = ArgType::Set(Box::new(ArgType::String));
    for (tool, args) in summary.element_kinds() {
        for (arg, kind) in args {
            // Only where the schema agrees the argument is a set of strings.
            if schema
                .tool(&tool)
                .and_then(|a| a.get(&arg))
                .is_some_and(|a| a.ty == strings)
            {
                schema.add_derived(&tool, &arg, &[kind]);
            }
        }
    }
    problems.extend(conflicts.into_iter().map(|c| {
        format!(
            "{}: argument `{}` is {} in the schema but {} was observed; calls carrying it cannot be represented",
            c.tool,
            c.path.join("."),
            c.schema_type,
            c.observed
        )
    }));
    problems
}
