//! The rolling observation window. Calls are folded into one summary per agent
//! and UTC day, so memory and storage grow with distinct shapes per day, not
//! with raw calls, and a draft covers exactly the last `window_days` days.

use super::observation::Batch;
use super::summary::Summary;
use std::collections::{BTreeMap, BTreeSet};

const DAY: i64 = 86_400;

/// (agent, UTC day number since the epoch).
pub type BucketKey = (String, i64);

#[derive(Debug, Default)]
pub struct Window {
    buckets: BTreeMap<BucketKey, Summary>,
    /// Buckets changed since the last [`Window::take_dirty`].
    dirty: BTreeSet<BucketKey>,
}

/// The days a draft covers, as Unix seconds: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: i64,
    pub end: i64,
}

pub fn day_of(unix: i64) -> i64 {
    unix.div_euclid(DAY)
}

/// The window of `days` days that ends with the day of `now`.
pub fn span(now: i64, days: u32) -> Span {
    let today = day_of(now);
    Span {
        start: (today - i64::from(days) + 1) * DAY,
        end: (today + 1) * DAY,
    }
}

impl Window {
    /// Fold a batch received at `received_at`. A call counts on the day it was
    /// last seen (never later than its arrival: node clocks may run ahead).
    /// The sequential definition [`Window::fold_all`] is tested against.
    pub fn fold(&mut self, batch: &Batch, received_at: i64) {
        let mut last: Option<BucketKey> = None;
        for call in &batch.calls {
            let seen = call.last_seen.unwrap_or(received_at).min(received_at);
            let day = day_of(seen);
            // Calls of one agent and day tend to come together: key strings are
            // built once per run, not per call.
            if last.as_ref().is_none_or(|(a, d)| *d != day || *a != call.agent) {
                let key = (call.agent.clone(), day);
                if !self.buckets.contains_key(&key) {
                    self.buckets.insert(key.clone(), Summary::default());
                }
                self.dirty.insert(key.clone());
                last = Some(key);
            }
            let key = last.as_ref().expect("set above");
            self.buckets
                .get_mut(key)
                .expect("inserted above")
                .add(call, Some(&batch.source));
        }
    }

    /// Fold many batches, `(batch, received_at)`, using two threads: buckets
    /// are split between them by agent, so each summary has one writer.
    /// Equivalent to folding them one by one.
    pub fn fold_all(&mut self, batches: &[(&Batch, i64)]) {
        let bucket_of = |call: &super::observation::Call, received_at: i64| {
            day_of(call.last_seen.unwrap_or(received_at).min(received_at))
        };
        // Create and mark every bucket first; the threads then only fill them.
        let mut involved = std::collections::HashSet::new();
        for (batch, received_at) in batches {
            let mut last: Option<(&str, i64)> = None;
            for call in &batch.calls {
                let day = bucket_of(call, *received_at);
                if last != Some((call.agent.as_str(), day)) {
                    let key = (call.agent.clone(), day);
                    if !self.buckets.contains_key(&key) {
                        self.buckets.insert(key.clone(), Summary::default());
                    }
                    self.dirty.insert(key.clone());
                    involved.insert(key);
                    last = Some((call.agent.as_str(), day));
                }
            }
        }
        let half = |agent: &str| agent.bytes().fold(0u8, |h, b| h.rotate_left(1) ^ b) & 1;
        let mut halves: [std::collections::HashMap<(&str, i64), &mut Summary>; 2] = Default::default();
        for (key, summary) in self.buckets.iter_mut().filter(|(k, _)| involved.contains(*k)) {
            halves[half(&key.0) as usize].insert((key.0.as_str(), key.1), summary);
        }
        std::thread::scope(|scope| {
            for (i, mut mine) in halves.into_iter().enumerate() {
                scope.spawn(move || {
                    for (batch, received_at) in batches {
                        for call in batch.calls.iter().filter(|c| half(&c.agent) as usize == i) {
                            let key = (call.agent.as_str(), bucket_of(call, *received_at));
                            if let Some(summary) = mine.get_mut(&key) {
                                summary.add(call, Some(&batch.source));
                            }
                        }
                    }
                });
            }
        });
    }

    /// Put back a bucket read from storage.
    pub fn restore(&mut self, key: BucketKey, summary: Summary) {
        self.buckets.insert(key, summary);
    }

    /// The agent's calls within `span`, merged.
    pub fn summary(&self, agent: &str, span: Span) -> Summary {
        let mut out = Summary::default();
        let (first, last) = (day_of(span.start), day_of(span.end - 1));
        let range = (agent.to_string(), first)..=(agent.to_string(), last);
        for summary in self.buckets.range(range).map(|(_, s)| s) {
            out.merge(summary.clone());
        }
        out
    }

