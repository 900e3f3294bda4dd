//! What drafts say about sessions, sets, lookups and identifiers: each test
//! drafts observed calls, then decides new calls (a new customer, an attack)
//! with the real Cedar authorizer through the drafted repository.

mod common;

use serde_json::{json, Value};
use shadowdraft::core::catalogue;
use shadowdraft::core::check::{check, load, Decider};
use shadowdraft::core::config::{DraftingConfig, Preset};
use shadowdraft::core::draft::{draft, Draft, DraftInput};
use shadowdraft::core::evidence::ArgEvidence;
use shadowdraft::core::ladder::Rung;
use shadowdraft::core::policies::RepoFiles;
use shadowdraft::core::summary::Summary;
use shadowdraft_fleet::{Corpus, Split};

struct Drafted {
    draft: Draft,
    files: RepoFiles,
    summary: Summary,
}

fn drafted(calls: &[Value], catalogue: Option<&Value>, preset: Preset) -> Drafted {
    let mut summary = Summary::default();
    for c in calls {
        summary.add(&common::call(c), None);
    }
    let catalogue = catalogue.map(|c| catalogue::parse("catalogue", &c.to_string()).unwrap());
    let config = DraftingConfig {
        preset,
        ..DraftingConfig::default()
    };
    let draft = draft(&DraftInput {
        files: &RepoFiles::default(),
        summary: &summary,
        catalogue: catalogue.as_ref(),
        config: &config,
    })
    .expect("draft");
    let files = common::applied(&RepoFiles::default(), &draft);
    Drafted {
        draft,
        files,
        summary,
    }
}

impl Drafted {
    fn allowed(&self, call: &Value) -> bool {
        let repo = load(&self.files).expect("loads");
        Decider::new(&repo).allowed(&common::call(call))
    }

    fn policy(&self, agent: &str) -> &str {
        &self.files.agents[&format!("policies/agents/{agent}.cedar")]
    }

    fn arg(&self, tool: &str, path: &str) -> &ArgEvidence {
        self.draft
            .evidence
            .agents
            .iter()
            .flat_map(|a| &a.rules)
            .filter(|r| r.tool == tool)
            .flat_map(|r| &r.args)
            .find(|a| a.path == path)
            .unwrap_or_else(|| panic!("no evidence for {tool} {path}"))
    }
}

fn in_session(agent: &str, tool: &str, args: Value, user: &str) -> Value {
    json!({"agent": agent, "tool": tool, "server": "retail", "args": args,
           "session": {"user": user, "conversation": format!("c-{user}")}})
}

#[test]
fn an_argument_always_equal_to_the_session_user_is_bound_to_it() {
    let calls: Vec<Value> = (0..12)
        .map(|i| {
            let user = format!("mia_garcia_{:04}", 1000 + i);
            in_session(
                "retail-agent",
                "get_user_details",
                json!({"user_id": user}),
                &user,
            )
        })
        .collect();
    let d = drafted(&calls, None, Preset::Balanced);
    let policy = d.policy("retail-agent");
    assert!(
        policy.contains("context.input.user_id == context.session.user"),
        "{policy}"
    );
    let arg = d.arg("get_user_details", "user_id");
    assert_eq!(arg.rung, Rung::Session);
    assert!(
        arg.reason.contains("in all 12 calls (12 distinct values)"),
        "{}",
        arg.reason
    );
    assert!(!arg.unconstrained);
    // A customer never seen asks about themselves: allowed; about someone else: denied.
    let new = "noah_kim_4242";
    assert!(d.allowed(&in_session(
        "retail-agent",
        "get_user_details",
        json!({"user_id": new}),
        new
    )));
    let other = in_session(
        "retail-agent",
        "get_user_details",
        json!({"user_id": "mia_garcia_1003"}),
        new,
    );
    assert!(!d.allowed(&other), "another customer's id in this session");
    let no_session = json!({"agent": "retail-agent", "tool": "get_user_details", "server": "retail",
                            "args": {"user_id": new}});
    assert!(!d.allowed(&no_session), "no session, no binding");
    assert!(d.draft.changes["policies/schema.cedarschema"]
        .after
        .contains("session?"));
    // `check` replays the observed calls, sessions included.
    assert!(check(&d.files, Some(&d.summary)).passed());
}

