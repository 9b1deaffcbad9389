//! Two hubs on one PostgreSQL database, racing (`docs/protocol.md` §9): what the database decides
//! must hold between nodes — one call per provider id and a status that only moves forward, a
//! gapless chat `seq`, a single-use OAuth state. These are storage races: pushes between nodes
//! are the Redis bus's. They need PostgreSQL (`SWITCHBOARD_TEST_POSTGRES`, else
//! 127.0.0.1:5432) and fail with one line without it.

use std::collections::BTreeSet;

use futures_util::future::join_all;
use serde_json::json;
use switchboard::auth::Role;

use crate::calls::{TWILIO_TOKEN, callback, calls_of, twilio};
use crate::helpers::{PostgresDatabase, TEST_SECRET, TestApp, spawn_app_on_database};

/// Two hubs sharing one fresh database; the database is dropped with the returned guard.
async fn two_hubs(extra: &[&str]) -> (TestApp, TestApp, PostgresDatabase) {
    let database = PostgresDatabase::required();
    let mut flags = vec!["--jwt-secret", TEST_SECRET, "--twilio-auth-token", TWILIO_TOKEN];
    flags.extend_from_slice(extra);
    let first = spawn_app_on_database(&database.url, &flags).await;
    let second = spawn_app_on_database(&database.url, &flags).await;
    (first, second, database)
}

#[actix_web::test]
async fn racing_webhooks_on_two_nodes_make_one_call_whose_status_only_moves_forward() {
    let (a, b, _database) = two_hubs(&[]).await;
    // Twenty status callbacks of one new call, in scrambled order, half to each node, at once.
    let statuses = ["queued", "initiated", "ringing", "in-progress", "completed"];
    let mut posts = Vec::new();
    for round in 0..4 {
        for (i, status) in statuses.iter().enumerate().rev() {
            let node = if (round + i) % 2 == 0 { &a } else { &b };
            let sequence = (i + 1).to_string();
            posts.push(async move {
                let params = callback("CA-RACE", status, &sequence);
                twilio(node, "company=acme", &params).await.0
            });
        }
    }
    let answers = join_all(posts).await;
    assert!(answers.iter().all(|s| *s == 204), "every webhook stored: {answers:?}");

    let calls = calls_of(&a, "acme").await;
    assert_eq!(calls.len(), 1, "one call, not one per node: {calls:?}");
    assert_eq!(calls[0]["status"], "ended", "the furthest status won");
    assert_eq!(calls_of(&b, "acme").await, calls, "both nodes read the same");
    let admin = a.token("boss", Role::Admin, "acme");
    let id = calls[0]["id"].as_str().unwrap();
    let (_, call) = a.get(&format!("/api/v1/calls/{id}"), Some(&admin)).await;
    let events = call["events"].as_array().unwrap();
    assert_eq!(events.len(), 20, "every event logged");
    let applied: Vec<&str> = events
        .iter()
        .filter(|e| e["applied"] == true)
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    let ranks: Vec<usize> = applied
        .iter()
        .map(|s| {
            ["queued", "initiated", "ringing", "in-progress", "ended"]
                .iter()
                .position(|x| x == s)
                .unwrap()
        })
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] < w[1]), "applied in forward order only: {applied:?}");
}

#[actix_web::test]
async fn messages_sent_through_two_nodes_at_once_get_every_seq_once() {
    let (a, b, _database) = two_hubs(&[]).await;
    let token = a.token("guest-1", Role::Customer, "acme");
    let path = "/api/v1/conversations/support:guest-1/messages";
    let sends = (0..40).map(|n| {
        let node = if n % 2 == 0 { &a } else { &b };
        let token = token.clone();
        async move { node.post(path, &json!({"text": format!("m{n}")}), Some(&token)).await }
    });
    let answers = join_all(sends).await;
    assert!(answers.iter().all(|(status, _)| *status == 201), "{answers:?}");
    let seqs: BTreeSet<i64> =
        answers.iter().map(|(_, body)| body["message"]["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=40).collect(), "no gaps, no duplicates");

    let (_, history) = b.get(&format!("{path}?limit=100&after=0"), Some(&token)).await;
    let texts: BTreeSet<String> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts.len(), 40, "every message stored once");
}

#[actix_web::test]
async fn one_oauth_state_completes_once_even_when_two_nodes_get_its_callback() {
    use crate::calendar::{google_redirects_back, query_param, start_connect};
    let fake = crate::fake_google::FakeGoogle::start().await;
    // One public URL for both, as behind a load balancer: the redirect URI Google checks is
    // the same whichever node completes the consent.
    let mut flags: Vec<String> = fake.flags();
    flags.extend(["--public-url".to_owned(), "http://hub.test".to_owned()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (a, b, _database) = two_hubs(&flags).await;
    let token = a.token("ann", Role::Agent, "acme");
    let (url, cookie) = start_connect(&a, &token).await;
    fake.expect_code("code-1", "ann", &query_param(&url, "code_challenge"));
    let query = format!("code=code-1&state={}", query_param(&url, "state"));
    let (first, second) = tokio::join!(
        google_redirects_back(&a, &query, &cookie),
        google_redirects_back(&b, &query, &cookie)
    );
    let mut outcomes = [first, second];
    outcomes.sort();
    assert_eq!(
        outcomes,
        [
            "/agent?calendar=connected".to_owned(),
            "/agent?calendar=error&reason=invalid_state".to_owned()
        ],
        "the state is used once, by one node"
    );
}
