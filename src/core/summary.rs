//! Observation summaries: calls folded into distinct call shapes, per agent and tool.
//!
//! Memory grows with distinct shapes, not with calls. Each argument keeps its
//! exact values while they are few (the literal rung needs them); past
//! [`EXACT_VALUES`] it keeps only structural keys (`classify::Shape`) with
//! representative values, which is all the wider rungs can test. A call shape is
//! the server plus one value-or-key per argument, so a million calls whose free
//! text differs collapse into the few shapes a reviewer cares about.

use super::classify::{self, ElementKind, Shape};
use super::mapping::SESSION_ROOT;
use super::observation::{Call, ShadowDecision};
use super::secrets;
use super::types::Inferred;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A multiply-rotate hasher (FxHash's recipe): the summary hashes every
/// argument of every call, and SipHash's DoS resistance buys nothing for
/// keys that are ours (paths, shapes, indices).
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.write_u64(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.write_u64(u64::from_le_bytes(last) ^ (rest.len() as u64) << 59);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(SEED);
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The arguments and the session (if any) of one call standing for a shape.
pub type RepresentativeCall = (Map<String, Value>, Option<Map<String, Value>>);

/// HashMap with [`FastHasher`].
pub type HashMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// Exact values kept per argument before it switches to structural keys. It
/// bounds the literal rung: no preset may list more values than this.
pub const EXACT_VALUES: usize = 32;
/// Call shapes kept per (agent, tool) before the busiest argument is summarised.
pub const SHAPES_PER_SLICE: usize = 4096;
/// Sources remembered per shape for the evidence.
const SOURCES_PER_SHAPE: usize = 8;
/// Trace ids remembered per shape for the evidence.
const TRACES_PER_SHAPE: usize = 2;

/// All observed calls, summarised.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Summary {
    agents: HashMap<String, HashMap<String, Slice>>,
    /// Calls seen, counting `count`.
    pub calls: u64,
    /// Calls seen without their arguments, by agent and tool: they shape no
    /// rule (nothing says what a rule should allow), so they are only counted,
    /// for the evidence. Not in `calls`.
    #[serde(default)]
    pub without_args: BTreeMap<String, BTreeMap<String, u64>>,
}

/// The calls of one agent to one tool.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Slice {
    pub servers: Vec<String>,
    pub leaves: Vec<Leaf>,
    trie: PathTrie,
    pub shapes: HashMap<ShapeKey, ShapeStats>,
    pub calls: u64,
    /// The key of the call being added (see [`Slice::add`]).
    #[serde(skip)]
    scratch: ShapeKey,
}

/// One distinct call shape: server index and (leaf index, value index) per present argument
/// and session attribute, and which arguments equalled which session attributes.
#[derive(Debug, Default, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ShapeKey {
    pub server: u32,
    pub cells: Vec<(u32, u32)>,
    /// (argument leaf, session leaf): the argument's value was the session
    /// attribute's (for a set, every element was). Sorted.
    #[serde(default)]
    pub bound: Vec<(u32, u32)>,
}

/// What is known about the calls of one shape.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShapeStats {
    pub count: u64,
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    pub sources: BTreeSet<String>,
    /// Calls that the policy on `main` denied while the node shadowed.
    pub shadow_denied: u64,
    pub traces: BTreeSet<String>,
}

impl ShapeStats {
    fn merge(&mut self, other: &ShapeStats) {
        self.count = self.count.saturating_add(other.count);
        self.first_seen = earliest(self.first_seen, other.first_seen);
        self.last_seen = latest(self.last_seen, other.last_seen);
        // Keep the smallest few, not the first few: the summary must not depend on call order.
        keep_smallest(&mut self.sources, &other.sources, SOURCES_PER_SHAPE);
        self.shadow_denied = self.shadow_denied.saturating_add(other.shadow_denied);
        keep_smallest(&mut self.traces, &other.traces, TRACES_PER_SHAPE);
    }
}

/// Insert into a set of the `limit` smallest items (order-independent, like merging).
fn keep_one(into: &mut BTreeSet<String>, item: &str, limit: usize) {
    if (into.len() >= limit && into.last().is_some_and(|last| item >= last.as_str())) || into.contains(item) {
        return;
    }
    into.insert(item.to_string());
    if into.len() > limit {
        into.pop_last();
    }
}

fn keep_smallest(into: &mut BTreeSet<String>, from: &BTreeSet<String>, limit: usize) {
    for item in from {
        if into.len() >= limit && into.last().is_some_and(|last| item >= last) {
            break;
        }
        into.insert(item.clone());
        if into.len() > limit {
            into.pop_last();
        }
    }
}

/// The earlier of two optional times.
pub fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

/// The later of two optional times.
pub fn latest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