    /// The first day the agent was observed on, among the days held.
    pub fn first_day(&self, agent: &str) -> Option<i64> {
        let from = (agent.to_string(), i64::MIN);
        self.buckets
            .range(from..)
            .next()
            .filter(|((a, _), _)| a == agent)
            .map(|((_, day), _)| *day)
    }

    /// Buckets changed since the last call, for the store to persist.
    pub fn take_dirty(&mut self) -> Vec<(BucketKey, &Summary)> {
        let dirty = std::mem::take(&mut self.dirty);
        dirty
            .into_iter()
            .filter_map(|key| self.buckets.get_key_value(&key).map(|(k, s)| (k.clone(), s)))
            .collect()
    }

    /// Persist this bucket at the next checkpoint again (the last one failed).
    pub fn mark_dirty(&mut self, key: BucketKey) {
        self.dirty.insert(key);
    }

    /// Drop days before `span`; returns the dropped keys.
    pub fn expire(&mut self, span: Span) -> Vec<BucketKey> {
        let first = day_of(span.start);
        let old: Vec<BucketKey> = self.buckets.keys().filter(|(_, d)| *d < first).cloned().collect();
        for key in &old {
            self.buckets.remove(key);
            self.dirty.remove(key);
        }
        old
    }

    /// Distinct call shapes held in memory.
    pub fn shape_count(&self) -> usize {
        self.buckets.values().map(Summary::shape_count).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::observation::Call;

    fn batch(agent: &str, last_seen: Option<i64>) -> Batch {
        Batch {
            source: "node-1".into(),
            policy_commit: None,
            calls: vec![Call {
                agent: agent.into(),
                tool: "t".into(),
                server: "s".into(),
                args: serde_json::Map::new(),
                count: 2,
                first_seen: None,
                last_seen,
                decision: None,
                trace_id: None,
                session: None,
            }],
            catalogues: Default::default(),
        }
    }

    #[test]
    fn only_days_inside_the_window_are_drafted_from() {
        let now = 100 * DAY + 5;
        let mut window = Window::default();
        window.fold(&batch("a", Some(now - 20 * DAY)), now);
        window.fold(&batch("a", Some(now - DAY)), now);
        window.fold(&batch("a", None), now);
        window.fold(&batch("b", None), now);
        assert_eq!(window.summary("a", span(now, 14)).calls, 4);
        assert_eq!(window.summary("a", span(now, 30)).calls, 6);
        assert_eq!(window.summary("b", span(now, 1)).calls, 2);
        assert_eq!(window.first_day("a"), Some(80));
        assert_eq!(window.first_day("c"), None);
        assert_eq!(window.expire(span(now, 14)), vec![("a".to_string(), 80)]);
        assert_eq!(window.first_day("a"), Some(99));
        assert_eq!(window.summary("a", span(now, 30)).calls, 4);
    }

    #[test]
    fn folding_in_parallel_equals_folding_in_turn() {
        let now = 100 * DAY;
        let batches: Vec<Batch> = ["a", "b", "c", "a", "d"]
            .iter()
            .enumerate()
            .map(|(i, agent)| batch(agent, Some(now - (i as i64 % 2) * DAY)))
            .collect();
        let mut one_by_one = Window::default();
        for b in &batches {
            one_by_one.fold(b, now);
        }
        let mut together = Window::default();
        let pairs: Vec<(&Batch, i64)> = batches.iter().map(|b| (b, now)).collect();
        together.fold_all(&pairs);
        for agent in ["a", "b", "c", "d"] {
            let (x, y) = (
                one_by_one.summary(agent, span(now, 3)),
                together.summary(agent, span(now, 3)),
            );
            assert_eq!((x.calls, x.shape_count()), (y.calls, y.shape_count()), "{agent}");
        }
        assert_eq!(one_by_one.take_dirty().len(), together.take_dirty().len());
    }

    #[test]
    fn clocks_ahead_count_on_the_day_of_arrival() {
        let now = 100 * DAY;
        let mut window = Window::default();
        window.fold(&batch("a", Some(now + 3 * DAY)), now);
        assert_eq!(window.summary("a", span(now, 1)).calls, 2);
    }

    #[test]
    fn dirty_buckets_are_reported_once() {
        let mut window = Window::default();
        window.fold(&batch("a", None), 0);
        assert_eq!(window.take_dirty().len(), 1);
        assert!(window.take_dirty().is_empty());
    }
}
