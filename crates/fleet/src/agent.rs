//! Agents. Each one instantiates an archetype and, once at construction, draws its habits from
//! the archetype's pools: a tool subset with skewed usage weights, a customer-id prefix, a few
//! partner domains, API hosts with stable path prefixes, directories, an amount range, channels,
//! repositories, services... Legitimate calls are then filled from these habits, and attacks
//! break exactly one of them.

use crate::archetypes::Archetype;
use crate::args::ArgKind;
use crate::attacks::AttackKind;
use crate::rng::{Rng, ALPHANUMERIC, ZIPF_NUMERATOR};
use crate::tools::{tool_index, Effect, CURRENCIES, TOOLS};
use crate::words::{
    FIRST_NAMES, LAST_NAMES, PARTNERS, REPOS, SERVICES, SSO_GROUPS, WAREHOUSE_TABLES, WIKI_SPACES,
};

pub(crate) struct Agent {
    /// `<archetype slug>-<number>`, e.g. `billing-bot-001`.
    pub(crate) id: String,
    /// Seeds which enum values the agent uses (see [`Agent::enum_values_in_use`]).
    habit_seed: u64,
    /// Indices into `TOOLS`.
    pub(crate) tools: Vec<usize>,
    /// Running sums of the usage weights of `tools`.
    tool_cum_weights: Vec<u64>,
    /// (domain, company name) of the partners it deals with.
    pub(crate) partners: Vec<(&'static str, &'static str)>,
    pub(crate) customer_prefix: String,
    pub(crate) accounts: Vec<String>,
    /// (host, stable path prefix) of the APIs it calls.
    pub(crate) api_hosts: Vec<(String, &'static str)>,
    pub(crate) read_dirs: Vec<&'static str>,
    pub(crate) write_dir: &'static str,
    /// The range of the amounts it handles, in cents.
    pub(crate) min_amount: i64,
    pub(crate) max_amount: i64,
    /// `amount_roots[j] = (max/min)^(2^-(j+1))`: products of these give `min * (max/min)^u`
    /// with exact IEEE operations only.
    amount_roots: [f64; 20],
    /// Its main currency first.
    pub(crate) currencies: Vec<&'static str>,
    pub(crate) channels: Vec<&'static str>,
    pub(crate) repos: Vec<String>,
    pub(crate) services: Vec<&'static str>,
    pub(crate) wiki_spaces: Vec<&'static str>,
    pub(crate) tables: Vec<&'static str>,
    pub(crate) sso_groups: Vec<&'static str>,
    pub(crate) calendars: Vec<String>,
    /// PR numbers start here and grow with the day.
    pub(crate) first_pr_number: i64,
    pub(crate) page_id_prefix: i64,
    /// For each attack kind in [`AttackKind::ON_ARGUMENTS`], the agent's tools it can be made with.
    argument_attack_tools: [Vec<usize>; AttackKind::ON_ARGUMENTS.len()],
    /// Tools of other archetypes, used elsewhere in this fleet, that this agent never calls.
    pub(crate) foreign_tools: Vec<usize>,
    /// (tool, argument) where held-out may legitimately show something new.
    pub(crate) novelty_args: Vec<(usize, usize)>,
}

impl Agent {
    /// The `index`-th agent of the fleet, the `number`-th of its archetype.
    pub(crate) fn build(
        fleet_seed: u64,
        index: usize,
        archetype: &Archetype,
        number: usize,
        org: &str,
        domain: &str,
    ) -> Agent {
        let mut rng = Rng::from_parts(&[fleet_seed, 0xA6E7, index as u64]);
        let core = archetype.core_tool_count;
        let all: Vec<usize> = archetype.tools.iter().map(|name| tool_index(name)).collect();
        let tool_count = rng.inclusive(4, all.len().min(10) as i64) as usize;
        let mut tools = all[..core].to_vec();
        let others = rng.sample_distinct(&all[core..], all.len() - core);
        tools.extend(others.into_iter().take(tool_count - core));
        // Zipf over a random ranking, core tools doubled: each agent has its own "main" tool.
        let ranks = rng.sample_distinct(&(0..tools.len()).collect::<Vec<_>>(), tools.len());
        let mut running = 0u64;
        let tool_cum_weights = (0..tools.len())
            .map(|i| {
                let rank = ranks.iter().position(|&x| x == i).unwrap_or(0) as u64;
                let core_bonus = if i < core { 2 } else { 1 };
                running += ZIPF_NUMERATOR / (rank + 1) * core_bonus;
                running
            })
            .collect();

        let partner_count = rng.inclusive(2, 4) as usize;
        let partners = rng.sample_distinct(PARTNERS, partner_count);
        let customer_prefix = customer_prefix(&mut rng);
        let accounts = (0..rng.inclusive(2, 5)).map(|_| account_id(&mut rng)).collect();
        let host_count = rng.inclusive(1, 3i64.min(archetype.api_hosts.len() as i64)) as usize;
        let api_hosts = rng
            .sample_distinct(archetype.api_hosts, host_count)
            .into_iter()
            .map(|(host, prefix)| (host.replace("{domain}", domain), prefix))
            .collect();
        let read_dir_count = rng.inclusive(1, 2i64.min(archetype.read_dirs.len() as i64)) as usize;
        let read_dirs = rng.sample_distinct(archetype.read_dirs, read_dir_count);
        let write_dir = *rng.pick(archetype.write_dirs);
        let (floor_lo, floor_hi) = archetype.min_amount_cents;
        let min_amount = rng.inclusive(floor_lo, floor_hi) / 100 * 100;
        let max_amount = min_amount * *rng.pick(&[20i64, 40, 80, 150]);
        let mut amount_roots = [0f64; 20];
        let mut root = max_amount as f64 / min_amount as f64;
        for slot in amount_roots.iter_mut() {
            // sqrt is correctly rounded by IEEE 754, so the roots are bit-identical everywhere.
            root = root.sqrt();
            *slot = root;
        }
        let mut currencies = vec![*rng.pick_zipf(&["usd", "eur", "gbp"])];
        if rng.chance_pct(35) {
            let extra = *rng.pick(&CURRENCIES[..7]);
            if extra != currencies[0] {
                currencies.push(extra);
            }
        }
        let channel_count = rng.inclusive(1, 3i64.min(archetype.channels.len() as i64)) as usize;
        let channels = rng.sample_distinct(archetype.channels, channel_count);
        let repo_count = rng.inclusive(1, 4) as usize;
        let repos = rng
            .sample_distinct(REPOS, repo_count)
            .into_iter()
            .map(|repo| format!("{org}/{repo}"))
            .collect();
        let service_count = rng.inclusive(2, 4) as usize;
        let services = rng.sample_distinct(SERVICES, service_count);
        let space_count = rng.inclusive(1, 3) as usize;
        let wiki_spaces = rng.sample_distinct(WIKI_SPACES, space_count);
        let table_count = rng.inclusive(3, 6) as usize;
        let tables = rng.sample_distinct(WAREHOUSE_TABLES, table_count);
        let group_count = rng.inclusive(3, 6) as usize;
        let sso_groups = rng.sample_distinct(SSO_GROUPS, group_count);
        let calendars = (0..rng.inclusive(1, 2))
            .map(|_| {
                if rng.chance_pct(60) {
                    let (first, last) = (rng.pick(FIRST_NAMES), rng.pick(LAST_NAMES));
                    format!("{first}.{last}@{domain}")
                } else {
                    format!("team-{}@{domain}", rng.pick(WIKI_SPACES).to_lowercase())
                }
            })
            .collect();
        let first_pr_number = rng.inclusive(100, 4000);
        let page_id_prefix = rng.inclusive(10, 99);
        let habit_seed = rng.next_u64();

        let mut agent = Agent {
            id: format!("{}-{number:03}", archetype.slug),
            habit_seed,
            tools,
            tool_cum_weights,
            partners,
            customer_prefix,
            accounts,
            api_hosts,
            read_dirs,
            write_dir,
            min_amount,
            max_amount,
            amount_roots,
            currencies,
            channels,
            repos,
            services,
            wiki_spaces,
            tables,
            sso_groups,
            calendars,
            first_pr_number,
            page_id_prefix,
            argument_attack_tools: Default::default(),
            foreign_tools: Vec::new(),
            novelty_args: Vec::new(),
        };
        for &tool_ix in &agent.tools {
            let tool = &TOOLS[tool_ix];
            for (kind, tools) in AttackKind::ON_ARGUMENTS
                .iter()
                .zip(&mut agent.argument_attack_tools)
            {
                let writes_if_needed = !kind.needs_write() || tool.effect == Effect::Write;
                if writes_if_needed && tool.args.iter().any(|arg| kind.tampers_with(arg)) {
                    tools.push(tool_ix);
                }
            }
            for (arg_ix, arg) in tool.args.iter().enumerate() {
                let novel = arg.is_sent()
                    && match arg.kind {
                        ArgKind::Enum(values) => {
                            agent.enum_values_in_use(tool_ix, arg_ix, values.len()) < values.len()
                        }
                        ArgKind::AmountCents | ArgKind::AmountDecimal => true,
                        _ => false,
                    };
                if novel {
                    agent.novelty_args.push((tool_ix, arg_ix));
                }
            }
        }
        agent
    }

