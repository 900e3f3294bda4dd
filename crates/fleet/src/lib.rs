//! Synthetic agent-fleet generator: realistic MCP tool-call traffic for tuning and benchmarking
//! drafting.
//!
//! Model. Each agent instantiates one of ten archetypes and, once at construction, draws its
//! *habits*: a tool subset with skewed usage weights, a customer-id prefix, a few partner e-mail
//! domains, 1-3 API hosts with stable path prefixes, read/write directories, an amount range,
//! channels, repos, services... Every call is then a pure function of `(seed, split, index)`: a
//! per-call PRNG picks the tool and fills each argument from the habit it is tied to (Zipf enums,
//! stable-prefix ids, log-normal-ish amounts, fresh free text, optional arguments at fixed rates).
//! Train spans days 0-55 and carries ~0.5% planted secrets; HeldOut is the next 7 days drawn from
//! the same habits; Attack reuses the same agents and shapes with exactly one hostile element per
//! call. Index-addressed generation keeps memory at O(agents), lets calls stream, and makes output
//! byte-identical per seed (integer-only sampling; floats only via exact IEEE ops).
//!
//! Where things are: `fleet` (the public API and the splits), `agent` (habits), `archetypes`,
//! `tools` and `args` (the tables), `values`, `text`, `secrets` and `attacks` (what calls
//! carry), `catalogue` (the MCP schemas), `words`, `calendar` and `rng` (the raw material).
//!
//! Apart from the fleet, `corpora` holds small task corpora modelled on public agent benchmarks
//! (an assistant with read-only lookups over lists of names and queries; customer-service agents
//! with sessions and cross-customer attacks): [`Corpus`].

mod agent;
mod archetypes;
mod args;
mod attacks;
mod calendar;
mod catalogue;
mod corpora;
mod fleet;
mod rng;
mod secrets;
mod text;
mod tools;
mod values;
mod words;

#[cfg(test)]
mod tests;

pub use attacks::ATTACK_KINDS;
pub use corpora::{Corpus, Task};
pub use fleet::{Fleet, FleetSpec, Split};
pub use secrets::SECRET_KINDS;