/// One argument (a path through nested records) of one (agent, tool), or one
/// session attribute (path `["", name]`, see `mapping::SESSION_ROOT`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Leaf {
    pub path: Vec<String>,
    pub ty: Inferred,
    pub calls: u64,
    pub table: Table,
    pub distinct: DistinctCount,
    /// The argument's name says it carries a secret (`api_key`, `password`…).
    pub secret_name: bool,
}

/// The values of one argument: exact while few, structural keys after.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Table {
    Exact(Vec<Entry>, HashMap<u64, u32>),
    Keys(Vec<Entry>, HashMap<Shape, u32>),
}

/// An exact value, or a structural key with representatives.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// The exact value, or the key's first (for numbers: smallest) value.
    pub value: Value,
    /// For number keys: the largest value, so replay can test both ends.
    pub high: Option<Value>,
    /// `value_hash(&value)`, kept so representatives are compared without rehashing.
    pub hash: u64,
    pub shape: Shape,
    /// The value (or one the key stands for) contains a secret: never list it.
    pub secret: bool,
    pub count: u64,
}

impl Table {
    pub fn entries(&self) -> &[Entry] {
        match self {
            Table::Exact(e, _) | Table::Keys(e, _) => e,
        }
    }

    pub fn is_exact(&self) -> bool {
        matches!(self, Table::Exact(..))
    }

    fn entries_mut(&mut self) -> &mut [Entry] {
        match self {
            Table::Exact(e, _) | Table::Keys(e, _) => e,
        }
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct PathTrie {
    children: HashMap<String, PathTrie>,
    leaf: Option<u32>,
}

/// A distinct-value count: exact while small, a k-minimum-values estimate after.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct DistinctCount {
    smallest: Vec<u64>,
}

const KMV_K: usize = 64;

impl DistinctCount {
    fn insert(&mut self, hash: u64) {
        if self.smallest.len() == KMV_K && hash >= *self.smallest.last().expect("full") {
            return;
        }
        if let Err(i) = self.smallest.binary_search(&hash) {
            self.smallest.insert(i, hash);
            self.smallest.truncate(KMV_K);
        }
    }

    /// The sketch of the union of both inputs.
    fn merge(&mut self, other: &DistinctCount) {
        for &h in &other.smallest {
            self.insert(h);
        }
    }

