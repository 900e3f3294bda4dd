//! Several `shadowdraft serve` processes sharing one PostgreSQL server and one
//! fake GitHub: any replica takes any request, a replica killed with SIGKILL
//! during ingest or during a drafting job loses nothing and leaves nothing
//! half done, and a replica that loses the database says so and recovers.

mod common;

use common::postgres::Cluster;
use common::replicas::{store_section, within, Replica, DATABASE_URL_VAR};
use common::rig::{comment, token, Rig, AGENT, WEBHOOK_SECRET};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LEASE_SECONDS: u64 = 3;

/// `n` replicas on the rig's repository and fake GitHub, sharing `url`.
async fn start(rig: &Rig, url: &str, n: usize, debounce_seconds: u64) -> Vec<Replica> {
    let mut env = Rig::env();
    env.push((DATABASE_URL_VAR, url));
    let mut replicas = Vec::new();
    for i in 0..n {
        let data = rig.dir.path().join(format!("replica-{i}"));
        let config = rig.config(&data, debounce_seconds) + &store_section(LEASE_SECONDS);
        let path = rig.dir.path().join(format!("replica-{i}.yaml"));
        std::fs::write(&path, config).unwrap();
        replicas.push(Replica::start(&path, &env).await);
    }
    let ids: BTreeSet<&str> = replicas.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), n, "each replica has its own name");
    replicas
}

