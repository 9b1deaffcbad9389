//! Tenant isolation: nothing a user of one company does reaches, names or reveals another
//! company, over WebSocket or REST, even when they use the same room and user names.

use std::time::Duration;

use serde_json::json;
use switchboard::auth::Role;

use crate::helpers::spawn_app;

const QUIET: Duration = Duration::from_millis(300);

#[actix_web::test]
async fn same_room_name_in_two_companies_is_two_rooms() {
    let app = spawn_app().await;
    let mut acme = app.agent("ann", "acme").await;
    let mut globex = app.agent("ann", "globex").await; // same user id, other company

    let joined = globex.request(json!({"type": "join_room", "room": "sales"})).await;
    acme.request(json!({"type": "join_room", "room": "sales"})).await;
    assert_eq!(joined["members"].as_array().unwrap().len(), 1);

    acme.send_json(json!({"type": "publish", "room": "sales", "data": "secret"})).await;
    acme.send_json(json!({"type": "publish", "room": "agents", "data": "secret"})).await;
    globex.expect_silence(QUIET).await;

    // Once globex leaves its own "sales", acme's "sales" (ann is in it) is not reachable.
    let left = globex.request(json!({"type": "leave_room", "room": "sales"})).await;
    assert_eq!(left["type"], "room_left");
    let error = globex.request(json!({"type": "publish", "room": "sales", "data": 1})).await;
    assert_eq!(error["code"], "not_a_member");
    acme.expect_silence(QUIET).await;
}

#[actix_web::test]
async fn presence_status_and_online_lists_stay_inside_the_company() {
    let app = spawn_app().await;
    let mut acme = app.agent("ann", "acme").await;
    let mut globex = app.agent("bob", "globex").await;
    acme.expect_silence(QUIET).await;

    globex.request(json!({"type": "agent_status", "status": "away"})).await;
    let _globex_customer = app.connect(&app.token("guest-9", Role::Customer, "globex")).await;
    acme.expect_silence(QUIET).await;

    let list = acme.request(json!({"type": "get_online_users"})).await;
    let ids: Vec<&str> =
        list["users"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["ann"]);
}

#[actix_web::test]
async fn rest_operators_cannot_reach_other_companies() {
    let app = spawn_app().await;
    let mut globex = app.agent("bob", "globex").await;
    globex.request(json!({"type": "join_room", "room": "sales"})).await;
    let acme_admin = app.token("boss", Role::Admin, "acme");

    let (_, body) =
        app.post("/api/v1/publish", &json!({"room": "sales", "data": 1}), Some(&acme_admin)).await;
    assert_eq!(body["delivered"], 0);
    let (_, body) =
        app.post("/api/v1/publish", &json!({"user_id": "bob", "data": 1}), Some(&acme_admin)).await;
    assert_eq!(body["delivered"], 0);
    let (_, body) = app
        .post(
            "/api/v1/ws/test",
            &json!({"target_user_id": "bob", "message": "x"}),
            Some(&acme_admin),
        )
        .await;
    assert_eq!(body["delivered"], 0);
    let (_, body) = app.get("/api/v1/ws/clients", Some(&acme_admin)).await;
    assert_eq!(body["clients"], json!([]));
    globex.expect_silence(QUIET).await;
}

#[actix_web::test]
async fn a_customer_sees_no_one_else() {
    let app = spawn_app().await;
    let mut customer = app.connect(&app.token("guest-1", Role::Customer, "acme")).await;
    let _agent = app.agent("ann", "acme").await;
    let _other_customer = app.connect(&app.token("guest-2", Role::Customer, "acme")).await;
    customer.expect_silence(QUIET).await;
    assert_eq!(customer.request(json!({"type": "get_online_users"})).await["code"], "forbidden");
}
