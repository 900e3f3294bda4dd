//! The whole loop through the MCP gateway: an agent's calls through
//! `shadowdraft mcp` in shadow mode reach the bot with the server's
//! catalogue, a proposal is drafted (the catalogue's annotations in its
//! evidence), merged, pulled by the node, and enforced: off-policy calls are
//! refused with an MCP tool error, the on-policy call goes through.

mod common;

use common::external::filesystem_server;
use common::mcp::{gateway_args, run, text, via_gateway};
use common::rig::{Rig, AGENT, SECRET};
use serde_json::{json, Value};

fn read(path: &str) -> Value {
    json!({"op": "callTool", "name": "read_text_file", "arguments": {"path": path}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_calls_become_a_merged_policy_that_the_gateway_enforces() {
    let rig = Rig::new();
    let bot = rig.bot().await;
    // Two directories the server serves, each two levels below the root: the
    // drafted pattern keeps two directories (`drafting.thresholds.path_depth`).
    let reports = tempfile::Builder::new()
        .prefix("sd-reports-")
        .tempdir_in("/tmp")
        .unwrap();
    let hr = tempfile::Builder::new()
        .prefix("sd-hr-")
        .tempdir_in("/tmp")
        .unwrap();
    for month in 1..=9 {
        std::fs::write(
            reports.path().join(format!("2026-0{month}.txt")),
            format!("report {month}\n"),
        )
        .unwrap();
    }
    std::fs::write(hr.path().join("salaries.txt"), "confidential\n").unwrap();
    let report = |month: u32| {
        reports
            .path()
            .join(format!("2026-0{month}.txt"))
            .display()
            .to_string()
    };
    let salaries = hr.path().join("salaries.txt").display().to_string();
    let config = rig.dir.path().join("node.yaml");
    let write_config = |mode: &str| {
        let yaml = format!(
            "data_dir: {}\npolicy_repo: {{url: {}}}\nenforce:\n  mode: {mode}\n  report_url: http://{}/v1/observations\n  report_hs256_secret_env: TEST_INGEST_SECRET\n",
            rig.dir.path().join("node").display(),
            rig.bare.display(),
            bot.running.addr
        );
        std::fs::write(&config, yaml).unwrap();
    };
    let upstream = filesystem_server(&[reports.path().to_str().unwrap(), hr.path().to_str().unwrap()]);
    let agent = via_gateway(
        &gateway_args(&config, "files", AGENT, &upstream),
        &[("TEST_INGEST_SECRET", SECRET)],
    );

    // Shadow mode: the agent reads the monthly reports.
    write_config("shadow");
    let mut steps = vec![json!({"op": "listTools"})];
    for month in 1..=8 {
        steps.push(read(&report(month)));
    }
    let (transport, plan) = (agent.clone(), Value::Array(steps));
    let shadow = tokio::task::spawn_blocking(move || run(&transport, plan))
        .await
        .unwrap();
    assert!(shadow.iter().all(|s| s["ok"] == true), "{shadow:#?}");

    // The gateway reported the calls and the catalogue on its way out; the bot drafts.
    bot.idle().await;
    let pulls = rig.github.pulls();
    assert_eq!(pulls.len(), 1, "one proposal for the agent");
    let body = &pulls[0].body;
    assert!(body.contains("`read_text_file` on `files`"), "{body}");
    assert!(
        body.contains("readOnlyHint: true"),
        "the catalogue's annotation decides the risk:\n{body}"
    );
    assert!(body.contains("Catalogue tools no agent called"), "{body}");
    assert!(
        body.contains("`write_file`"),
        "never-observed tools are named in coverage:\n{body}"
    );
    let merged = bot.merge(pulls[0].number).await;

    // Enforce mode: the node pulls main at start and decides with it.
    write_config("enforce");
    let plan = json!([
        read(&report(9)),
        read(&salaries),
        {"op": "callTool", "name": "write_file", "arguments": {"path": reports.path().join("x.txt"), "content": "x"}},
    ]);
    let enforced = tokio::task::spawn_blocking(move || run(&agent, plan))
        .await
        .unwrap();
    let calls: Vec<&Value> = enforced.iter().filter(|s| s["step"] == "callTool").collect();
    assert_eq!(
        text(calls[0]),
        "report 9\n",
        "an unseen report in the drafted directory: {:#?}",
        calls[0]
    );
    for refused in &calls[1..] {
        assert_eq!(refused["result"]["isError"], true, "{refused}");
        let why = text(refused);
        assert!(why.contains("decision: deny"), "{why}");
        assert!(why.contains(&format!("policy commit {merged}")), "{why}");
    }
    assert!(text(calls[2]).contains("no rule covers"), "{}", text(calls[2]));
    assert!(
        !reports.path().join("x.txt").exists(),
        "the refused write never reached the server"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_catalogue_does_not_read_is_refused_whole() {
    let rig = Rig::new();
    let bot = rig.bot().await;
    let bad = json!({"source": "node-1", "calls": [], "catalogues": {"files": {"tools": [{"description": "no name"}]}}});
    let reply = bot.report(&bad).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(
        reply.body.contains("catalogues.files.tools[0].name"),
        "{}",
        reply.body
    );
    let good = json!({"source": "node-1", "calls": [], "catalogues": {"files": {"tools": [{"name": "read_text_file"}]}}});
    assert_eq!(bot.report(&good).await.status, 202);
    bot.stop().await;
}
