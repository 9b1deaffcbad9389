//! Chat (`docs/protocol.md` §8): messages stored before anyone is told and delivered to every
//! other connection of every participant; only participants see a conversation; retries
//! stored once; gapless seq under concurrent senders; typing; read marks that never move back;
//! the inbox and history over REST; nothing lost across a restart.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard::auth::Role;

use crate::helpers::{Event, TestApp, WsClient, spawn_app, spawn_app_on_database};

async fn customer(app: &TestApp, sub: &str) -> WsClient {
    app.connect(&app.token(sub, Role::Customer, "acme")).await
}

/// The next frame of `kind`, skipping presence and other noise.
async fn next(ws: &mut WsClient, kind: &str) -> Value {
    ws.next_of_type(kind).await
}

/// Fails if a chat frame arrives within a moment.
async fn expect_no_chat(ws: &mut WsClient) {
    loop {
        match ws.next_event(Duration::from_millis(300)).await {
            Event::Json(frame)
                if ["message", "typing", "conversation_read"]
                    .contains(&frame["type"].as_str().unwrap_or("")) =>
            {
                panic!("unexpected {frame}")
            }
            Event::Json(_) => continue,
            _ => return,
        }
    }
}

#[actix_web::test]
async fn a_visitor_and_the_team_write_to_each_other() {
    let app = spawn_app().await;
    let mut ann = app.agent("ann", "acme").await;
    let mut bob = app.agent("bob", "acme").await;
    let mut visitor = customer(&app, "guest-1").await;
    let mut visitors_tab = customer(&app, "guest-1").await;

    // The visitor names no conversation: theirs.
    visitor.send_json(json!({"type": "send_message", "text": " Hello? ", "ref": "m1"})).await;
    let sent = next(&mut visitor, "message_sent").await;
    assert_eq!(sent["ref"], "m1");
    let message = &sent["message"];
    assert_eq!(message["conversation"], "support:guest-1");
    assert_eq!((message["seq"].as_i64(), message["text"].as_str()), (Some(1), Some("Hello?")));
    assert_eq!(
        message["from"],
        json!({"id": "guest-1", "name": "guest-1 name", "role": "customer"})
    );
    assert_eq!((message["meta"].clone(), message["client_id"].clone()), (Value::Null, Value::Null));
    assert!(message["id"].is_string() && message["sent_at"].is_string());
    // Every agent sees it at once, and so does the visitor's other tab; not the sending one.
    for ws in [&mut ann, &mut bob, &mut visitors_tab] {
        assert_eq!(next(ws, "message").await["message"], *message);
    }
    expect_no_chat(&mut visitor).await;

    // An agent answers, with meta; the visitor's tabs and the other agent see it.
    let reply = json!({"type": "send_message", "conversation": "support:guest-1", "text": "Hi, Ann here",
                       "meta": {"appointment_id": 42}, "client_id": "c-1"});
    ann.send_json(reply).await;
    let answered = next(&mut ann, "message_sent").await["message"].clone();
    assert_eq!(
        (answered["seq"].as_i64(), answered["meta"].clone()),
        (Some(2), json!({"appointment_id": 42}))
    );
    assert_eq!(answered["client_id"], "c-1");
    for ws in [&mut visitor, &mut visitors_tab, &mut bob] {
        assert_eq!(next(ws, "message").await["message"], answered);
    }
}

