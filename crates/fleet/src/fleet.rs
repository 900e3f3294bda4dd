//! The public API: a [`Fleet`] built from a [`FleetSpec`], its catalogue, and the calls of each
//! [`Split`], each a pure function of `(seed, split, index)`.

use crate::agent::Agent;
use crate::archetypes::ARCHETYPES;
use crate::args::ArgKind;
use crate::attacks::attack_weights;
use crate::catalogue::tool_schema;
use crate::rng::Rng;
use crate::secrets::plant_secret;
use crate::tools::TOOLS;
use crate::values::amount_json;
use crate::words::ORGANISATIONS;
use serde_json::{Map, Value};

/// Size and seed of a synthetic fleet.
#[derive(Clone, Debug)]
pub struct FleetSpec {
    pub agents: usize,
    pub calls_per_agent: usize,
    pub seed: u64,
}

/// Which slice of traffic to generate.
///
/// * `Train`: `agents * calls_per_agent` legitimate calls (days 0-55); ~0.5% carry a planted
///   secret (label `secret_*`).
/// * `HeldOut`: 20% of the train count, legitimate calls from the following 7 days, drawn from the
///   same habits. Benign novelty: 3% of calls of agents that have a novelty-capable parameter,
///   about 2.7% of the split overall (measured: 2.69% at 400 agents), use an enum value from the
///   schema the agent never used in train (`novel_enum_value`) or an amount 5-25% above the
///   agent's range (`novel_amount_above_max`). A drafter exactly as tight as the habits therefore
///   tops out near 97% held-out acceptance. Growing ids (PR and ticket numbers) also drift upward
///   as in real logs, and Zipf-tail values may be unseen in a short train set.
/// * `Attack`: 10% of the train count; same agents and argument shapes, one hostile element each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    HeldOut,
    Attack,
}

const TRAIN_DAYS: usize = 56;
/// Held-out and attack calls happen in the days right after train.
const HELD_OUT_DAYS: usize = 7;
const NOVELTY_PER_10K: u64 = 300;

/// A synthetic fleet: agent profiles only; calls are generated on demand.
pub struct Fleet {
    seed: u64,
    calls_per_agent: usize,
    /// The fleet's own organisation: its slug (repositories, images) and e-mail domain.
    pub(crate) org: &'static str,
    pub(crate) domain: &'static str,
    pub(crate) agents: Vec<Agent>,
    /// By tool index: whether some agent of this fleet calls it.
    tool_in_use: Vec<bool>,
    /// By attack kind (see `attacks::attack_weights`).
    pub(crate) attack_weights: [u64; 8],
}

impl Fleet {
    pub fn new(spec: &FleetSpec) -> Fleet {
        let mut rng = Rng::from_parts(&[spec.seed, 0xF1EE7]);
        let &(org, domain) = rng.pick(ORGANISATIONS);
        let total_weight: u64 = ARCHETYPES.iter().map(|a| a.weight as u64).sum();
        let mut per_archetype = vec![0usize; ARCHETYPES.len()];
        let mut agents = Vec::with_capacity(spec.agents);
        for i in 0..spec.agents {
            // Every archetype is present once the fleet is big enough; the rest follow the weights.
            let archetype = if i < ARCHETYPES.len() {
                i
            } else {
                let mut x = rng.below(total_weight);
                ARCHETYPES
                    .iter()
                    .position(|a| {
                        let hit = x < a.weight as u64;
                        x = x.saturating_sub(a.weight as u64);
                        hit
                    })
                    .unwrap_or(0)
            };
            per_archetype[archetype] += 1;
            let number = per_archetype[archetype];
            agents.push(Agent::build(
                spec.seed,
                i,
                &ARCHETYPES[archetype],
                number,
                org,
                domain,
            ));
        }
        let mut tool_in_use = vec![false; TOOLS.len()];
        for agent in &agents {
            for &tool_ix in &agent.tools {
                tool_in_use[tool_ix] = true;
            }
        }
        for agent in &mut agents {
            agent.foreign_tools = (0..TOOLS.len())
                .filter(|&tool_ix| tool_in_use[tool_ix] && !agent.tools.contains(&tool_ix))
                .collect();
        }
        Fleet {
            attack_weights: attack_weights(&agents),
            seed: spec.seed,
            calls_per_agent: spec.calls_per_agent,
            org,
            domain,
            agents,
            tool_in_use,
        }
    }

    fn split_len(&self, split: Split) -> usize {
        let train = self.agents.len() * self.calls_per_agent;
        match split {
            Split::Train => train,
            Split::HeldOut => train / 5,
            Split::Attack => train / 10,
        }
    }