async fn post(addr: &str, body: &Value, key: Option<&str>) -> Result<common::http::Reply, String> {
    let auth = format!("Bearer {}", token());
    let mut headers = vec![
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    if let Some(key) = key {
        headers.push(("idempotency-key", key));
    }
    common::http::try_request(
        "POST",
        &format!("http://{addr}/v1/observations"),
        &headers,
        body.to_string().into_bytes(),
    )
    .await
}

/// Batch `i`: calls of a few agents, with counts that differ per batch.
fn batch(i: usize, agents: &[&str]) -> (Value, BTreeMap<String, u64>) {
    let mut calls = Vec::new();
    let mut counts = BTreeMap::new();
    for (j, name) in agents.iter().enumerate() {
        let count = (i * 7 + j * 3) % 11 + 1;
        calls.push(json!({"agent": name, "tool": "search_docs", "server": "docs",
                          "args": {"query": format!("q{}", i % 5)}, "count": count}));
        *counts.entry(name.to_string()).or_insert(0) += count as u64;
    }
    (
        json!({"source": format!("node-{}", i % 3), "calls": calls}),
        counts,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_calls_count_once_across_replicas_when_one_dies_mid_ingest() {
    let rig = Rig::new();
    let cluster = Cluster::start();
    let url = cluster.create_database("ingest");
    let mut replicas = start(&rig, &url, 3, 3600).await;
    let addrs: Arc<Vec<String>> = Arc::new(replicas.iter().map(|r| r.addr.clone()).collect());
    let agents = ["agent-a", "agent-b", "agent-c", "agent-d"];
    const BATCHES: usize = 120;
    let batches: Arc<Vec<(Value, BTreeMap<String, u64>)>> =
        Arc::new((0..BATCHES).map(|i| batch(i, &agents)).collect());

    // Six nodes post, spread over the replicas; what fails is retried with the
    // same key on the next replica, as a node behind a load balancer would.
    let next = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(AtomicUsize::new(0));
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let senders: Vec<_> = (0..6)
        .map(|_| {
            let (addrs, batches, next, acked, outcomes) = (
                addrs.clone(),
                batches.clone(),
                next.clone(),
                acked.clone(),
                outcomes.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= BATCHES {
                        return;
                    }
                    let key = format!("batch-{i}");
                    let mut target = i % addrs.len();
                    let mut failed = 0;
                    let outcome = loop {
                        assert!(failed < 40, "batch {i} was never acknowledged");
                        match post(&addrs[target], &batches[i].0, Some(&key)).await {
                            Ok(r) if r.status == 202 => break "stored",
                            Ok(r) if r.status == 200 && r.json()["duplicate"] == true => break "duplicate",
                            Ok(r) if r.status == 503 => {}
                            Ok(r) => panic!("batch {i}: {} {}", r.status, r.body),
                            Err(_) => {}
                        }
                        failed += 1;
                        target = (target + 1) % addrs.len();
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    };
                    acked.fetch_add(1, Ordering::SeqCst);
                    outcomes.lock().unwrap().push((i, outcome, failed));
                }
            })
        })
        .collect();
    within(
        Duration::from_secs(60),
        "a third of the batches acknowledged",
        || {
            let n = acked.load(Ordering::SeqCst);
            async move { (n >= BATCHES / 3).then_some(()) }
        },
    )
    .await;
    replicas[2].kill();
    for sender in senders {
        sender.await.unwrap();
    }
    let outcomes = outcomes.lock().unwrap().clone();
    assert_eq!(outcomes.len(), BATCHES);
    for (i, outcome, failed) in &outcomes {
        assert!(
            *outcome == "stored" || *failed > 0,
            "batch {i} was a duplicate on its first try"
        );
    }
    assert!(
        outcomes.iter().any(|(_, _, failed)| *failed > 0),
        "the kill interrupted some requests"
    );

    // A replay to another replica is still a duplicate; a key reused for other data is refused.
    for i in 0..10 {
        let reply = post(
            &replicas[i % 2].addr,
            &batches[(i * 13) % BATCHES].0,
            Some(&format!("batch-{}", (i * 13) % BATCHES)),
        )
        .await
        .unwrap();
        assert_eq!(
            (reply.status, &reply.json()["duplicate"]),
            (200, &json!(true)),
            "{}",
            reply.body
        );
    }
    let reused = post(&replicas[0].addr, &batches[1].0, Some("batch-0"))
        .await
        .unwrap();
    assert_eq!(reused.status, 422, "{}", reused.body);

    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for (_, counts) in batches.iter() {
        for (name, n) in counts {
            *expected.entry(name.clone()).or_default() += n;
        }
    }
    let counted = |replica: &Replica| {
        let replica_addr = replica.addr.clone();
        async move {
            let mut out = BTreeMap::new();
            for name in agents {
                let auth = format!("Bearer {}", token());
                let reply = common::http::request(
                    "GET",
                    &format!("http://{replica_addr}/v1/agents/{name}"),
                    &[("authorization", &auth)],
                    Vec::new(),
                )
                .await;
                out.insert(
                    name.to_string(),
                    reply.json()["calls_in_window"].as_u64().unwrap(),
                );
            }
            out
        }
    };
    // Whichever replica answers sees every acknowledged call, once.
    assert_eq!(counted(&replicas[0]).await, expected);
    assert_eq!(counted(&replicas[1]).await, expected);

    // The dead replica's unfolded batches are folded by the others.
    within(Duration::from_secs(60), "the journal folded into buckets", || {
        let left = cluster.psql("ingest", "SELECT count(*) FROM journal");
        async move { (left == "0").then_some(()) }
    })
    .await;
    assert_eq!(counted(&replicas[1]).await, expected, "folding changed no count");
    assert_eq!(
        cluster.psql("ingest", "SELECT count(*) FROM jobs"),
        "4",
        "every agent queued"
    );

    for replica in &replicas[..2] {
        let metrics = common::http::get(&replica.url("/metrics")).await.body;
        let up = format!(
            "shadowdraft_store_up{{store=\"postgres\",replica=\"{}\"}} 1\n",
            replica.id
        );
        assert!(metrics.contains(&up), "{metrics}");
        assert!(metrics.contains("shadowdraft_queue_depth 4\n"), "{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_pull_request_per_agent_when_replicas_wake_at_once_and_one_dies_mid_job() {
    let rig = Rig::new();
    let cluster = Cluster::start();
    let url = cluster.create_database("drafting");
    let mut replicas = start(&rig, &url, 3, 3).await;
    // The first pull request is created at once but answered late: the
    // replica that asked for it is killed before it hears back.
    rig.github
        .delay_next("POST /repos/acme/agent-policies/pulls", Duration::from_secs(8), 1);

    let agents = [AGENT, "billing-bot", "search-bot"];
    for name in agents {
        // Each replica gets its own batch for the agent: all three queue it and wake at once.
        let (x, y, z) = (emails(name, 0), emails(name, 10), emails(name, 20));
        let (a, b, c) = tokio::join!(
            post(&replicas[0].addr, &x, None),
            post(&replicas[1].addr, &y, None),
            post(&replicas[2].addr, &z, None),
        );
        for reply in [a, b, c] {
            let reply = reply.expect("the replica answers");
            assert_eq!(reply.status, 202, "{}", reply.body);
        }
    }

    let (victim_agent, number) = within(Duration::from_secs(90), "a first pull request", || {
        let first = rig.github.pulls().first().map(|p| (p.head.clone(), p.number));
        async move { first }
    })
    .await;
    let victim_agent = victim_agent.strip_prefix("shadowdraft/").unwrap().to_string();
    let holder = within(Duration::from_secs(10), "the replica drafting it", || {
        let replica = &replicas[0];
        let name = victim_agent.clone();
        async move {
            replica.agent(&name).await["job"]["claimed_by"]
                .as_str()
                .map(str::to_string)
        }
    })
    .await;
    let victim = replicas
        .iter()
        .position(|r| r.id == holder)
        .expect("a replica holds the job");
    replicas[victim].kill();
    let killed_at = Instant::now();
    let survivor = &replicas[(victim + 1) % replicas.len()];

    // Another replica takes the job over once the lease runs out, and adopts
    // the pull request the dead one opened instead of opening a second.
    let taken_over = within(
        Duration::from_secs(60),
        "the killed replica's job finished",
        || {
            let name = victim_agent.clone();
            async move {
                let status = survivor.agent(&name).await;
                (status["job"].is_null() && status["proposal"]["number"] == json!(number)).then(Instant::now)
            }
        },
    )
    .await;
    let took = taken_over - killed_at;
    assert!(
        took >= Duration::from_secs(LEASE_SECONDS - 1),
        "taken over before the lease ran out ({took:?})"
    );
    assert!(
        took <= Duration::from_secs(LEASE_SECONDS + 20),
        "taken over {took:?} after the kill (lease {LEASE_SECONDS} s)"
    );
    for name in agents {
        within(Duration::from_secs(60), "every agent proposed", || {
            let name = name.to_string();
            async move {
                let status = survivor.agent(&name).await;
                (status["job"].is_null() && !status["proposal"].is_null()).then_some(())
            }
        })
        .await;
    }

    let pulls = rig.github.pulls();
    for name in agents {
        let head = format!("shadowdraft/{name}");
        assert_eq!(
            pulls.iter().filter(|p| p.head == head).count(),
            1,
            "one pull request for {name}: {pulls:#?}"
        );
    }
    assert_eq!(
        rig.github.count("POST", "/repos/acme/agent-policies/pulls"),
        agents.len(),
        "no replica tried to open a second pull request"
    );
    let refused: Vec<_> = rig
        .github
        .requests()
        .into_iter()
        .filter(|r| r.status == 422)
        .collect();
    assert!(refused.is_empty(), "{refused:#?}");
    for pull in &pulls {
        let bodies: Vec<String> = rig.replies(pull.number);
        let distinct: BTreeSet<&String> = bodies.iter().collect();
        assert_eq!(
            distinct.len(),
            bodies.len(),
            "a comment posted twice on #{}: {bodies:#?}",
            pull.number
        );
    }
    eprintln!("the killed replica's job was finished by another {took:?} after the kill");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_waking_at_once_on_one_agent_open_one_pull_request_from_both_batches() {
    let rig = Rig::new();
    let cluster = Cluster::start();
    let url = cluster.create_database("race");
    let replicas = start(&rig, &url, 2, 2).await;
    // Each replica stores half of the agent's calls; both queue it for the same second.
    let (x, y) = (emails(AGENT, 0), emails(AGENT, 4));
    let (a, b) = tokio::join!(
        post(&replicas[0].addr, &x, None),
        post(&replicas[1].addr, &y, None)
    );
    for reply in [a, b] {
        assert_eq!(reply.expect("the replica answers").status, 202);
    }
    let number = within(Duration::from_secs(60), "the proposal", || async {
        let status = replicas[1].agent(AGENT).await;
        match (status["job"].is_null(), status["proposal"]["number"].as_u64()) {
            (true, Some(n)) => Some(n),
            _ => None,
        }
    })
    .await;
    assert_eq!(rig.github.pulls().len(), 1, "{:#?}", rig.github.pulls());
    assert_eq!(rig.github.count("POST", "/repos/acme/agent-policies/pulls"), 1);
    let body = rig.github.pull(number).unwrap().body;
    assert!(
        body.contains("8 calls in 8 distinct shapes"),
        "the draft saw both replicas' calls:\n{body}"
    );

    // GitHub redelivers a command to the other replica: handled once, answered once.
    rig.github.set_permission("alice", "write");
    let command = comment(number, "alice", "/shadowdraft help");
    let first = deliver(&replicas[0], "issue_comment", "delivery-help", &command).await;
    let again = deliver(&replicas[1], "issue_comment", "delivery-help", &command).await;
    assert_eq!(
        (first.status, again.status),
        (202, 200),
        "{} / {}",
        first.body,
        again.body
    );
    assert_eq!(again.json()["duplicate"], true);
    let marker = "<!-- shadowdraft:reply:delivery-help -->";
    within(Duration::from_secs(30), "the reply", || {
        let answered = rig.replies(number).iter().any(|c| c.contains(marker));
        async move { answered.then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let replies = rig.replies(number);
    assert_eq!(
        replies.iter().filter(|c| c.contains(marker)).count(),
        1,
        "{replies:#?}"
    );
}

/// GitHub delivers a signed webhook to one replica.
async fn deliver(replica: &Replica, event: &str, delivery: &str, payload: &Value) -> common::http::Reply {
    let body = payload.to_string().into_bytes();
    let signature = shadowdraft::serve::webhook::sign(WEBHOOK_SECRET, &body);
    let headers = [
        ("x-github-event", event),
        ("x-github-delivery", delivery),
        ("x-hub-signature-256", signature.as_str()),
        ("content-type", "application/json"),
    ];
    replica
        .request("POST", "/github/webhook", &headers, body)
        .await
        .expect("the replica answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_that_loses_the_database_answers_503_and_recovers_without_a_restart() {
    let rig = Rig::new();
    let cluster = Cluster::start();
    let url = cluster.create_database("outage");
    let replicas = start(&rig, &url, 1, 3600).await;
    let replica = &replicas[0];
    let (first, first_counts) = batch(1, &["agent-a"]);
    let (second, second_counts) = batch(2, &["agent-a"]);
    let reply = post(&replica.addr, &first, Some("k1")).await.unwrap();
    assert_eq!(reply.status, 202, "{}", reply.body);

    cluster.stop();
    let refused = post(&replica.addr, &second, Some("k2")).await.unwrap();
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.json()["error"], "store_unavailable", "{}", refused.body);
    assert_eq!(refused.headers["retry-after"], "1");
    let health = common::http::get(&replica.url("/healthz")).await;
    assert_eq!(health.status, 503, "{}", health.body);
    assert_eq!(health.json()["status"], "unavailable");
    let metrics = common::http::get(&replica.url("/metrics")).await.body;
    assert!(
        metrics.contains(&format!("replica=\"{}\"}} 0\n", replica.id)),
        "{metrics}"
    );

    cluster.start_again();
    within(Duration::from_secs(60), "the replica back", || async {
        let health = common::http::get(&replica.url("/healthz")).await;
        (health.status == 200).then_some(())
    })
    .await;
    let stored = within(Duration::from_secs(30), "the batch acknowledged", || async {
        let reply = post(&replica.addr, &second, Some("k2")).await.ok()?;
        (reply.status != 503).then_some(reply)
    })
    .await;
    assert_eq!(
        stored.status, 202,
        "never stored before, so not a duplicate: {}",
        stored.body
    );
    let calls = replica.agent("agent-a").await["calls_in_window"]
        .as_u64()
        .unwrap();
    assert_eq!(calls, first_counts["agent-a"] + second_counts["agent-a"]);
}

/// `n` calls of `name` sending email, starting at recipient `from`.
fn emails(name: &str, from: usize) -> Value {
    let calls: Vec<Value> = (from..from + 4)
        .map(|i| {
            json!({"agent": name, "tool": "send_email", "server": "gmail",
                   "args": {"to": format!("user{i}@adatum.com"), "subject": "Your ticket", "body": "Hello"}})
        })
        .collect();
    json!({"source": "node-1", "calls": calls})
}