#[test]
fn one_value_equal_to_the_session_is_a_coincidence_not_a_binding() {
    let calls: Vec<Value> = (0..6)
        .map(|_| {
            in_session(
                "a",
                "get_user_details",
                json!({"user_id": "admin_0001"}),
                "admin_0001",
            )
        })
        .collect();
    let d = drafted(&calls, None, Preset::Balanced);
    assert!(!d.policy("a").contains("context.session"), "{}", d.policy("a"));
}

#[test]
fn tight_keeps_the_values_besides_the_binding() {
    let calls: Vec<Value> = (0..4)
        .map(|i| {
            let user = format!("u_{i:04}");
            in_session(
                "a",
                "send_certificate",
                json!({"user_id": user, "amount": 100}),
                &user,
            )
        })
        .collect();
    let d = drafted(&calls, None, Preset::Tight);
    let policy = d.policy("a");
    assert!(
        policy.contains("context.input.user_id == context.session.user"),
        "{policy}"
    );
    assert!(
        policy.contains(r#""u_0000""#),
        "tight lists the users too: {policy}"
    );
    assert!(!d.allowed(&in_session(
        "a",
        "send_certificate",
        json!({"user_id": "u_9999", "amount": 100}),
        "u_9999"
    )));
}

#[test]
fn a_set_of_recipients_is_matched_element_by_element() {
    let calls: Vec<Value> = (0..40)
        .map(|i| {
            json!({"agent": "a", "tool": "send_email", "server": "gmail",
                   "args": {"to": "boss@acme.com", "subject": format!("report {i}"),
                            "cc": [format!("u{i}@acme.com"), format!("p{}@partner.io", i % 7)]}})
        })
        .collect();
    let d = drafted(&calls, None, Preset::Balanced);
    let policy = d.policy("a");
    assert!(
        policy.contains(r#"["acme.com", "partner.io"].containsAll(context.derived.cc.domains)"#),
        "{policy}"
    );
    let cc = |cc: Value| {
        json!({"agent": "a", "tool": "send_email", "server": "gmail",
               "args": {"to": "boss@acme.com", "subject": "new", "cc": cc}})
    };
    assert!(d.allowed(&cc(json!(["new.colleague@acme.com"]))));
    assert!(!d.allowed(&cc(json!(["new.colleague@acme.com", "x@gmail.com"]))));
    assert!(!d.allowed(&cc(json!(["x@gmail.com,y@acme.com"]))));
    assert!(!d.allowed(&cc(json!(["acme.com"]))), "not an address at all");
    assert_eq!(d.arg("send_email", "cc").rung, Rung::Pattern);
}

fn lookups() -> Vec<Value> {
    let mut calls = Vec::new();
    for i in 0..6 {
        let hotels = if i % 2 == 0 {
            json!(["Good Night", "Luxury Palace"])
        } else {
            json!(["Cozy Stay"])
        };
        calls.push(
            json!({"agent": "travel", "tool": "get_hotels_prices", "server": "travel",
                          "args": {"hotel_names": hotels}}),
        );
        calls.push(
            json!({"agent": "travel", "tool": "get_all_hotels_in_city", "server": "travel",
                          "args": {"city": (["Paris", "London"][i % 2])}}),
        );
        calls.push(json!({"agent": "travel", "tool": "read_file", "server": "travel",
                          "args": {"path": format!("/srv/travel/bills/{i}.txt")}}));
    }
    calls
}

#[test]
fn read_only_tools_are_loose_for_what_they_look_up_not_for_where_they_read() {
    let d = drafted(&lookups(), None, Preset::Balanced);
    let call =
        |tool: &str, args: Value| json!({"agent": "travel", "tool": tool, "server": "travel", "args": args});
    assert!(d.allowed(&call(
        "get_hotels_prices",
        json!({"hotel_names": ["Park Hyatt Tokyo"]})
    )));
    assert!(d.allowed(&call("get_all_hotels_in_city", json!({"city": "Tokyo"}))));
    assert!(d.allowed(&call("read_file", json!({"path": "/srv/travel/bills/9.txt"}))));
    assert!(!d.allowed(&call("read_file", json!({"path": "/etc/passwd"}))));
    let arg = d.arg("get_hotels_prices", "hotel_names");
    assert_eq!(arg.rung, Rung::TypeOnly);
    assert!(arg.reason.contains("read-only tool looks up"), "{}", arg.reason);
    // Even `tight` lists what a read reads from, not what it looks up.
    let tight = drafted(&lookups(), None, Preset::Tight);
    assert!(tight.allowed(&call("get_all_hotels_in_city", json!({"city": "Tokyo"}))));
    assert!(!tight.allowed(&call("read_file", json!({"path": "/srv/travel/bills/9.txt"}))));
}

#[test]
fn a_catalogue_enum_of_a_read_only_tool_is_still_listed() {
    let catalogue = json!({"tools": [{"name": "get_all_hotels_in_city", "inputSchema": {"type": "object",
        "properties": {"city": {"type": "string", "enum": ["Paris", "London", "Tokyo"]}}}}]});
    let d = drafted(&lookups(), Some(&catalogue), Preset::Balanced);
    assert_eq!(d.arg("get_all_hotels_in_city", "city").rung, Rung::Literal);
}

#[test]
fn identifiers_generalise_by_structure_in_every_argument_of_a_tool() {
    let calls: Vec<Value> = (0..30)
        .map(|i| {
            let user = format!("user_{i:04}");
            let item = |n: usize| format!("{}", 1_008_292_230u64 + (i * 7 + n) as u64);
            in_session(
                "retail-agent",
                "exchange_delivered_order_items",
                json!({"order_id": format!("#W{}", 2_378_156 + i), "item_ids": [item(0)],
                       "new_item_ids": [item(1), item(2)], "payment_method_id": format!("credit_card_{}", 7_815_826 + i)}),
                &user,
            )
        })
        .chain((0..30).map(|i| {
            let user = format!("user_{i:04}");
            // The same order looked up again and again: still an identifier, not an enum.
            in_session("retail-agent", "get_order_details", json!({"order_id": "#W2378156"}), &user)
        }))
        .collect();
    let d = drafted(&calls, None, Preset::Balanced);
    let policy = d.policy("retail-agent");
    for set in ["item_ids", "new_item_ids"] {
        assert!(
            policy.contains(&format!(
                r#"["*"].containsAll(context.derived.{set}.id_patterns)"#
            )),
            "{set}: {policy}"
        );
    }
    assert!(
        policy.contains(r##"context.input.order_id like "#W*""##),
        "{policy}"
    );
    assert!(
        policy.contains(r#"context.input.payment_method_id like "credit_card_*""#),
        "{policy}"
    );
    let reason = &d.arg("exchange_delivered_order_items", "order_id").reason;
    assert!(reason.contains("`#W` + 7 digits"), "{reason}");
    assert!(
        reason.contains("cannot test their length or alphabet"),
        "{reason}"
    );
    assert_eq!(d.arg("get_order_details", "order_id").rung, Rung::Pattern);
    let exchange = |items: Value| {
        in_session(
            "retail-agent",
            "exchange_delivered_order_items",
            json!({"order_id": "#W9999999", "item_ids": items, "new_item_ids": ["4444444444"],
                   "payment_method_id": "credit_card_1111111"}),
            "user_9999",
        )
    };
    assert!(
        d.allowed(&exchange(json!(["5555555555"]))),
        "a new customer's items"
    );
    assert!(!d.allowed(&exchange(json!(["5555555555", "../../admin"]))));
}

#[test]
fn the_customer_service_corpus_serves_new_customers_and_denies_other_customers_user_ids() {
    let corpus = Corpus::customer_service(7);
    let train: Vec<Value> = corpus.calls(Split::Train).cloned().collect();
    let d = drafted(&train, Some(&corpus.catalogue), Preset::Balanced);
    let repo = load(&d.files).unwrap();
    let mut decider = Decider::new(&repo);
    let mut allowed = |calls: &[Value]| calls.iter().all(|c| decider.allowed(&common::call(c)));
    let held_out: Vec<bool> = corpus.tasks(Split::HeldOut).map(|t| allowed(&t.calls)).collect();
    let served = held_out.iter().filter(|ok| **ok).count();
    assert!(served * 100 >= held_out.len() * 87, "{served}/{}", held_out.len());
    for task in corpus
        .tasks(Split::Attack)
        .filter(|t| t.label == "other_customer_user_id")
    {
        assert!(!allowed(&task.calls), "{:?}", task.calls);
    }
}