    /// How many of an enum's values (the first ones) this agent uses: the others are legitimately
    /// new in held-out.
    pub(crate) fn enum_values_in_use(&self, tool_ix: usize, arg_ix: usize, len: usize) -> usize {
        let mut rng = Rng::from_parts(&[self.habit_seed, 0xE7, tool_ix as u64, arg_ix as u64]);
        len - rng.index(len.div_ceil(2))
    }

    /// One of its tools, by its usage weights.
    pub(crate) fn pick_tool(&self, rng: &mut Rng) -> usize {
        let total = *self.tool_cum_weights.last().unwrap_or(&1);
        let x = rng.below(total);
        let pos = self.tool_cum_weights.iter().position(|&c| x < c).unwrap_or(0);
        self.tools[pos]
    }

    /// The tools an attack of this kind can be made with; empty if the agent cannot suffer it.
    pub(crate) fn attack_tools(&self, kind: AttackKind) -> &[usize] {
        match kind {
            AttackKind::OtherAgentsTool => &self.foreign_tools,
            AttackKind::OtherServer => &self.tools,
            on_argument => &self.argument_attack_tools[on_argument as usize],
        }
    }

    /// Log-normal-ish amount in cents inside the agent's range: a bell in log space.
    pub(crate) fn draw_amount(&self, rng: &mut Rng) -> i64 {
        const BITS: u32 = 20;
        // The mean of three uniforms: the bell; its bits pick which roots multiply in.
        let u = (rng.below(1 << BITS) + rng.below(1 << BITS) + rng.below(1 << BITS)) / 3;
        let mut v = self.min_amount as f64;
        for (j, root) in self.amount_roots.iter().enumerate() {
            if (u >> (BITS - 1 - j as u32)) & 1 == 1 {
                v *= root;
            }
        }
        (v as i64).clamp(self.min_amount, self.max_amount)
    }
}

/// `cust_` and two capital letters: an agent's customers all share one.
pub(crate) fn customer_prefix(rng: &mut Rng) -> String {
    let mut letter = || (b'A' + rng.below(26) as u8) as char;
    format!("cust_{}{}", letter(), letter())
}

/// A Stripe-like connected account id.
pub(crate) fn account_id(rng: &mut Rng) -> String {
    let mut id = String::from("acct_1");
    rng.push_chars(&mut id, 15, ALPHANUMERIC);
    id
}