    /// `(estimate, exact)`.
    pub fn estimate(&self) -> (u64, bool) {
        if self.smallest.len() < KMV_K {
            return (self.smallest.len() as u64, true);
        }
        let kth = *self.smallest.last().expect("full") as f64 / u64::MAX as f64;
        (((KMV_K - 1) as f64 / kth).round() as u64, false)
    }
}

/// A stable 64-bit hash of a JSON value, for exact-value lookup and the distinct count.
pub fn value_hash(value: &Value) -> u64 {
    fn walk(h: &mut FastHasher, v: &Value) {
        match v {
            Value::Null => h.write_u64(1),
            Value::Bool(b) => h.write_u64(2 + u64::from(*b)),
            Value::Number(n) => {
                h.write_u64(4);
                match n.as_i64() {
                    Some(i) => h.write_u64(i as u64),
                    None => h.write_u64(n.as_f64().unwrap_or(0.0).to_bits()),
                }
            }
            Value::String(s) => {
                h.write_u64(5);
                h.write(s.as_bytes());
            }
            Value::Array(items) => {
                h.write_u64(6 + items.len() as u64);
                items.iter().for_each(|i| walk(h, i));
            }
            Value::Object(map) => {
                h.write_u64(7 + map.len() as u64);
                for (k, v) in map {
                    h.write(k.as_bytes());
                    walk(h, v);
                }
            }
        }
    }
    let mut h = FastHasher(0);
    walk(&mut h, value);
    // SplitMix64's finaliser spreads the bits evenly for the distinct-count sketch.
    let mut x = h.finish();
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Shape and secrecy of a value; a secret-named argument is secret whatever it holds.
fn classify_value(leaf_secret: bool, value: &Value, scan_free_text: bool) -> (Shape, bool) {
    if leaf_secret {
        (Shape::Secret, true)
    } else {
        classify::classify(value, scan_free_text)
    }
}

fn as_f64(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

impl Leaf {
    /// A session attribute rather than an argument.
    pub fn is_session(&self) -> bool {
        is_session_path(&self.path)
    }

    fn new(path: Vec<String>) -> Leaf {
        let secret_name = path.last().is_some_and(|n| secrets::is_secret_name(n));
        Leaf {
            path,
            ty: Inferred::Unknown,
            calls: 0,
            table: Table::Exact(Vec::new(), HashMap::default()),
            distinct: DistinctCount::default(),
            secret_name,
        }
    }

    /// The index of `value` in the table; `None` when the exact table is full.
    fn intern(&mut self, value: &Value, hash: u64, count: u64) -> Option<u32> {
        match &mut self.table {
            Table::Exact(entries, index) => {
                // Every entry's hash is in the index: a hash not there is a
                // new value, one there but not equal a collision to look past.
                if let Some(&id) = index.get(&hash) {
                    if entries[id as usize].value == *value {
                        entries[id as usize].count = entries[id as usize].count.saturating_add(count);
                        return Some(id);
                    }
                    if let Some(id) = entries.iter().position(|e| e.value == *value) {
                        entries[id].count = entries[id].count.saturating_add(count);
                        return Some(id as u32);
                    }
                }
                if entries.len() >= EXACT_VALUES {
                    return None;
                }
                self.ty = self.ty.merge(&Inferred::of(value));
                let id = entries.len() as u32;
                let (shape, secret) = classify_value(self.secret_name, value, true);
                entries.push(Entry {
                    value: value.clone(),
                    high: None,
                    hash,
                    secret,
                    shape,
                    count,
                });
                index.insert(hash, id);
                Some(id)
            }
            Table::Keys(entries, index) => {
                if !value.is_string() || self.ty != Inferred::String {
                    self.ty = self.ty.merge(&Inferred::of(value));
                }
                let (shape, secret) = classify_value(self.secret_name, value, false);
                let id = match index.get(&shape) {
                    Some(&id) => id,
                    None => {
                        entries.push(Entry {
                            value: value.clone(),
                            high: None,
                            hash,
                            shape: shape.clone(),
                            secret,
                            count: 0,
                        });
                        let id = entries.len() as u32 - 1;
                        index.insert(shape, id);
                        id
                    }
                };
                entries[id as usize].secret |= secret;
                absorb(&mut entries[id as usize], value, hash, count);
                Some(id)
            }
        }
    }

    /// Switch to structural keys; returns old index → new index.
    /// Keys are classified the way key tables classify every later value
    /// (free text unscanned), so the table does not depend on which values
    /// happened to arrive while it was still exact.
    fn summarise(&mut self) -> Option<Vec<u32>> {
        let Table::Exact(entries, _) = &self.table else {
            return None;
        };
        let mut keys: Vec<Entry> = Vec::new();
        let mut index: HashMap<Shape, u32> = HashMap::default();
        let mut remap = Vec::with_capacity(entries.len());
        for e in entries {
            let (shape, secret) = classify_value(self.secret_name, &e.value, false);
            let id = match index.get(&shape) {
                Some(&id) => id,
                None => {
                    keys.push(Entry {
                        value: e.value.clone(),
                        high: None,
                        hash: e.hash,
                        shape: shape.clone(),
                        secret: false,
                        count: 0,
                    });
                    index.insert(shape, keys.len() as u32 - 1);
                    keys.len() as u32 - 1
                }
            };
            keys[id as usize].secret |= secret;
            absorb(&mut keys[id as usize], &e.value, e.hash, e.count);
            remap.push(id);
        }
        self.table = Table::Keys(keys, index);
        Some(remap)
    }
}

/// Count a value into a key entry. Representatives are chosen by content, not
/// arrival (numbers: smallest and largest; others: smallest hash), so the
/// summary is the same whatever order the calls come in.
fn absorb(entry: &mut Entry, value: &Value, hash: u64, count: u64) {
    entry.count = entry.count.saturating_add(count);
    if !value.is_number() && hash < entry.hash {
        entry.value = value.clone();
        entry.hash = hash;
    }
    if value.is_number() {
        if as_f64(value) < as_f64(&entry.value) {
            entry.value = value.clone();
            entry.hash = hash;
        }
        let high = entry.high.get_or_insert_with(|| value.clone());
        if as_f64(value) > as_f64(high) {
            *high = value.clone();
        }
    }
}

/// Whether a leaf path is a session attribute's.
pub fn is_session_path(path: &[String]) -> bool {
    path.first().is_some_and(|p| p == SESSION_ROOT)
}

/// Whether an argument value is the session attribute's: equal, or for a
/// non-empty set, every element equal.
fn binds(value: &Value, attribute: &Value) -> bool {
    match value {
        Value::String(_) | Value::Number(_) => value == attribute,
        Value::Array(items) => !items.is_empty() && items.iter().all(|i| i == attribute),
        _ => false,
    }
}

impl Slice {
    fn leaf_id(&mut self, path: &[&str]) -> u32 {
        let mut node = &mut self.trie;
        for segment in path {
            node = node.children.entry((*segment).to_string()).or_default();
        }
        if let Some(id) = node.leaf {
            return id;
        }
        let id = self.leaves.len() as u32;
        node.leaf = Some(id);
        self.leaves
            .push(Leaf::new(path.iter().map(|s| s.to_string()).collect()));
        id
    }

    fn lookup(&self, path: &[&str]) -> Option<u32> {
        let mut node = &self.trie;
        for segment in path {
            node = node.children.get(*segment)?;
        }
        node.leaf
    }

    fn add_leaf_value(&mut self, path: &[&str], value: &Value, count: u64, cells: &mut Vec<(u32, u32)>) {
        let id = match self.lookup(path) {
            Some(id) => id,
            None => self.leaf_id(path),
        };
        let hash = value_hash(value);
        let leaf = &mut self.leaves[id as usize];
        leaf.calls = leaf.calls.saturating_add(count);
        let exact_before = leaf.table.is_exact().then(|| leaf.table.entries().len());
        let value_id = match leaf.intern(value, hash, count) {
            Some(v) => v,
            None => {
                self.summarise_leaf(id, cells);
                self.leaves[id as usize]
                    .intern(value, hash, count)
                    .expect("key tables always accept")
            }
        };
        // A value an exact table already held was counted when first seen
        // (the sketch only ever drops hashes, so counting it again is a no-op).
        let leaf = &mut self.leaves[id as usize];
        if exact_before != Some(leaf.table.entries().len()) || !leaf.table.is_exact() {
            leaf.distinct.insert(hash);
        }
        cells.push((id, value_id));
    }

    /// Switch a leaf to structural keys and re-key the shapes (and the cells of
    /// the call being added) that refer to it.
    fn summarise_leaf(&mut self, leaf: u32, pending: &mut [(u32, u32)]) {
        let Some(remap) = self.leaves[leaf as usize].summarise() else {
            return;
        };
        for cell in pending.iter_mut().filter(|c| c.0 == leaf) {
            cell.1 = remap[cell.1 as usize];
        }
        let old = std::mem::take(&mut self.shapes);
        for (mut key, stats) in old {
            for cell in key.cells.iter_mut().filter(|c| c.0 == leaf) {
                cell.1 = remap[cell.1 as usize];
            }
            self.shapes.entry(key).or_default().merge(&stats);
        }
    }

    fn walk<'v>(
        &mut self,
        path: &mut Vec<&'v str>,
        map: &'v Map<String, Value>,
        count: u64,
        cells: &mut Vec<(u32, u32)>,
    ) {
        for (name, value) in map {
            path.push(name);
            match value {
                Value::Null => {}
                Value::Object(inner) if !inner.is_empty() => self.walk(path, inner, count, cells),
                _ => self.add_leaf_value(path, value, count, cells),
            }
            path.pop();
        }
    }

    /// (argument leaf, session leaf) for every argument value equal to a
    /// session attribute. Leaves exist: the call was walked.
    fn bindings(&self, args: &Map<String, Value>, session: &Map<String, Value>) -> Vec<(u32, u32)> {
        fn walk<'v>(
            slice: &Slice,
            path: &mut Vec<&'v str>,
            map: &'v Map<String, Value>,
            session: &[(u32, &Value)],
            out: &mut Vec<(u32, u32)>,
        ) {
            for (name, value) in map {
                path.push(name);
                match value {
                    Value::Object(inner) if !inner.is_empty() => walk(slice, path, inner, session, out),
                    _ => {
                        for (attribute, attribute_value) in session {
                            if binds(value, attribute_value) {
                                if let Some(leaf) = slice.lookup(path) {
                                    out.push((leaf, *attribute));
                                }
                            }
                        }
                    }
                }
                path.pop();
            }
        }
        let attributes: Vec<(u32, &Value)> = session
            .iter()
            .filter_map(|(name, v)| self.lookup(&[SESSION_ROOT, name]).map(|leaf| (leaf, v)))
            .collect();
        let mut out = Vec::new();
        walk(self, &mut Vec::new(), args, &attributes, &mut out);
        out.sort_unstable();
        out
    }

    fn add(&mut self, call: &Call, source: Option<&str>) {
        self.calls = self.calls.saturating_add(call.count);
        let server = self.server_index(&call.server);
        // The key is built in a buffer kept between calls: a shape seen
        // before costs no allocation.
        let mut key = std::mem::take(&mut self.scratch);
        key.server = server;
        key.cells.clear();
        key.bound.clear();
        self.walk(&mut Vec::new(), &call.args, call.count, &mut key.cells);
        if let Some(session) = call.session.as_ref().filter(|s| !s.is_empty()) {
            for (name, value) in session {
                self.add_leaf_value(&[SESSION_ROOT, name], value, call.count, &mut key.cells);
            }
            key.bound = self.bindings(&call.args, session);
        }
        key.cells.sort_unstable();
        // Fold the call straight in: no per-call sets or strings unless kept.
        let stats = if self.shapes.contains_key(&key) {
            let stats = self.shapes.get_mut(&key).expect("present");
            self.scratch = key;
            stats
        } else {
            self.shapes.entry(key).or_default()
        };
        stats.count = stats.count.saturating_add(call.count);
        stats.first_seen = earliest(stats.first_seen, call.first_seen);
        stats.last_seen = latest(stats.last_seen, call.last_seen);
        if call.decision == Some(ShadowDecision::Deny) {
            stats.shadow_denied = stats.shadow_denied.saturating_add(call.count);
        }
        if let Some(source) = source {
            keep_one(&mut stats.sources, source, SOURCES_PER_SHAPE);
        }
        if let Some(trace) = &call.trace_id {
            keep_one(&mut stats.traces, trace, TRACES_PER_SHAPE);
        }
        if self.shapes.len() > SHAPES_PER_SLICE {
            self.shed_shapes();
        }
    }

    fn server_index(&mut self, server: &str) -> u32 {
        match self.servers.iter().position(|s| s == server) {
            Some(i) => i as u32,
            None => {
                self.servers.push(server.to_string());
                self.servers.len() as u32 - 1
            }
        }
    }

    /// Intern one of another summary's entries into `leaf`; `pending` holds
    /// value indices already mapped, re-keyed if the leaf is summarised.
    fn absorb_entry(&mut self, leaf: u32, entry: &Entry, from_keys: bool, pending: &mut [(u32, u32)]) -> u32 {
        let hash = entry.hash;
        let id = match self.leaves[leaf as usize].intern(&entry.value, hash, entry.count) {
            Some(id) => id,
            None => {
                self.summarise_leaf(leaf, pending);
                self.leaves[leaf as usize]
                    .intern(&entry.value, hash, entry.count)
                    .expect("key tables always accept")
            }
        };
        let table = &mut self.leaves[leaf as usize].table;
        if let Some(high) = &entry.high {
            if let Table::Keys(entries, _) = table {
                absorb(&mut entries[id as usize], high, value_hash(high), 0);
            }
        }
        // A key entry's secrecy covers values this leaf never saw itself; an
        // exact entry's is recomputed by `intern`, the way this table sees values.
        if from_keys {
            table.entries_mut()[id as usize].secret |= entry.secret;
        }
        id
    }

    /// Fold in another summary's calls to the same (agent, tool).
    fn merge(&mut self, other: Slice) {
        self.calls = self.calls.saturating_add(other.calls);
        let servers: Vec<u32> = other.servers.iter().map(|s| self.server_index(s)).collect();
        // Per leaf of `other`: its index here, and its value indices here.
        let mut leaf_map = Vec::with_capacity(other.leaves.len());
        let mut value_maps = Vec::with_capacity(other.leaves.len());
        for leaf in &other.leaves {
            let path: Vec<&str> = leaf.path.iter().map(String::as_str).collect();
            let id = match self.lookup(&path) {
                Some(id) => id,
                None => self.leaf_id(&path),
            };
            {
                let mine = &mut self.leaves[id as usize];
                mine.ty = mine.ty.merge(&leaf.ty);
                mine.calls = mine.calls.saturating_add(leaf.calls);
                mine.distinct.merge(&leaf.distinct);
            }
            if !leaf.table.is_exact() {
                self.summarise_leaf(id, &mut []);
            }
            let mut mapped: Vec<(u32, u32)> = Vec::with_capacity(leaf.table.entries().len());
            for entry in leaf.table.entries() {
                let v = self.absorb_entry(id, entry, !leaf.table.is_exact(), &mut mapped);
                mapped.push((id, v));
            }
            leaf_map.push(id);
            value_maps.push(mapped.into_iter().map(|(_, v)| v).collect::<Vec<u32>>());
        }
        // Each leaf's values were mapped after its last summarising, so the maps hold.
        for (key, stats) in other.shapes {
            let mut cells: Vec<(u32, u32)> = key
                .cells
                .iter()
                .map(|&(l, v)| (leaf_map[l as usize], value_maps[l as usize][v as usize]))
                .collect();
            cells.sort_unstable();
            let mut bound: Vec<(u32, u32)> = key
                .bound
                .iter()
                .map(|&(a, s)| (leaf_map[a as usize], leaf_map[s as usize]))
                .collect();
            bound.sort_unstable();
            let key = ShapeKey {
                server: servers[key.server as usize],
                cells,
                bound,
            };
            self.shapes.entry(key).or_default().merge(&stats);
        }
        while self.shapes.len() > SHAPES_PER_SLICE {
            let before = self.shapes.len();
            self.shed_shapes();
            if self.shapes.len() == before {
                break;
            }
        }
    }

    /// Too many shapes: summarise the exact argument with the most values.
    fn shed_shapes(&mut self) {
        let busiest = self
            .leaves
            .iter()
            .enumerate()
            .filter(|(_, l)| l.table.is_exact() && l.table.entries().len() > 1)
            .max_by_key(|(i, l)| (l.table.entries().len(), std::cmp::Reverse(*i)))
            .map(|(i, _)| i as u32);
        if let Some(leaf) = busiest {
            self.summarise_leaf(leaf, &mut []);
        }
    }

    /// Concrete argument objects that stand for a shape: one call, or for
    /// summarised numbers, the call with every smallest and every largest value.
    pub fn representatives(&self, key: &ShapeKey) -> Vec<Map<String, Value>> {
        self.representative_calls(key)
            .into_iter()
            .map(|(args, _)| args)
            .collect()
    }

    /// Like [`Slice::representatives`], with the session each call carried.
    /// A session attribute an argument was bound to takes the argument's
    /// value, so the representative keeps the binding.
    pub fn representative_calls(&self, key: &ShapeKey) -> Vec<RepresentativeCall> {
        let build = |high: bool| {
            let mut args = Map::new();
            let mut session = Map::new();
            let mut values: HashMap<u32, &Value> = HashMap::default();
            for (leaf_id, value) in &key.cells {
                let leaf = &self.leaves[*leaf_id as usize];
                let entry = &leaf.table.entries()[*value as usize];
                let v = if high {
                    entry.high.as_ref().unwrap_or(&entry.value)
                } else {
                    &entry.value
                };
                values.insert(*leaf_id, v);
                if leaf.is_session() {
                    session.insert(leaf.path[1].clone(), v.clone());
                } else {
                    insert_path(&mut args, &leaf.path, v.clone());
                }
            }
            // Summarised leaves keep representatives chosen apart: make every
            // argument bound to one attribute agree with it, as the calls did.
            let mut agreed: HashMap<u32, Value> = HashMap::default();
            for (argument, attribute) in &key.bound {
                let Some(value) = values.get(argument) else {
                    continue;
                };
                let leaf = &self.leaves[*argument as usize];
                match agreed.get(attribute) {
                    None => {
                        let scalar = match value {
                            Value::Array(items) => items.first().cloned().unwrap_or(Value::Null),
                            other => (*other).clone(),
                        };
                        session.insert(self.leaves[*attribute as usize].path[1].clone(), scalar.clone());
                        agreed.insert(*attribute, scalar);
                    }
                    Some(scalar) => {
                        let same = match value {
                            Value::Array(items) => Value::Array(vec![scalar.clone(); items.len()]),
                            _ => scalar.clone(),
                        };
                        insert_path(&mut args, &leaf.path, same);
                    }
                }
            }
            (args, (!session.is_empty()).then_some(session))
        };
        let ranged = key.cells.iter().any(|(leaf, value)| {
            self.leaves[*leaf as usize].table.entries()[*value as usize]
                .high
                .is_some()
        });
        if ranged {
            vec![build(false), build(true)]
        } else {
            vec![build(false)]
        }
    }

    /// The merged type of each top-level argument.
    pub fn arg_types(&self) -> BTreeMap<String, Inferred> {
        let mut root = Inferred::Record(BTreeMap::new());
        for leaf in self.leaves.iter().filter(|l| !l.is_session()) {
            insert_type(&mut root, &leaf.path, &leaf.ty);
        }
        match root {
            Inferred::Record(fields) => fields,
            _ => BTreeMap::new(),
        }
    }
}

impl Slice {
    /// The type of each session attribute the calls carried.
    pub fn session_types(&self) -> BTreeMap<String, Inferred> {
        self.leaves
            .iter()
            .filter(|l| l.is_session())
            .map(|l| (l.path[1].clone(), l.ty.clone()))
            .collect()
    }
}

fn insert_path(args: &mut Map<String, Value>, path: &[String], value: Value) {
    let (last, parents) = path.split_last().expect("paths are non-empty");
    let mut node = args;
    for p in parents {
        let entry = node.entry(p.clone()).or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        node = entry.as_object_mut().expect("object");
    }
    node.insert(last.clone(), value);
}

fn insert_type(node: &mut Inferred, path: &[String], ty: &Inferred) {
    let Inferred::Record(fields) = node else {
        *node = Inferred::Conflict;
        return;
    };
    let (first, rest) = path.split_first().expect("paths are non-empty");
    if rest.is_empty() {
        let merged = fields.get(first).map_or_else(|| ty.clone(), |t| t.merge(ty));
        fields.insert(first.clone(), merged);
    } else {
        let child = fields
            .entry(first.clone())
            .or_insert_with(|| Inferred::Record(BTreeMap::new()));
        insert_type(child, rest, ty);
    }
}

impl Summary {
    /// Fold one call in. `source` is the batch's node id, when known.
    pub fn add(&mut self, call: &Call, source: Option<&str>) {
        self.calls = self.calls.saturating_add(call.count);
        let tools = match self.agents.get_mut(call.agent.as_str()) {
            Some(t) => t,
            None => self.agents.entry(call.agent.clone()).or_default(),
        };
        let slice = match tools.get_mut(call.tool.as_str()) {
            Some(s) => s,
            None => tools.entry(call.tool.clone()).or_default(),
        };
        slice.add(call, source);
    }