#[actix_web::test]
async fn only_participants_ever_see_a_conversation() {
    let app = spawn_app().await;
    let mut visitor = customer(&app, "guest-1").await;
    let mut other_visitor = customer(&app, "guest-2").await;
    let mut other_company = app.agent("ann", "globex").await;
    let mut carl = app.agent("carl", "acme").await;
    let mut ann = app.agent("ann", "acme").await;
    visitor.ask(json!({"type": "send_message", "text": "private"})).await;

    // Customers only ever name their own support conversation.
    for frame in [
        json!({"type": "send_message", "conversation": "support:guest-1", "text": "x", "ref": 1}),
        json!({"type": "send_message", "to": "ann", "text": "x", "ref": 2}),
        json!({"type": "send_message", "conversation": "direct:ann:carl", "text": "x", "ref": 3}),
        json!({"type": "mark_read", "conversation": "support:guest-1", "seq": 1, "ref": 4}),
        json!({"type": "typing", "conversation": "support:guest-1", "active": true, "ref": 5}),
    ] {
        let answer = other_visitor.ask(frame.clone()).await;
        assert_eq!(answer["code"], "not_found", "{frame}: {answer}");
    }
    // Staff must name a conversation or a user.
    let answer = carl.ask(json!({"type": "send_message", "text": "x", "ref": 6})).await;
    assert_eq!(answer["code"], "invalid_message");
    // A direct conversation is its two members' only.
    ann.ask(json!({"type": "send_message", "to": "bob", "text": "lunch?"})).await;
    let answer = carl.ask(json!({"type": "send_message", "conversation": "direct:ann:bob", "text": "me too", "ref": 7})).await;
    assert_eq!(answer["code"], "not_found");

    // REST: the same rule, 404 never 403.
    let paths = [
        "/api/v1/conversations/support:guest-1/messages",
        "/api/v1/conversations/direct:ann:bob/messages",
    ];
    for (token, path) in [
        (app.token("guest-2", Role::Customer, "acme"), paths[0]),
        (app.token("carl", Role::Agent, "acme"), paths[1]),
    ] {
        assert_eq!(app.get(path, Some(&token)).await.0, 404, "{path}");
        let (status, _) = app.post(path, &json!({"text": "x"}), Some(&token)).await;
        assert_eq!(status, 404, "{path}");
    }
    // Another company's users with the same ids see their own company's (empty) conversations.
    let (_, empty) = app.get(paths[0], Some(&app.token("carl", Role::Agent, "globex"))).await;
    assert_eq!(empty["messages"], json!([]));
    let (_, empty) = app.get(paths[1], Some(&app.token("ann", Role::Agent, "globex"))).await;
    assert_eq!(empty["messages"], json!([]));
    expect_no_chat(&mut other_company).await;
    expect_no_chat(&mut other_visitor).await;
}

#[actix_web::test]
async fn to_names_a_customers_support_or_a_teammates_direct_conversation() {
    let app = spawn_app().await;
    let mut ann = app.agent("ann", "acme").await;
    let mut bob = app.agent("bob", "acme").await;
    let mut visitor = customer(&app, "guest-1").await;
    // Staff may write first to a connected customer.
    let sent =
        ann.ask(json!({"type": "send_message", "to": "guest-1", "text": "Can I help?"})).await;
    assert_eq!(sent["message"]["conversation"], "support:guest-1");
    assert_eq!(next(&mut visitor, "message").await["message"]["text"], "Can I help?");
    // A teammate: the direct conversation, ids in byte order, seen by the two of them only.
    let direct = bob.ask(json!({"type": "send_message", "to": "ann", "text": "coffee?"})).await;
    assert_eq!(direct["message"]["conversation"], "direct:ann:bob");
    assert_eq!(next(&mut ann, "message").await["message"]["text"], "coffee?");
    expect_no_chat(&mut visitor).await;
    // Someone unknown: not found.
    let unknown = ann.ask(json!({"type": "send_message", "to": "nobody", "text": "x"})).await;
    assert_eq!(unknown["code"], "not_found");
}

#[actix_web::test]
async fn a_retried_send_is_stored_once() {
    let app = spawn_app().await;
    let mut visitor = customer(&app, "guest-1").await;
    let frame = json!({"type": "send_message", "text": "once", "client_id": "k1"});
    let first = visitor.ask(frame.clone()).await["message"].clone();
    let again = visitor.ask(frame).await["message"].clone();
    assert_eq!(first, again);
    // Over REST: 201, then 200 with the same message.
    let token = app.token("guest-1", Role::Customer, "acme");
    let path = "/api/v1/conversations/support:guest-1/messages";
    let body = json!({"text": "rest", "client_id": "k2"});
    let (status, created) = app.post(path, &body, Some(&token)).await;
    assert_eq!(status, 201, "{created}");
    let (status, repeated) = app.post(path, &body, Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(created["message"], repeated["message"]);
    let (_, history) = app.get(path, Some(&token)).await;
    let seqs: Vec<i64> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![1, 2]);
}

