//! Grouping a slice's gap into rules. The grouping decides how tight the
//! drafted policy is: one rule per argument combination where combinations are
//! disjoint, shared rules where one only adds optional arguments.

use crate::core::summary::{is_session_path, ShapeKey, ShapeStats, Slice};
use std::collections::{BTreeMap, BTreeSet};

/// The shapes one rule stands for.
type ShapeGroup<'a> = Vec<(&'a ShapeKey, &'a ShapeStats)>;

/// Group a slice's gap shapes into rules: one per server and distinct argument
/// combination. Combinations where one is a subset of another (an optional
/// argument) share a rule; disjoint ones (search by id vs by email) get their
/// own, which is tighter than one rule with every argument optional. Past
/// `max_clusters` combinations, one rule per server.
pub(super) fn cluster<'a>(
    slice: &Slice,
    gap: &[(&'a ShapeKey, &'a ShapeStats)],
    max_clusters: usize,
) -> Vec<(String, ShapeGroup<'a>)> {
    let mut signatures: BTreeMap<(String, BTreeSet<&[String]>), ShapeGroup<'a>> = BTreeMap::new();
    for (key, stats) in gap {
        let server = slice.servers[key.server as usize].clone();
        // Which session attributes a call carried does not make it another kind of call.
        let paths = key
            .cells
            .iter()
            .map(|(l, _)| slice.leaves[*l as usize].path.as_slice())
            .filter(|path| !is_session_path(path))
            .collect();
        signatures
            .entry((server, paths))
            .or_default()
            .push((*key, *stats));
    }
    let keys: Vec<&(String, BTreeSet<&[String]>)> = signatures.keys().collect();
    // Union-find over "same server and one combination contains the other".
    let mut parent: Vec<usize> = (0..keys.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for i in 0..keys.len() {
        for j in i + 1..keys.len() {
            let (a, b) = (keys[i], keys[j]);
            if a.0 == b.0 && (a.1.is_subset(&b.1) || b.1.is_subset(&a.1)) {
                let (ri, rj) = (root(&mut parent, i), root(&mut parent, j));
                parent[rj.max(ri)] = ri.min(rj);
            }
        }
    }
    let mut groups: BTreeMap<usize, (String, ShapeGroup<'a>)> = BTreeMap::new();
    for (i, (key, members)) in signatures.iter().enumerate() {
        let r = root(&mut parent, i);
        let group = groups.entry(r).or_insert_with(|| (key.0.clone(), Vec::new()));
        group.1.extend(members.iter().copied());
    }
    let mut clusters: Vec<(String, ShapeGroup<'a>)> = groups.into_values().collect();
    if clusters.len() > max_clusters {
        let mut by_server: BTreeMap<String, ShapeGroup<'a>> = BTreeMap::new();
        for (server, members) in clusters {
            by_server.entry(server).or_default().extend(members);
        }
        clusters = by_server.into_iter().collect();
    }
    for (_, members) in &mut clusters {
        members.sort_by(|a, b| a.0.cmp(b.0));
    }
    clusters
}
