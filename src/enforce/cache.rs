//! Decisions remembered per policy commit. Agents repeat themselves: the same
//! recipient, the same path, a new message body. A decision depends only on
//! the values the rules read, so the key keeps every argument's value except
//! strings no rule of the (agent, tool) reads, which count by presence alone
//! (they still map to Cedar strings: the schema says so). The key is the
//! canonical text itself, compared exactly: no hash collision can borrow
//! another call's decision. The cache lives in the loaded commit and goes
//! with it.

use super::authzen::Query;
use super::Decision;
use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// Entries kept before the cache starts over (bounded memory under novel traffic).
const CAPACITY: usize = 65_536;

#[derive(Default)]
pub struct DecisionCache {
    entries: Mutex<HashMap<String, Decision>>,
    /// Lookups answered and not answered under this commit (`GET /metrics`;
    /// the benchmark proves its cold figures are misses with them).
    hits: AtomicU64,
    misses: AtomicU64,
}

impl DecisionCache {
    /// The canonical key of a call: JSON-quoted parts, so no two calls share one.
    pub fn key(query: &Query, unread_strings: &HashSet<String>) -> String {
        let mut key = String::with_capacity(128);
        for part in [&query.agent, &query.tool, &query.server] {
            let _ = write!(key, "{}\u{0}", serde_json::Value::from(part.as_str()));
        }
        for (name, value) in &query.args {
            let _ = write!(key, "{}:", serde_json::Value::from(name.as_str()));
            if value.is_string() && unread_strings.contains(name) {
                key.push_str("<string>");
            } else {
                let _ = write!(key, "{value}");
            }
            key.push('\u{0}');
        }
        // Rules may compare arguments with the session: it is part of every key.
        if let Some(session) = &query.session {
            let _ = write!(key, "session:{}", serde_json::Value::Object(session.clone()));
        }
        key
    }

    pub fn get(&self, key: &str) -> Option<Decision> {
        let found = self.entries.lock().expect("cache lock").get(key).cloned();
        match found {
            Some(_) => &self.hits,
            None => &self.misses,
        }
        .fetch_add(1, Relaxed);
        found
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Relaxed)
    }

    pub fn misses(&self) -> u64 {
        self.misses.load(Relaxed)
    }

    pub fn put(&self, key: String, outcome: &Decision) {
        let mut entries = self.entries.lock().expect("cache lock");
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(key, outcome.clone());
    }

    pub fn len(&self) -> usize {
        self.entries.lock().expect("cache lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn query(args: serde_json::Value) -> Query {
        Query {
            agent: "a".into(),
            tool: "send_email".into(),
            server: "gmail".into(),
            args: args.as_object().unwrap().clone(),
            session: None,
        }
    }

    #[test]
    fn unread_strings_count_by_presence_and_everything_else_by_value() {
        let unread: HashSet<String> = ["body".to_string()].into();
        let key = |args| DecisionCache::key(&query(args), &unread);
        let base = key(json!({"to": "x@a.com", "body": "hello"}));
        assert_eq!(base, key(json!({"to": "x@a.com", "body": "another text"})));
        assert_ne!(base, key(json!({"to": "y@a.com", "body": "hello"})));
        assert_ne!(base, key(json!({"to": "x@a.com"})), "presence counts");
        assert_ne!(
            base,
            key(json!({"to": "x@a.com", "body": 7})),
            "a non-string keeps its value"
        );
        assert_ne!(
            base,
            key(json!({"to": "x@a.com", "body": "hello", "bcc": "z@evil.com"}))
        );
        // Names and values cannot run into each other.
        assert_ne!(key(json!({"a": "b:c"})), key(json!({"a:b": "c"})));
        let mut other = query(json!({"to": "x@a.com", "body": "hello"}));
        other.session = Some(json!({"user": "u-2"}).as_object().unwrap().clone());
        assert_ne!(base, DecisionCache::key(&other, &unread), "the session counts");
    }
}
