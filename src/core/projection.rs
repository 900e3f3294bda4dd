//! Grouping call shapes the way a set of policies sees them, so that replay
//! checks each distinct shape *as the policies see it* once.
//!
//! A policy that never reads `context.input.body` decides a call the same way
//! whatever the body says, as long as the body is present and of the same type.
//! Projecting shapes onto the paths the policies read collapses thousands of
//! free-text variants into one request; that is what keeps replay of a fleet
//! fast without skipping a single decision.

use super::summary::{self, ShapeKey, Slice};
use serde_json::Value;
use std::collections::HashMap;

/// A coarse type tag: values with the same tag map to Cedar the same way,
/// including whether a number fits the Cedar type it may be read as.
fn type_tag(value: &Value) -> u32 {
    let fits_decimal = |n: &serde_json::Number| super::types::decimal_scaled(n).is_some();
    match value {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(n) if n.is_f64() && fits_decimal(n) => 2,
        Value::Number(n) if n.is_f64() => 5,
        Value::Number(n) if n.as_i64().is_none() => 6,
        Value::Number(n) if fits_decimal(n) => 3,
        Value::Number(_) => 7,
        Value::String(_) => 4,
        Value::Array(items) => 8 + items.iter().map(type_tag).fold(0, |acc, t| acc | (1 << t.min(7))),
        Value::Object(_) => 400,
    }
}

/// Values at or above this index in a projected key are type tags, not value indices.
const TAG_BASE: u32 = u32::MAX - 1024;

/// Group shapes that the policies cannot tell apart. Returns groups in key
/// order, each as indices into `shapes`.
pub fn group(slice: &Slice, shapes: &[&ShapeKey], read: Option<&[Vec<String>]>) -> Vec<Vec<usize>> {
    let matters: Vec<bool> = slice
        .leaves
        .iter()
        .map(|leaf| {
            read.is_none_or(|paths| {
                paths
                    .iter()
                    .any(|p| leaf.path.starts_with(p) || p.starts_with(&leaf.path))
            })
        })
        .collect();
    // Bindings matter only to rules that read the session.
    let session_read = read.is_none_or(|paths| paths.iter().any(|p| summary::is_session_path(p)));
    let mut groups: HashMap<ShapeKey, Vec<usize>> = HashMap::new();
    let mut order: Vec<ShapeKey> = Vec::new();
    for (i, key) in shapes.iter().enumerate() {
        let projected = ShapeKey {
            server: key.server,
            cells: key
                .cells
                .iter()
                .map(|&(leaf, value)| {
                    if matters[leaf as usize] {
                        (leaf, value)
                    } else {
                        let entry = &slice.leaves[leaf as usize].table.entries()[value as usize];
                        (leaf, TAG_BASE + type_tag(&entry.value))
                    }
                })
                .collect(),
            bound: if session_read {
                key.bound.clone()
            } else {
                Vec::new()
            },
        };
        groups
            .entry(projected.clone())
            .or_insert_with(|| {
                order.push(projected);
                Vec::new()
            })
            .push(i);
    }
    order
        .into_iter()
        .map(|k| groups.remove(&k).unwrap_or_default())
        .collect()
}