#[actix_web::test]
async fn seq_has_no_gaps_and_no_duplicates_under_concurrent_senders() {
    let app = spawn_app().await;
    let mut senders = vec![customer(&app, "guest-1").await];
    for agent in ["ann", "bob", "carl"] {
        senders.push(app.agent(agent, "acme").await);
    }
    // Each sender sends 15 messages as fast as it can (under the per-user rate burst of 20).
    for ws in &mut senders {
        for i in 0..15 {
            ws.send_json(json!({"type": "send_message", "conversation": "support:guest-1", "text": format!("m{i}")})).await;
        }
    }
    let mut acknowledged = Vec::new();
    for ws in &mut senders {
        for _ in 0..15 {
            acknowledged.push(next(ws, "message_sent").await["message"]["seq"].as_i64().unwrap());
        }
    }
    acknowledged.sort_unstable();
    assert_eq!(acknowledged, (1..=60).collect::<Vec<i64>>());
    let token = app.token("ann", Role::Agent, "acme");
    let (_, history) =
        app.get("/api/v1/conversations/support:guest-1/messages?limit=200", Some(&token)).await;
    let seqs: Vec<i64> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=60).collect::<Vec<i64>>());
}

#[actix_web::test]
async fn typing_goes_to_the_others_throttled() {
    let app = spawn_app().await;
    let mut ann = app.agent("ann", "acme").await;
    let mut visitor = customer(&app, "guest-1").await;
    let mut visitors_tab = customer(&app, "guest-1").await;
    for _ in 0..5 {
        visitor
            .send_json(json!({"type": "typing", "conversation": "support:guest-1", "active": true}))
            .await;
    }
    let typing = next(&mut ann, "typing").await;
    assert_eq!(
        typing,
        json!({"type": "typing", "conversation": "support:guest-1",
        "user": {"id": "guest-1", "name": "guest-1 name", "role": "customer"}, "active": true})
    );
    // Throttled: one in 2 s; the typer's own tabs hear nothing.
    expect_no_chat(&mut ann).await;
    expect_no_chat(&mut visitors_tab).await;
    // A stop after a forwarded start goes through at once.
    visitor
        .send_json(json!({"type": "typing", "conversation": "support:guest-1", "active": false}))
        .await;
    assert_eq!(next(&mut ann, "typing").await["active"], false);
}

#[actix_web::test]
async fn read_marks_are_answered_shown_and_never_move_back() {
    let app = spawn_app().await;
    let mut ann = app.agent("ann", "acme").await;
    let mut anns_tab = app.agent("ann", "acme").await;
    let mut visitor = customer(&app, "guest-1").await;
    for i in 0..5 {
        visitor.ask(json!({"type": "send_message", "text": format!("m{i}")})).await;
    }
    let marked = ann
        .ask(json!({"type": "mark_read", "conversation": "support:guest-1", "seq": 3, "ref": "r"}))
        .await;
    assert_eq!(
        marked,
        json!({"type": "read_marked", "conversation": "support:guest-1", "seq": 3, "unread": 2, "ref": "r"})
    );
    // The visitor sees it was read; so does Ann's other tab.
    let read = next(&mut visitor, "conversation_read").await;
    assert_eq!((read["seq"].as_i64(), read["user"]["id"].as_str()), (Some(3), Some("ann")));
    assert_eq!(next(&mut anns_tab, "conversation_read").await["seq"], 3);
    // Never back; never past the newest message.
    let back =
        ann.ask(json!({"type": "mark_read", "conversation": "support:guest-1", "seq": 1})).await;
    assert_eq!((back["seq"].as_i64(), back["unread"].as_i64()), (Some(3), Some(2)));
    let past =
        ann.ask(json!({"type": "mark_read", "conversation": "support:guest-1", "seq": 99})).await;
    assert_eq!((past["seq"].as_i64(), past["unread"].as_i64()), (Some(5), Some(0)));
    // Over REST, pushed the same way.
    let token = app.token("guest-1", Role::Customer, "acme");
    let (status, body) = app
        .post("/api/v1/conversations/support:guest-1/read", &json!({"seq": 5}), Some(&token))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"conversation": "support:guest-1", "seq": 5, "unread": 0}));
    assert_eq!(next(&mut ann, "conversation_read").await["user"]["id"], "guest-1");
}