    /// Count a call whose arguments were not recorded.
    pub fn add_without_args(&mut self, call: &Call) {
        let tools = match self.without_args.get_mut(call.agent.as_str()) {
            Some(t) => t,
            None => self.without_args.entry(call.agent.clone()).or_default(),
        };
        match tools.get_mut(call.tool.as_str()) {
            Some(n) => *n = n.saturating_add(call.count),
            None => {
                tools.insert(call.tool.clone(), call.count);
            }
        }
    }

    /// Fold in a summary of other calls (another thread's share of the input).
    /// The result does not depend on how calls were split or ordered.
    pub fn merge(&mut self, other: Summary) {
        self.calls = self.calls.saturating_add(other.calls);
        for (agent, tools) in other.without_args {
            let mine = self.without_args.entry(agent).or_default();
            for (tool, n) in tools {
                let count = mine.entry(tool).or_default();
                *count = count.saturating_add(n);
            }
        }
        for (agent, tools) in other.agents {
            let mine = self.agents.entry(agent).or_default();
            for (tool, slice) in tools {
                match mine.entry(tool) {
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(slice);
                    }
                    std::collections::hash_map::Entry::Occupied(mut o) => o.get_mut().merge(slice),
                }
            }
        }
    }

    /// Forget an agent's calls to one tool (reviewers asked to ignore it).
    pub fn remove_tool(&mut self, agent: &str, tool: &str) -> Option<u64> {
        if let Some(tools) = self.without_args.get_mut(agent) {
            tools.remove(tool);
        }
        let slice = self.agents.get_mut(agent)?.remove(tool)?;
        self.calls = self.calls.saturating_sub(slice.calls);
        Some(slice.calls)
    }

