//! Rooms: join, leave, publish, member notices, access rules, the automatic agents room.

use std::time::Duration;

use serde_json::json;
use switchboard::auth::Role;

use crate::helpers::{spawn_app, spawn_app_with};

const QUIET: Duration = Duration::from_millis(300);

#[actix_web::test]
async fn join_publish_leave() {
    let app = spawn_app().await;
    let mut ann = app.agent("ann", "acme").await;
    let mut bob = app.agent("bob", "acme").await;
    ann.next_of_type("presence_changed").await;

    let joined = ann.request(json!({"type": "join_room", "room": "sales", "ref": 1})).await;
    assert_eq!(
        joined,
        json!({"type": "room_joined", "room": "sales", "ref": 1, "member_count": 1,
        "members": [{"id": "ann", "name": "ann name", "role": "agent"}], "members_truncated": false})
    );

    let joined = bob.request(json!({"type": "join_room", "room": "sales"})).await;
    assert_eq!(joined["members"].as_array().unwrap().len(), 2, "the joiner is included");
    assert_eq!(
        ann.next_json().await,
        json!({"type": "user_joined", "room": "sales",
        "user": {"id": "bob", "name": "bob name", "role": "agent"}})
    );

    bob.send_json(json!({"type": "publish", "room": "sales", "data": {"text": "hi", "n": [1, 2]}}))
        .await;
    assert_eq!(
        ann.next_json().await,
        json!({"type": "room_message", "room": "sales",
        "from": {"id": "bob", "name": "bob name", "role": "agent"}, "data": {"text": "hi", "n": [1, 2]}})
    );
    bob.expect_silence(QUIET).await;

    let ack = bob.request(json!({"type": "publish", "room": "sales", "data": 1, "ref": "p"})).await;
    assert_eq!(ack, json!({"type": "published", "room": "sales", "delivered": 1, "ref": "p"}));
    assert_eq!(ann.next_json().await["data"], 1);

    let left = bob.request(json!({"type": "leave_room", "room": "sales", "ref": 2})).await;
    assert_eq!(left, json!({"type": "room_left", "room": "sales", "ref": 2}));
    assert_eq!(ann.next_json().await["type"], "user_left");

    let error = bob.request(json!({"type": "publish", "room": "sales", "data": 1, "ref": 3})).await;
    assert_eq!((error["code"].as_str(), error["ref"].as_i64()), (Some("not_a_member"), Some(3)));
    let error = bob.request(json!({"type": "leave_room", "room": "sales", "ref": 4})).await;
    assert_eq!(error["code"], "not_a_member");
    ann.expect_silence(QUIET).await;
}

#[actix_web::test]
async fn a_second_tab_is_not_news_and_a_closing_member_leaves() {
    let app = spawn_app().await;
    let mut ann = app.agent("ann", "acme").await;
    ann.request(json!({"type": "join_room", "room": "ops"})).await;

    let mut bob_1 = app.agent("bob", "acme").await;
    let mut bob_2 = app.agent("bob", "acme").await;
    bob_1.request(json!({"type": "join_room", "room": "ops"})).await;
    assert_eq!(ann.next_of_type("user_joined").await["user"]["id"], "bob");
    bob_2.request(json!({"type": "join_room", "room": "ops"})).await;
    ann.expect_silence(QUIET).await;

    // Both of bob's tabs get what ann publishes.
    ann.send_json(json!({"type": "publish", "room": "ops", "data": "x"})).await;
    assert_eq!(bob_1.next_of_type("room_message").await["data"], "x");
    assert_eq!(bob_2.next_of_type("room_message").await["data"], "x");

    bob_1.close().await;
    ann.expect_silence(QUIET).await;
    bob_2.close().await;
    let left = ann.next_of_type("user_left").await;
    assert_eq!(
        left,
        json!({"type": "user_left", "room": "ops", "user": {"id": "bob", "name": "bob name", "role": "agent"}})
    );
}

#[actix_web::test]
async fn customers_may_not_join_rooms_of_others() {
    let app = spawn_app().await;
    let mut customer = app.connect(&app.token("guest-1", Role::Customer, "acme")).await;
    for room in ["sales", "agents", "call:someone-elses"] {
        let error = customer.request(json!({"type": "join_room", "room": room, "ref": room})).await;
        assert_eq!(error["code"], "forbidden", "{room}");
    }
    let error = customer.request(json!({"type": "publish", "room": "agents", "data": 1})).await;
    assert_eq!(error["code"], "not_a_member");
}

#[actix_web::test]
async fn agents_share_the_automatic_agents_room() {
    let app = spawn_app().await;
    let mut ann = app.agent("ann", "acme").await;
    let mut admin = app.connect(&app.token("boss", Role::Admin, "acme")).await;
    ann.next_of_type("presence_changed").await;

    admin.send_json(json!({"type": "publish", "room": "agents", "data": "stand-up in 5"})).await;
    assert_eq!(ann.next_json().await["data"], "stand-up in 5");

    let error = ann.request(json!({"type": "leave_room", "room": "agents"})).await;
    assert_eq!(error["code"], "forbidden");
    let joined = ann.request(json!({"type": "join_room", "room": "agents"})).await;
    assert_eq!(joined["members"].as_array().unwrap().len(), 2);
}

#[actix_web::test]
async fn rooms_per_connection_are_limited() {
    let app = spawn_app_with(&["--max-rooms-per-connection", "2"]).await;
    let mut ann = app.agent("ann", "acme").await; // already in "agents"
    assert_eq!(
        ann.request(json!({"type": "join_room", "room": "one"})).await["type"],
        "room_joined"
    );
    let error = ann.request(json!({"type": "join_room", "room": "two", "ref": 1})).await;
    assert_eq!((error["code"].as_str(), error["ref"].as_i64()), (Some("forbidden"), Some(1)));
    // Re-joining a room it is in is not a new room.
    assert_eq!(
        ann.request(json!({"type": "join_room", "room": "one"})).await["type"],
        "room_joined"
    );
}
