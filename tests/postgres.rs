//! The PostgreSQL store against a real server: what several replicas rely on
//! when they share it (migrations, deduplication, claims and their leases).

mod common;

use common::postgres::Cluster;
use shadowdraft::store::{Appended, Claim, Incoming, Postgres};
use std::time::Duration;

fn incoming(key: &str, body: &str) -> Incoming {
    Incoming {
        key: Some(key.to_string()),
        body_sha256: format!("sha-{body}"),
        body: body.as_bytes().to_vec(),
        agents: vec!["a".into()],
        node: None,
        received_at: 100,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_at_once_migrate_once() {
    let cluster = Cluster::start();
    let url = cluster.create_database("migrate");
    let opens: Vec<_> = (0..3)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { Postgres::open(&url, 30).await })
        })
        .collect();
    for open in opens {
        open.await.unwrap().expect("every replica starts");
    }
    assert_eq!(
        cluster.psql("migrate", "SELECT count(*) FROM shadowdraft_migrations"),
        "1"
    );
    // A restart finds the schema in place.
    Postgres::open(&url, 30).await.unwrap();
    assert_eq!(
        cluster.psql(
            "migrate",
            "SELECT string_agg(version::text, ',') FROM shadowdraft_migrations"
        ),
        "1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_deliveries_dedupe_across_replicas() {
    let cluster = Cluster::start();
    let url = cluster.create_database("dedupe");
    let (one, two) = (
        Postgres::open(&url, 30).await.unwrap(),
        Postgres::open(&url, 30).await.unwrap(),
    );
    assert_ne!(one.replica(), two.replica());
    let first = one.append(&[incoming("k1", "x")]).await.unwrap();
    assert!(matches!(first[0], Appended::New(_)), "{first:?}");
    let again = two
        .append(&[
            incoming("k1", "x"),
            incoming("k1", "y"),
            incoming("k2", "z"),
            incoming("k2", "z"),
        ])
        .await
        .unwrap();
    assert_eq!(again[0], Appended::Duplicate);
    assert_eq!(again[1], Appended::KeyReused);
    assert!(matches!(again[2], Appended::New(_)));
    assert_eq!(
        again[3],
        Appended::Duplicate,
        "a key twice in one group counts once"
    );
    assert_eq!(cluster.psql("dedupe", "SELECT count(*) FROM journal"), "2");

    assert!(one.record_delivery("d-1", "push", b"{}", 100).await.unwrap());
    assert!(!two.record_delivery("d-1", "push", b"{}", 101).await.unwrap());
    assert_eq!(cluster.psql("dedupe", "SELECT count(*) FROM events"), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_claimed_by_one_replica_until_its_lease_runs_out() {
    let cluster = Cluster::start();
    let url = cluster.create_database("claims");
    let (one, two) = (
        Postgres::open(&url, 2).await.unwrap(),
        Postgres::open(&url, 2).await.unwrap(),
    );
    one.queue("a", 100).await.unwrap();
    let (x, y) = tokio::join!(one.claim_job(200), two.claim_job(200));
    let (x, y) = (x.unwrap(), y.unwrap());
    assert!(x.is_some() != y.is_some(), "exactly one claim: {x:?} {y:?}");
    let (holder, other) = if x.is_some() { (&one, &two) } else { (&two, &one) };
    let job = x.or(y).unwrap();
    let claim = Claim::Job("a".into());
    assert!(holder.renew(&claim).await.unwrap());
    assert!(!other.renew(&claim).await.unwrap(), "only the holder renews");
    assert_eq!(
        holder.job("a").await.unwrap().unwrap().claimed_by.as_deref(),
        Some(holder.replica())
    );
    assert!(other.claim_job(200).await.unwrap().is_none(), "held");

    // The holder stops renewing (it died): the other takes the job over.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let taken = other.claim_job(200).await.unwrap().expect("the lease ran out");
    assert_eq!(taken.generation, job.generation);
    assert!(!holder.renew(&claim).await.unwrap(), "the old holder lost it");
    // What the old holder reports no longer counts.
    holder.finish_job(&job, 900).await.unwrap();
    assert_eq!(
        other.job("a").await.unwrap().unwrap().claimed_by.as_deref(),
        Some(other.replica())
    );
    other.finish_job(&taken, 900).await.unwrap();
    assert_eq!(other.queue_depth().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_advisory_lock_excludes_other_replicas_until_released() {
    let cluster = Cluster::start();
    let url = cluster.create_database("locks");
    let (one, two) = (
        Postgres::open(&url, 2).await.unwrap(),
        Postgres::open(&url, 2).await.unwrap(),
    );
    let held = one.lock("agent:a").await.unwrap();
    let started = std::time::Instant::now();
    let waited = two.lock("agent:a").await;
    assert!(waited.is_err(), "held elsewhere: the wait times out");
    assert!(started.elapsed() >= Duration::from_millis(1900));
    let _other_key = two.lock("agent:b").await.expect("other keys are free");
    drop(held);
    tokio::time::timeout(Duration::from_secs(5), two.lock("agent:a"))
        .await
        .expect("released when dropped")
        .unwrap();
}