    /// Every (agent, tool, slice), sorted for deterministic output.
    pub fn slices(&self) -> Vec<(&str, &str, &Slice)> {
        let mut out: Vec<(&str, &str, &Slice)> = self
            .agents
            .iter()
            .flat_map(|(agent, tools)| {
                tools
                    .iter()
                    .map(move |(tool, s)| (agent.as_str(), tool.as_str(), s))
            })
            .collect();
        out.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        out
    }

    /// Distinct call shapes held, the measure memory grows with.
    pub fn shape_count(&self) -> usize {
        self.agents
            .values()
            .flat_map(HashMap::values)
            .map(|s| s.shapes.len())
            .sum()
    }

    /// The merged argument types of each tool across all agents.
    pub fn tool_types(&self) -> BTreeMap<String, BTreeMap<String, Inferred>> {
        self.merged_types(Slice::arg_types)
    }

    /// The merged session attribute types of each tool whose calls carried a session.
    pub fn session_types(&self) -> BTreeMap<String, BTreeMap<String, Inferred>> {
        let mut out = self.merged_types(Slice::session_types);
        out.retain(|_, attrs| !attrs.is_empty());
        out
    }

    /// Per tool, the top-level set arguments every observed element of which
    /// is of one kind (e-mail, URL, identifier), across all agents: the
    /// arguments a rule may constrain element by element.
    pub fn element_kinds(&self) -> BTreeMap<String, BTreeMap<String, ElementKind>> {
        let mut seen: BTreeMap<(String, String), Option<ElementKind>> = BTreeMap::new();
        for (_, tool, slice) in self.slices() {
            for leaf in &slice.leaves {
                let [name] = leaf.path.as_slice() else {
                    continue;
                };
                if !matches!(&leaf.ty, Inferred::Set(e) if **e == Inferred::String) {
                    continue;
                }
                for entry in leaf.table.entries() {
                    let kinds: Vec<Option<ElementKind>> = match &entry.shape {
                        Shape::Set(elements) => elements.iter().map(ElementKind::of).collect(),
                        _ => vec![None],
                    };
                    for kind in kinds {
                        seen.entry((tool.to_string(), name.clone()))
                            .and_modify(|have| {
                                if *have != kind {
                                    *have = None
                                }
                            })
                            .or_insert(kind);
                    }
                }
            }
        }
        let mut out: BTreeMap<String, BTreeMap<String, ElementKind>> = BTreeMap::new();
        for ((tool, arg), kind) in seen {
            if let Some(kind) = kind {
                out.entry(tool).or_default().insert(arg, kind);
            }
        }
        out
    }

