//! Presence per user (not per connection), online lists and agent status.

use std::time::Duration;

use serde_json::json;
use switchboard::auth::Role;

use crate::helpers::spawn_app;

const QUIET: Duration = Duration::from_millis(300);

#[actix_web::test]
async fn presence_changes_on_first_connect_and_last_disconnect_only() {
    let app = spawn_app().await;
    let mut watcher = app.agent("agent-1", "acme").await;

    let first_tab = app.agent("agent-2", "acme").await;
    let online = watcher.next_json().await;
    assert_eq!(
        online,
        json!({"type": "presence_changed", "user": {"id": "agent-2", "name": "agent-2 name", "role": "agent"}, "online": true, "status": "available"})
    );

    let second_tab = app.agent("agent-2", "acme").await;
    watcher.expect_silence(QUIET).await;

    first_tab.close().await;
    watcher.expect_silence(QUIET).await;

    second_tab.close().await;
    let offline = watcher.next_json().await;
    assert_eq!(offline["type"], "presence_changed");
    assert_eq!(offline["online"], false);
    assert_eq!(offline["status"], serde_json::Value::Null);
    assert_eq!(offline["user"]["id"], "agent-2");
}

#[actix_web::test]
async fn customers_come_and_go_in_one_batch_a_second() {
    let app = spawn_app().await;
    let mut agent = app.agent("agent-1", "acme").await;
    // A storm: 300 guests connect and leave at once, one stays, one left before.
    let stays = app.connect(&app.token("guest-stays", Role::Customer, "acme")).await;
    let started = std::time::Instant::now();
    for i in 0..300 {
        app.connect(&app.token(&format!("guest-{i}"), Role::Customer, "acme")).await.close().await;
    }
    app.wait_for_connections(2).await;
    let storm = started.elapsed();
    // Let the last batch go out, then count what the agent got.
    actix_web::rt::time::sleep(Duration::from_millis(1200)).await;
    let mut batches = Vec::new();
    while let crate::helpers::Event::Json(frame) =
        agent.next_event(Duration::from_millis(100)).await
    {
        batches.push(frame);
    }
    assert!(batches.iter().all(|b| b["type"] == "presence_batch"), "{batches:?}");
    let seconds = storm.as_secs_f64().ceil() as usize + 2;
    assert!(batches.len() <= seconds, "{} frames in a {storm:?} storm", batches.len());
    let ids = |list: &str| -> Vec<String> {
        batches
            .iter()
            .flat_map(|b| b[list].as_array().cloned().unwrap_or_default())
            .map(|u| u["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(ids("online").iter().filter(|id| *id == "guest-stays").count(), 1);
    assert!(!ids("offline").contains(&"guest-stays".to_owned()));
    // A guest who came and went within one batch appears in neither list; one who came in an
    // earlier batch went in a later one.
    for id in ids("offline") {
        assert!(ids("online").contains(&id), "{id} went without having come");
    }
    drop(stays);
    let gone = agent.next_of_type("presence_batch").await;
    assert_eq!(
        gone["offline"],
        json!([{"id": "guest-stays", "name": "guest-stays name", "role": "customer"}])
    );
    assert_eq!(gone["online"], json!([]));
}

#[actix_web::test]
async fn online_users_lists_users_with_status_and_connection_count() {
    let app = spawn_app().await;
    let mut agent = app.agent("agent-1", "acme").await;
    let _tab_a = app.agent("agent-2", "acme").await;
    let _tab_b = app.agent("agent-2", "acme").await;
    let _customer = app.connect(&app.token("guest-1", Role::Customer, "acme")).await;

    agent.send_json(json!({"type": "get_online_users", "ref": "o"})).await;
    let answer = agent.next_of_type("online_users").await; // after the presence notices

    assert_eq!(answer["ref"], "o");
    let users = answer["users"].as_array().unwrap();
    let find = |id: &str| users.iter().find(|u| u["id"] == id).cloned().unwrap();
    assert_eq!(users.len(), 3);
    assert_eq!(find("agent-1")["status"], "available");
    assert_eq!(find("agent-2")["connections"], 2);
    assert_eq!(find("guest-1")["status"], serde_json::Value::Null);
    assert_eq!(find("guest-1")["role"], "customer");
}

#[actix_web::test]
async fn customers_may_not_list_users_or_set_a_status() {
    let app = spawn_app().await;
    let mut customer = app.connect(&app.token("guest-1", Role::Customer, "acme")).await;
    for request in [
        json!({"type": "get_online_users", "ref": 1}),
        json!({"type": "agent_status", "status": "busy", "ref": 2}),
    ] {
        let error = customer.request(request.clone()).await;
        assert_eq!(error["code"], "forbidden", "{request}");
        assert_eq!(error["ref"], request["ref"]);
    }
}

#[actix_web::test]
async fn agent_status_goes_to_the_companys_agents() {
    let app = spawn_app().await;
    let mut agent_1 = app.agent("agent-1", "acme").await;
    let mut agent_2 = app.agent("agent-2", "acme").await;
    agent_1.next_of_type("presence_changed").await;

    let own = agent_2.request(json!({"type": "agent_status", "status": "busy", "ref": "s"})).await;
    assert_eq!(
        own,
        json!({"type": "agent_status_changed", "user_id": "agent-2", "status": "busy", "ref": "s"})
    );
    let seen = agent_1.next_json().await;
    assert_eq!(
        seen,
        json!({"type": "agent_status_changed", "user_id": "agent-2", "status": "busy"})
    );

    let list = agent_1.request(json!({"type": "get_online_users"})).await;
    let agent_2_entry =
        list["users"].as_array().unwrap().iter().find(|u| u["id"] == "agent-2").cloned().unwrap();
    assert_eq!(agent_2_entry["status"], "busy");
}