    /// MCP `tools/list` result for every tool any agent uses, plus the tools nobody calls.
    pub fn catalogue(&self) -> Value {
        let in_some_archetype = |name: &str| ARCHETYPES.iter().any(|a| a.tools.contains(&name));
        let tools: Vec<Value> = TOOLS
            .iter()
            .enumerate()
            .filter(|(i, tool)| self.tool_in_use[*i] || !in_some_archetype(tool.name))
            .map(|(_, tool)| tool_schema(tool))
            .collect();
        let mut m = Map::new();
        m.insert("tools".into(), Value::Array(tools));
        Value::Object(m)
    }

    /// Streams the calls of a split; see [`Split`] for sizes and semantics.
    pub fn calls(&self, split: Split) -> impl Iterator<Item = Value> + '_ {
        self.labelled(split).map(|(_, v)| v)
    }

    /// Attack calls with their kind (one of [`crate::ATTACK_KINDS`]).
    pub fn attack_kinds(&self) -> impl Iterator<Item = (&'static str, Value)> + '_ {
        self.labelled(Split::Attack)
    }

    /// Calls with a ground-truth label: Train `legit` or one of [`crate::SECRET_KINDS`]; HeldOut
    /// `legit`, `novel_enum_value` or `novel_amount_above_max`; Attack one of
    /// [`crate::ATTACK_KINDS`].
    pub fn labelled(&self, split: Split) -> impl Iterator<Item = (&'static str, Value)> + '_ {
        (0..self.split_len(split)).map(move |i| self.call_at(split, i))
    }

    /// Calls go round the agents: call `index` is agent `index % agents`'s `index / agents`-th.
    fn call_at(&self, split: Split, index: usize) -> (&'static str, Value) {
        let agent_count = self.agents.len();
        let agent = &self.agents[index % agent_count];
        let nth = index / agent_count;
        let mut rng = Rng::from_parts(&[self.seed, split as u64 + 1, index as u64]);
        let per_agent = self.split_len(split).div_ceil(agent_count).max(1);
        let day = match split {
            Split::Train => nth * TRAIN_DAYS / per_agent,
            _ => TRAIN_DAYS + nth * HELD_OUT_DAYS / per_agent,
        } as i64;
        match split {
            Split::Train => {
                // Cycling through the tool set first guarantees every (agent, tool) pair is in
                // train.
                let tool_ix = match agent.tools.get(nth) {
                    Some(&tool_ix) => tool_ix,
                    None => agent.pick_tool(&mut rng),
                };
                let mut args = self.legit_args(agent, tool_ix, day, None, &mut rng);
                let label = plant_secret(agent, tool_ix, day, &mut args, &mut rng);
                (
                    label.unwrap_or("legit"),
                    call_json(agent, tool_ix, TOOLS[tool_ix].server, args),
                )
            }
            Split::HeldOut => {
                if !agent.novelty_args.is_empty() && rng.chance_per_10k(NOVELTY_PER_10K) {
                    return self.novel_call(agent, day, &mut rng);
                }
                let tool_ix = agent.pick_tool(&mut rng);
                let args = self.legit_args(agent, tool_ix, day, None, &mut rng);
                ("legit", call_json(agent, tool_ix, TOOLS[tool_ix].server, args))
            }
            Split::Attack => self.attack_call(agent, day, &mut rng),
        }
    }

    /// A legitimate held-out call with one value the agent never sent in train.
    fn novel_call(&self, agent: &Agent, day: i64, rng: &mut Rng) -> (&'static str, Value) {
        let (tool_ix, arg_ix) = *rng.pick(&agent.novelty_args);
        let mut args = self.legit_args(agent, tool_ix, day, Some(arg_ix), rng);
        let arg = &TOOLS[tool_ix].args[arg_ix];
        let (label, value) = match arg.kind {
            ArgKind::Enum(values) => {
                let in_use = agent.enum_values_in_use(tool_ix, arg_ix, values.len());
                let value = values[in_use + rng.index(values.len() - in_use)];
                ("novel_enum_value", Value::from(value))
            }
            amount_kind => {
                let cents = agent.max_amount * rng.inclusive(105, 125) / 100;
                ("novel_amount_above_max", amount_json(amount_kind, cents))
            }
        };
        args.insert(arg.name.into(), value);
        (label, call_json(agent, tool_ix, TOOLS[tool_ix].server, args))
    }
}

/// One observed call, as the CLI writes it and the drafter reads it.
pub(crate) fn call_json(agent: &Agent, tool_ix: usize, server: &str, args: Map<String, Value>) -> Value {
    let mut m = Map::with_capacity(4);
    m.insert("agent".into(), Value::from(agent.id.as_str()));
    m.insert("tool".into(), Value::from(TOOLS[tool_ix].name));
    m.insert("server".into(), Value::from(server));
    m.insert("args".into(), Value::Object(args));
    Value::Object(m)
}