#[actix_web::test]
async fn the_inbox_is_latest_first_with_unread_counts_and_pages() {
    let app = spawn_app().await;
    let mut ann = app.agent("ann", "acme").await;
    let _bob = app.agent("bob", "acme").await;
    for guest in ["guest-1", "guest-2", "guest-3"] {
        let mut visitor = customer(&app, guest).await;
        visitor.ask(json!({"type": "send_message", "text": format!("hi from {guest}")})).await;
        visitor.ask(json!({"type": "send_message", "text": "anyone?"})).await;
        // Activity times are milliseconds: keep them apart.
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    ann.ask(json!({"type": "send_message", "to": "bob", "text": "psst"})).await;
    ann.ask(json!({"type": "mark_read", "conversation": "support:guest-2", "seq": 2})).await;
    let token = app.token("ann", Role::Agent, "acme");
    let (_, inbox) = app.get("/api/v1/conversations", Some(&token)).await;
    let list = inbox["conversations"].as_array().unwrap();
    let ids: Vec<&str> = list.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["direct:ann:bob", "support:guest-3", "support:guest-2", "support:guest-1"]);
    let guest_3 = &list[1];
    assert_eq!(
        (guest_3["kind"].as_str(), guest_3["unread_count"].as_i64()),
        (Some("support"), Some(2))
    );
    assert_eq!(
        guest_3["with"],
        json!({"id": "guest-3", "name": "guest-3 name", "role": "customer"})
    );
    assert_eq!(guest_3["last_message"]["text"], "anyone?");
    assert_eq!(list[2]["unread_count"], 0);
    assert_eq!(list[0]["with"]["id"], "bob");
    // Unread only, and pages.
    let (_, unread) = app.get("/api/v1/conversations?unread=true", Some(&token)).await;
    let ids: Vec<&str> = unread["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["support:guest-3", "support:guest-1"]);
    let (_, first) = app.get("/api/v1/conversations?limit=3", Some(&token)).await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let (_, rest) =
        app.get(&format!("/api/v1/conversations?limit=3&cursor={cursor}"), Some(&token)).await;
    assert_eq!(rest["conversations"][0]["id"], "support:guest-1");
    assert_eq!(rest["next_cursor"], Value::Null);
    // A customer's inbox is their own conversation, with the team.
    let (_, mine) =
        app.get("/api/v1/conversations", Some(&app.token("guest-1", Role::Customer, "acme"))).await;
    assert_eq!(mine["conversations"].as_array().unwrap().len(), 1);
    assert_eq!(mine["conversations"][0]["with"]["id"], "team");
}

#[actix_web::test]
async fn history_pages_both_ways_and_by_direction() {
    let app = spawn_app().await;
    let token = app.token("guest-1", Role::Customer, "acme");
    let agent = app.token("ann", Role::Agent, "acme");
    let path = "/api/v1/conversations/support:guest-1/messages";
    for i in 1..=7 {
        let who = if i % 2 == 0 { &agent } else { &token };
        app.post(path, &json!({"text": format!("m{i}")}), Some(who)).await;
    }
    let seqs = |page: &Value| -> Vec<i64> {
        page["messages"].as_array().unwrap().iter().map(|m| m["seq"].as_i64().unwrap()).collect()
    };
    let (_, newest) = app.get(&format!("{path}?limit=3"), Some(&token)).await;
    assert_eq!((seqs(&newest), newest["has_more"].as_bool()), (vec![5, 6, 7], Some(true)));
    let (_, older) = app.get(&format!("{path}?limit=3&before=5"), Some(&token)).await;
    assert_eq!((seqs(&older), older["has_more"].as_bool()), (vec![2, 3, 4], Some(true)));
    let (_, caught_up) = app.get(&format!("{path}?after=4"), Some(&token)).await;
    assert_eq!((seqs(&caught_up), caught_up["has_more"].as_bool()), (vec![5, 6, 7], Some(false)));
    let (_, received) = app.get(&format!("{path}?direction=received"), Some(&token)).await;
    assert_eq!(seqs(&received), vec![2, 4, 6]);
    let (_, sent) = app.get(&format!("{path}?direction=sent&limit=2"), Some(&token)).await;
    assert_eq!(seqs(&sent), vec![5, 7]);
    for bad in ["?limit=201", "?limit=0", "?direction=sideways", "?before=3&after=1"] {
        let (status, body) = app.get(&format!("{path}{bad}"), Some(&token)).await;
        assert_eq!(
            (status.as_u16(), body["error"].as_str()),
            (400, Some("invalid_message")),
            "{bad}"
        );
    }
    // Bad messages.
    for body in [
        json!({"text": "   "}),
        json!({"text": "x".repeat(4001)}),
        json!({"text": "x", "meta": [1]}),
        json!({"text": "x", "client_id": "c".repeat(65)}),
    ] {
        let (status, answer) = app.post(path, &body, Some(&token)).await;
        assert_eq!((status.as_u16(), answer["error"].as_str()), (400, Some("invalid_message")));
    }
}

#[actix_web::test]
async fn sending_is_rate_limited_per_user() {
    let app = spawn_app().await;
    let mut visitor = customer(&app, "guest-1").await;
    for i in 0..25 {
        visitor.send_json(json!({"type": "send_message", "text": format!("m{i}")})).await;
    }
    let mut limited = 0;
    for _ in 0..25 {
        let frame = visitor.next_json().await;
        if frame["code"] == "rate_limited" {
            limited += 1;
        }
    }
    assert!((4..=6).contains(&limited), "{limited} of 25 refused (burst 20)");
}

#[actix_web::test]
async fn what_was_said_survives_a_restart_and_a_client_catches_up() {
    let app = spawn_app().await;
    let mut visitor = customer(&app, "guest-1").await;
    visitor.ask(json!({"type": "send_message", "text": "before the restart"})).await;
    let restarted =
        spawn_app_on_database(&app.db_url, &["--jwt-secret", crate::helpers::TEST_SECRET]).await;
    let agent = restarted.token("ann", Role::Agent, "acme");
    let mut visitor = restarted.connect(&restarted.token("guest-1", Role::Customer, "acme")).await;
    visitor.ask(json!({"type": "send_message", "text": "after it"})).await;
    // A dashboard that saw seq 1 asks for what it missed.
    let (_, missed) =
        restarted.get("/api/v1/conversations/support:guest-1/messages?after=1", Some(&agent)).await;
    let texts: Vec<&str> = missed["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["after it"]);
    assert_eq!(missed["messages"][0]["seq"], 2);
}

#[actix_web::test]
async fn a_failed_write_is_an_error_to_the_sender_and_nothing_is_pushed() {
    let app = spawn_app().await;
    let mut ann = app.agent("ann", "acme").await;
    let mut visitor = customer(&app, "guest-1").await;
    // The database refuses every new message (a trigger, installed from outside the hub).
    crate::helpers::refuse_inserts(&app, "messages");
    let answer = visitor.ask(json!({"type": "send_message", "text": "lost?", "ref": 1})).await;
    assert_eq!(
        (answer["code"].as_str(), answer["ref"].as_i64()),
        (Some("storage_unavailable"), Some(1))
    );
    expect_no_chat(&mut ann).await;
    let token = app.token("guest-1", Role::Customer, "acme");
    let (status, _) = app
        .post("/api/v1/conversations/support:guest-1/messages", &json!({"text": "x"}), Some(&token))
        .await;
    assert_eq!(status, 503);
    // Once the database takes writes again, so does the hub; the seq has no hole.
    crate::helpers::accept_inserts(&app, "messages");
    let sent = visitor.ask(json!({"type": "send_message", "text": "now"})).await;
    assert_eq!(sent["message"]["seq"], 1);
}

#[actix_web::test]
async fn old_messages_are_deleted_past_the_retention() {
    let app = spawn_app().await;
    let token = app.token("guest-1", Role::Customer, "acme");
    let path = "/api/v1/conversations/support:guest-1/messages";
    app.post(path, &json!({"text": "old"}), Some(&token)).await;
    app.post(path, &json!({"text": "new"}), Some(&token)).await;
    let three_days_ago = chrono::Utc::now().timestamp_millis() - 3 * 24 * 3600 * 1000;
    let backdate = format!("UPDATE messages SET sent_at = {three_days_ago} WHERE seq = 1");
    crate::helpers::raw_sql(&app, &backdate);
    let flags = ["--jwt-secret", crate::helpers::TEST_SECRET, "--message-retention-days", "2"];
    let restarted = spawn_app_on_database(&app.db_url, &flags).await;
    let mut texts = Vec::new();
    for _ in 0..50 {
        let (_, history) = restarted.get(path, Some(&token)).await;
        texts = history["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_owned())
            .collect();
        if texts.len() == 1 {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(texts, ["new"]);
}