    fn merged_types(
        &self,
        types: impl Fn(&Slice) -> BTreeMap<String, Inferred>,
    ) -> BTreeMap<String, BTreeMap<String, Inferred>> {
        let mut out: BTreeMap<String, BTreeMap<String, Inferred>> = BTreeMap::new();
        for (_, tool, slice) in self.slices() {
            let entry = out.entry(tool.to_string()).or_default();
            for (name, ty) in types(slice) {
                let merged = entry.get(&name).map_or_else(|| ty.clone(), |t| t.merge(&ty));
                entry.insert(name, merged);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(agent: &str, args: Value) -> Call {
        Call {
            agent: agent.into(),
            tool: "t".into(),
            server: "s".into(),
            args: args.as_object().unwrap().clone(),
            count: 1,
            first_seen: None,
            last_seen: None,
            decision: None,
            trace_id: None,
            session: None,
        }
    }

    #[test]
    fn identical_calls_share_a_shape() {
        let mut s = Summary::default();
        for _ in 0..10 {
            s.add(&call("a", json!({"x": 1, "m": {"k": "v"}})), Some("n1"));
        }
        assert_eq!(s.calls, 10);
        assert_eq!(s.shape_count(), 1);
        let (_, _, slice) = s.slices()[0];
        let (key, stats) = slice.shapes.iter().next().unwrap();
        assert_eq!(stats.count, 10);
        assert_eq!(stats.sources, BTreeSet::from(["n1".to_string()]));
        assert_eq!(
            slice.representatives(key),
            vec![json!({"x": 1, "m": {"k": "v"}}).as_object().unwrap().clone()]
        );
    }

    #[test]
    fn memory_is_bounded_by_shapes_not_calls() {
        let mut s = Summary::default();
        for i in 0..20_000 {
            s.add(
                &call(
                    "a",
                    json!({"q": format!("free text number {i}"), "id": format!("cust_{i:06}"), "n": i}),
                ),
                None,
            );
        }
        assert_eq!(s.calls, 20_000);
        // Free text collapses to one key, ids to their prefix, numbers to magnitudes.
        assert!(s.shape_count() <= 8, "{}", s.shape_count());
        let (_, _, slice) = s.slices()[0];
        let n = slice.leaves.iter().find(|l| l.path == ["n"]).unwrap();
        let (estimate, exact) = n.distinct.estimate();
        assert!(!exact);
        assert!((15_000..25_000).contains(&estimate), "{estimate}");
        // Replay sees both ends of every summarised number range.
        let reps: Vec<_> = slice
            .shapes
            .keys()
            .flat_map(|k| slice.representatives(k))
            .collect();
        let ns: Vec<i64> = reps.iter().map(|r| r["n"].as_i64().unwrap()).collect();
        assert!(ns.contains(&0) && ns.contains(&19_999), "{ns:?}");
    }

    #[test]
    fn calls_without_args_are_counted_apart_from_calls() {
        let mut a = Summary::default();
        a.add_without_args(&call("a", json!({})));
        let mut b = Summary::default();
        b.add_without_args(&call("a", json!({})));
        b.add(&call("a", json!({"x": 1})), None);
        a.merge(b);
        assert_eq!((a.calls, a.without_args["a"]["t"]), (1, 2));
        assert_eq!(a.shape_count(), 1);
        // Ignoring the tool forgets both.
        assert_eq!(a.remove_tool("a", "t"), Some(1));
        assert!(a.without_args["a"].is_empty());
    }

    #[test]
    fn bindings_to_the_session_survive_summarising_and_merging() {
        let with_session = |i: usize| {
            let mut c = call(
                "a",
                json!({"user_id": format!("u_{i:04}"), "ids": [format!("u_{i:04}")], "q": "x"}),
            );
            c.session = Some(
                json!({"user": format!("u_{i:04}"), "conversation": format!("c-{i}")})
                    .as_object()
                    .unwrap()
                    .clone(),
            );
            c
        };
        let (mut one, mut other) = (Summary::default(), Summary::default());
        for i in 0..60 {
            // Past 32 values the user ids are summarised; the bindings stay.
            if i % 2 == 0 { &mut one } else { &mut other }.add(&with_session(i), None);
        }
        one.merge(other);
        let (_, _, slice) = one.slices()[0];
        assert!(!slice
            .leaves
            .iter()
            .find(|l| l.path == ["user_id"])
            .unwrap()
            .table
            .is_exact());
        assert_eq!(slice.arg_types().len(), 3, "session attributes are not arguments");
        assert_eq!(slice.session_types()["user"], Inferred::String);
        let leaf = |path: &[&str]| slice.leaves.iter().position(|l| l.path == path).unwrap() as u32;
        let (user_id, ids, user) = (leaf(&["user_id"]), leaf(&["ids"]), leaf(&["", "user"]));
        for key in slice.shapes.keys() {
            assert_eq!(key.bound, vec![(user_id, user), (ids, user)], "{key:?}");
            for (args, session) in slice.representative_calls(key) {
                let session = session.unwrap();
                assert_eq!(session["user"], args["user_id"], "the binding holds");
                assert_eq!(args["ids"][0], session["user"]);
            }
        }
    }

    #[test]
    fn shape_keys_stored_before_sessions_still_load() {
        // The store writes structs as sequences (MessagePack): a key written
        // before `bound` existed ends early.
        let key: ShapeKey = serde_json::from_str("[0, [[1, 2]]]").unwrap();
        assert_eq!(key.cells, vec![(1, 2)]);
        assert!(key.bound.is_empty());
    }

    #[test]
    fn types_merge_across_agents() {
        let mut s = Summary::default();
        s.add(&call("a", json!({"x": 1})), None);
        s.add(&call("b", json!({"x": 1.5, "y": ["a"]})), None);
        let types = s.tool_types();
        assert_eq!(types["t"]["x"], Inferred::Decimal);
        assert_eq!(types["t"]["y"], Inferred::Set(Box::new(Inferred::String)));
    }
}
