//! Browser calls: queue, offers, the first accept wins, WebRTC relay between the two parties
//! only, ends (hang-up, no answer, lost connection), isolation.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard::auth::Role;

use crate::helpers::{Event, TestApp, WsClient, spawn_app, spawn_app_with};

const QUIET: Duration = Duration::from_millis(300);

async fn customer(app: &TestApp, sub: &str, company: &str) -> WsClient {
    app.connect(&app.token(sub, Role::Customer, company)).await
}

/// A customer's `call_request`, answered by `call_queued`; returns the call id.
async fn request_call(customer: &mut WsClient, note: &str) -> String {
    let queued = customer.request(json!({"type": "call_request", "note": note, "ref": "q"})).await;
    assert_eq!(queued["type"], "call_queued", "{queued}");
    assert_eq!(queued["ref"], "q");
    queued["call_id"].as_str().unwrap().to_owned()
}

/// The next frame of `kind` about `call_id`, skipping the others.
async fn next_for(client: &mut WsClient, kind: &str, call_id: &str) -> Value {
    loop {
        let frame = client.next_of_type(kind).await;
        if frame["call_id"] == call_id {
            return frame;
        }
    }
}

/// Fails if a frame of `kind` arrives within a moment.
async fn expect_no(client: &mut WsClient, kind: &str) {
    loop {
        match client.next_event(QUIET).await {
            Event::Json(frame) if frame["type"] == kind => panic!("unexpected {frame}"),
            Event::Json(_) => continue,
            _ => return,
        }
    }
}

#[actix_web::test]
async fn a_call_from_request_to_hang_up() {
    let app = spawn_app().await;
    let mut ann = app.agent("ann", "acme").await;
    let mut bob = app.agent("bob", "acme").await;
    let mut visitor = customer(&app, "guest-1", "acme").await;

    let call_id = request_call(&mut visitor, "about my order").await;

    for agent in [&mut ann, &mut bob] {
        let incoming = next_for(agent, "incoming_call", &call_id).await;
        assert_eq!(
            incoming["customer"],
            json!({"id": "guest-1", "name": "guest-1 name", "role": "customer"})
        );
        assert_eq!(incoming["note"], "about my order");
    }

    ann.send_json(json!({"type": "call_accept", "call_id": call_id, "ref": 1})).await;
    let accepted = next_for(&mut ann, "call_accepted", &call_id).await;
    assert_eq!(accepted["ref"], 1);
    assert_eq!(accepted["agent"]["id"], "ann");
    let seen_by_visitor = next_for(&mut visitor, "call_accepted", &call_id).await;
    assert_eq!(seen_by_visitor["agent"], json!({"id": "ann", "name": "ann name", "role": "agent"}));
    let taken = next_for(&mut bob, "call_taken", &call_id).await;
    assert_eq!(taken["by"]["id"], "ann");

    bob.send_json(json!({"type": "call_accept", "call_id": call_id, "ref": "late"})).await;
    let late = bob.next_of_type("error").await;
    assert_eq!(
        (late["code"].as_str(), late["ref"].as_str()),
        (Some("call_already_taken"), Some("late"))
    );

    // Signaling goes to the other party, unchanged and in order.
    let offer = json!({"type": "offer", "sdp": "v=0 offer"});
    visitor.send_json(json!({"type": "webrtc_offer", "call_id": call_id, "sdp": offer})).await;
    let got = next_for(&mut ann, "webrtc_offer", &call_id).await;
    assert_eq!((&got["sdp"], &got["from"]["id"]), (&offer, &json!("guest-1")));
    ann.send_json(json!({"type": "webrtc_answer", "call_id": call_id, "sdp": {"type": "answer", "sdp": "v=0 answer"}})).await;
    assert_eq!(next_for(&mut visitor, "webrtc_answer", &call_id).await["sdp"]["type"], "answer");
    for n in 0..20 {
        visitor
            .send_json(json!({"type": "ice_candidate", "call_id": call_id, "candidate": {"n": n}}))
            .await;
    }
    for n in 0..20 {
        assert_eq!(next_for(&mut ann, "ice_candidate", &call_id).await["candidate"]["n"], n);
    }
    expect_no(&mut bob, "ice_candidate").await;
    bob.send_json(json!({"type": "ice_candidate", "call_id": call_id, "candidate": {}, "ref": 5}))
        .await;
    assert_eq!(bob.next_of_type("error").await["code"], "not_in_call");

    visitor.send_json(json!({"type": "call_end", "call_id": call_id})).await;
    for party in [&mut ann, &mut visitor] {
        let ended = next_for(party, "call_ended", &call_id).await;
        assert_eq!(
            (ended["reason"].as_str(), ended["by"]["id"].as_str()),
            (Some("hangup"), Some("guest-1"))
        );
    }
    ann.send_json(json!({"type": "webrtc_offer", "call_id": call_id, "sdp": "x"})).await;
    assert_eq!(ann.next_of_type("error").await["code"], "not_in_call", "nothing after the end");

    // The same storage and status events as a telephony call.
    let statuses: Vec<String> = {
        let mut seen = Vec::new();
        while let Event::Json(frame) = bob.next_event(QUIET).await {
            if frame["type"] == "call_status_changed" && frame["call_id"] == call_id.as_str() {
                seen.push(frame["status"].as_str().unwrap().to_owned());
            }
        }
        seen
    };
    assert_eq!(statuses.last().map(String::as_str), Some("ended"));
    let (_, detail) = app
        .get(&format!("/api/v1/calls/{call_id}"), Some(&app.token("boss", Role::Admin, "acme")))
        .await;
    assert_eq!(
        (detail["provider"].as_str(), detail["status"].as_str()),
        (Some("browser"), Some("ended"))
    );
    assert_eq!(
        (detail["owner_id"].as_str(), detail["ended_reason"].as_str()),
        (Some("ann"), Some("hangup"))
    );
    let stored: Vec<&str> = detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(stored, ["queued", "ringing", "in-progress", "ended"]);
}

#[actix_web::test]
async fn exactly_one_of_many_simultaneous_accepts_wins() {
    let app = spawn_app().await;
    let mut agents = Vec::new();
    for i in 0..6 {
        agents.push(app.agent(&format!("agent-{i}"), "acme").await);
    }
    let mut visitor = customer(&app, "guest-1", "acme").await;
    let call_id = request_call(&mut visitor, "").await;
    for agent in agents.iter_mut() {
        next_for(agent, "incoming_call", &call_id).await;
    }

    for agent in agents.iter_mut() {
        agent.send_json(json!({"type": "call_accept", "call_id": call_id})).await;
    }
    let mut winners = 0;
    let mut late = 0;
    for agent in agents.iter_mut() {
        loop {
            let frame = agent.next_json().await;
            match frame["type"].as_str() {
                Some("call_accepted") => winners += 1,
                Some("error") => {
                    assert_eq!(frame["code"], "call_already_taken");
                    late += 1;
                }
                _ => continue,
            }
            break;
        }
    }
    assert_eq!((winners, late), (1, 5));
}

#[actix_web::test]
async fn one_open_call_per_customer_and_a_bounded_queue() {
    let app = spawn_app_with(&["--max-queued-calls", "1"]).await;
    let mut first = customer(&app, "guest-1", "acme").await;
    let call_id = request_call(&mut first, "").await;
    let again = first.request(json!({"type": "call_request"})).await;
    assert_eq!(
        (again["type"].as_str(), again["call_id"].as_str(), again["position"].as_u64()),
        (Some("call_queued"), Some(call_id.as_str()), Some(1))
    );

    let mut second = customer(&app, "guest-2", "acme").await;
    let full = second.request(json!({"type": "call_request", "ref": 2})).await;
    assert_eq!((full["code"].as_str(), full["ref"].as_i64()), (Some("queue_full"), Some(2)));
    let mut elsewhere = customer(&app, "guest-3", "globex").await;
    assert_eq!(
        elsewhere.request(json!({"type": "call_request"})).await["type"],
        "call_queued",
        "queues are per company"
    );
}

#[actix_web::test]
async fn nobody_answering_ends_the_call_with_no_answer() {
    let app = spawn_app_with(&["--queue-timeout-ms", "300"]).await;
    let mut visitor = customer(&app, "guest-1", "acme").await;
    let call_id = request_call(&mut visitor, "").await;
    let ended = next_for(&mut visitor, "call_ended", &call_id).await;
    assert_eq!((ended["reason"].as_str(), &ended["by"]), (Some("no-answer"), &Value::Null));
    assert_eq!(request_call(&mut visitor, "").await.len(), 32, "the customer may call again");
}

#[actix_web::test]
async fn an_agent_who_becomes_available_is_offered_waiting_calls() {
    let app = spawn_app().await;
    let mut ann = app.agent("ann", "acme").await;
    ann.request(json!({"type": "agent_status", "status": "busy"})).await;
    let mut visitor = customer(&app, "guest-1", "acme").await;
    let call_id = request_call(&mut visitor, "").await;
    expect_no(&mut ann, "incoming_call").await;

    ann.send_json(json!({"type": "agent_status", "status": "available"})).await;
    next_for(&mut ann, "incoming_call", &call_id).await;
    let mut late_comer = app.agent("cy", "acme").await;
    next_for(&mut late_comer, "incoming_call", &call_id).await;
}

async fn call_in_progress(agent: &mut WsClient, visitor: &mut WsClient) -> String {
    let call_id = request_call(visitor, "").await;
    next_for(agent, "incoming_call", &call_id).await;
    agent.send_json(json!({"type": "call_accept", "call_id": call_id})).await;
    next_for(agent, "call_accepted", &call_id).await;
    next_for(visitor, "call_accepted", &call_id).await;
    call_id
}

#[actix_web::test]
async fn a_party_gone_past_the_grace_period_ends_the_call() {
    let app = spawn_app_with(&["--call-grace-ms", "400"]).await;
    let mut ann = app.agent("ann", "acme").await;
    let mut visitor = customer(&app, "guest-1", "acme").await;
    let call_id = call_in_progress(&mut ann, &mut visitor).await;

    drop(visitor);
    let ended = next_for(&mut ann, "call_ended", &call_id).await;
    assert_eq!((ended["reason"].as_str(), &ended["by"]), (Some("connection-lost"), &Value::Null));
}

#[actix_web::test]
async fn a_party_back_within_the_grace_period_keeps_the_call() {
    let app = spawn_app_with(&["--call-grace-ms", "800"]).await;
    let mut ann = app.agent("ann", "acme").await;
    let mut visitor = customer(&app, "guest-1", "acme").await;
    let call_id = call_in_progress(&mut ann, &mut visitor).await;

    drop(visitor);
    let mut back = customer(&app, "guest-1", "acme").await;
    actix_web::rt::time::sleep(Duration::from_millis(1200)).await;
    expect_no(&mut ann, "call_ended").await;
    back.send_json(
        json!({"type": "ice_candidate", "call_id": call_id, "candidate": "after reconnect"}),
    )
    .await;
    assert_eq!(next_for(&mut ann, "ice_candidate", &call_id).await["candidate"], "after reconnect");
}

#[actix_web::test]
async fn calls_stay_inside_their_company_and_their_parties() {
    let app = spawn_app().await;
    let mut ann = app.agent("ann", "acme").await;
    let mut outsider = app.agent("eve", "globex").await;
    let mut visitor = customer(&app, "guest-1", "acme").await;
    let mut other_visitor = customer(&app, "guest-2", "acme").await;
    let call_id = request_call(&mut visitor, "").await;
    expect_no(&mut outsider, "incoming_call").await;

    let error = outsider.request(json!({"type": "call_accept", "call_id": call_id})).await;
    assert_eq!(error["code"], "not_found", "another company's call does not exist for it");
    next_for(&mut ann, "incoming_call", &call_id).await;
    ann.send_json(json!({"type": "call_accept", "call_id": call_id})).await;
    next_for(&mut visitor, "call_accepted", &call_id).await;

    for intruder in [&mut outsider, &mut other_visitor] {
        let error =
            intruder.request(json!({"type": "webrtc_offer", "call_id": call_id, "sdp": "x"})).await;
        assert_eq!(error["code"], "not_in_call");
        let error = intruder.request(json!({"type": "call_end", "call_id": call_id})).await;
        assert_eq!(error["code"], "not_in_call");
    }
    let room = format!("call:{call_id}");
    assert_eq!(
        visitor.request(json!({"type": "join_room", "room": room})).await["type"],
        "room_joined"
    );
    assert_eq!(
        other_visitor.request(json!({"type": "join_room", "room": room})).await["code"],
        "forbidden"
    );
}

#[actix_web::test]
async fn only_customers_request_and_only_agents_accept() {
    let app = spawn_app().await;
    let mut ann = app.agent("ann", "acme").await;
    assert_eq!(ann.request(json!({"type": "call_request"})).await["code"], "forbidden");
    let mut visitor = customer(&app, "guest-1", "acme").await;
    assert_eq!(
        visitor.request(json!({"type": "call_accept", "call_id": "x"})).await["code"],
        "forbidden"
    );
}

#[actix_web::test]
async fn one_address_holds_at_most_three_open_calls() {
    let app = spawn_app().await;
    let mut visitors = Vec::new();
    for i in 0..3 {
        let mut visitor = customer(&app, &format!("guest-{i}"), "acme").await;
        request_call(&mut visitor, "").await;
        visitors.push(visitor);
    }
    // All from 127.0.0.1: the fourth is refused though the company's queue has room.
    let mut fourth = customer(&app, "guest-3", "acme").await;
    let refused = fourth.request(json!({"type": "call_request", "ref": 4})).await;
    assert_eq!(refused["code"], "queue_full", "{refused}");
    // A call that ends frees its place.
    let mut first = visitors.remove(0);
    let call = first.request(json!({"type": "call_request", "ref": "again"})).await;
    let call_id = call["call_id"].as_str().unwrap().to_owned();
    first.send_json(json!({"type": "call_end", "call_id": call_id})).await;
    first.next_of_type("call_ended").await;
    request_call(&mut fourth, "").await;
}

#[actix_web::test]
async fn a_restart_ends_the_browser_calls_it_left_open() {
    let app = spawn_app().await;
    let mut visitor = customer(&app, "guest-1", "acme").await;
    let call_id = request_call(&mut visitor, "").await;
    let agent = app.token("ann", Role::Agent, "acme");
    let (_, call) = app.get(&format!("/api/v1/calls/{call_id}"), Some(&agent)).await;
    assert_eq!(call["status"], "queued");

    // A new run on the same database: what the old run kept in memory cannot go on.
    let restarted = crate::helpers::spawn_app_on_database(
        &app.db_url,
        &["--jwt-secret", crate::helpers::TEST_SECRET],
    )
    .await;
    let (_, call) = restarted.get(&format!("/api/v1/calls/{call_id}"), Some(&agent)).await;
    assert_eq!(call["status"], "ended", "{call}");
    assert_eq!(call["ended_reason"], "server-restart");
    assert_eq!(call["events"].as_array().unwrap().last().unwrap()["applied"], true);
}

/// What `ann` looks like to a teammate now, from `get_online_users`.
async fn shown_status(teammate: &mut WsClient, user_id: &str) -> Value {
    let list = teammate.ask(json!({"type": "get_online_users", "ref": "who"})).await;
    let users = list["users"].as_array().unwrap();
    let user = users.iter().find(|u| u["user"]["id"] == user_id || u["id"] == user_id);
    let user = user.unwrap_or_else(|| panic!("{user_id} not online: {list}"));
    user["status"].clone()
}

/// Reads `agent_status_changed` frames until `user_id` is shown `status`.
async fn until_shown(teammate: &mut WsClient, user_id: &str, status: &str) {
    loop {
        let changed = teammate.next_of_type("agent_status_changed").await;
        if changed["user_id"] == user_id && changed["status"] == status {
            return;
        }
    }
}

#[actix_web::test]
async fn a_chosen_status_is_kept_across_reconnects_and_restarts() {
    let app = spawn_app().await;
    let mut ann = app.agent("ann", "acme").await;
    let mut bob = app.agent("bob", "acme").await;
    let answer = ann.ask(json!({"type": "agent_status", "status": "away", "ref": 1})).await;
    assert_eq!(
        (answer["type"].as_str(), answer["status"].as_str()),
        (Some("agent_status_changed"), Some("away"))
    );
    ann.close().await;

    let mut ann = app.agent("ann", "acme").await;
    assert_eq!(shown_status(&mut bob, "ann").await, "away", "a reconnect keeps the choice");
    let mut visitor = customer(&app, "guest-1", "acme").await;
    let call_id = request_call(&mut visitor, "").await;
    next_for(&mut bob, "incoming_call", &call_id).await;
    expect_no(&mut ann, "incoming_call").await;

    let restarted = crate::helpers::spawn_app_on_database(
        &app.db_url,
        &["--jwt-secret", crate::helpers::TEST_SECRET],
    )
    .await;
    let _ann = restarted.agent("ann", "acme").await;
    let mut cy = restarted.agent("cy", "acme").await;
    assert_eq!(shown_status(&mut cy, "ann").await, "away", "a restart keeps it too");
    assert_eq!(shown_status(&mut cy, "cy").await, "available", "a new agent starts available");
}

#[actix_web::test]
async fn an_agent_in_a_call_is_busy_and_not_offered_until_it_ends() {
    let app = spawn_app().await;
    let mut ann = app.agent("ann", "acme").await;
    let mut bob = app.agent("bob", "acme").await;
    let mut first = customer(&app, "guest-1", "acme").await;
    let call_id = call_in_progress(&mut ann, &mut first).await;
    until_shown(&mut bob, "ann", "busy").await;

    // A second caller is offered to bob only, and is told one agent is free.
    let mut second = customer(&app, "guest-2", "acme").await;
    let queued = second.ask(json!({"type": "call_request", "ref": "q"})).await;
    assert_eq!(queued["agents_available"], 1, "{queued}");
    let waiting = queued["call_id"].as_str().unwrap().to_owned();
    next_for(&mut bob, "incoming_call", &waiting).await;
    expect_no(&mut ann, "incoming_call").await;

    // A choice made during the call is kept, but the call still shows busy ...
    let answer = ann.ask(json!({"type": "agent_status", "status": "away", "ref": "a"})).await;
    assert_eq!(answer["status"], "busy", "{answer}");
    ann.ask(json!({"type": "agent_status", "status": "available", "ref": "b"})).await;
    // ... and returns when the call ends: ann is available again and hears the waiting call.
    ann.send_json(json!({"type": "call_end", "call_id": call_id})).await;
    until_shown(&mut bob, "ann", "available").await;
    next_for(&mut ann, "incoming_call", &waiting).await;
    let moved = next_for(&mut second, "queue_position", &waiting).await;
    assert_eq!(moved["agents_available"], 2, "{moved}");
}

#[actix_web::test]
async fn a_declined_offer_is_withdrawn_from_that_agent_only() {
    let app = spawn_app().await;
    let mut ann = app.agent("ann", "acme").await;
    let mut ann_tab = app.agent("ann", "acme").await;
    let mut bob = app.agent("bob", "acme").await;
    let mut visitor = customer(&app, "guest-1", "acme").await;
    let call_id = request_call(&mut visitor, "").await;
    for agent in [&mut ann, &mut ann_tab, &mut bob] {
        next_for(agent, "incoming_call", &call_id).await;
    }

    let declined = ann.ask(json!({"type": "call_decline", "call_id": call_id, "ref": "d"})).await;
    assert_eq!(declined, json!({"type": "call_withdrawn", "call_id": call_id, "ref": "d"}));
    next_for(&mut ann_tab, "call_withdrawn", &call_id).await;
    expect_no(&mut bob, "call_withdrawn").await;
    // Coming back to available does not offer it to ann again.
    ann.ask(json!({"type": "agent_status", "status": "away", "ref": 1})).await;
    ann.ask(json!({"type": "agent_status", "status": "available", "ref": 2})).await;
    expect_no(&mut ann, "incoming_call").await;
    // Bob still can take it.
    bob.send_json(json!({"type": "call_accept", "call_id": call_id})).await;
    next_for(&mut visitor, "call_accepted", &call_id).await;

    let gone = ann.ask(json!({"type": "call_decline", "call_id": call_id, "ref": 3})).await;
    assert_eq!(gone["code"], "not_found", "only a waiting call can be declined");
    let as_customer =
        visitor.ask(json!({"type": "call_decline", "call_id": call_id, "ref": 4})).await;
    assert_eq!(as_customer["code"], "forbidden");
}

#[actix_web::test]
async fn a_waiting_customer_can_cancel() {
    let app = spawn_app().await;
    let mut ann = app.agent("ann", "acme").await;
    let mut visitor = customer(&app, "guest-1", "acme").await;
    let call_id = request_call(&mut visitor, "").await;
    next_for(&mut ann, "incoming_call", &call_id).await;

    visitor.send_json(json!({"type": "call_end", "call_id": call_id, "reason": "hangup"})).await;
    for client in [&mut visitor, &mut ann] {
        assert_eq!(next_for(client, "call_ended", &call_id).await["reason"], "canceled");
    }
    let agent = app.token("ann", Role::Agent, "acme");
    let path = format!("/api/v1/calls/{call_id}");
    for _ in 0..50 {
        let (_, call) = app.get(&path, Some(&agent)).await;
        if call["status"] == "ended" {
            assert_eq!(call["ended_reason"], "canceled");
            return;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the canceled call was not stored as ended");
}

/// Reads `queue_position` frames for `call_id` until one says `position` and `agents`.
async fn until_position(customer: &mut WsClient, call_id: &str, position: u64, agents: u64) {
    loop {
        let frame = next_for(customer, "queue_position", call_id).await;
        if frame["position"] == position && frame["agents_available"] == agents {
            return;
        }
    }
}

#[actix_web::test]
async fn a_waiting_customer_hears_the_line_move_and_how_many_agents_are_free() {
    let app = spawn_app().await;
    let mut first = customer(&app, "guest-1", "acme").await;
    let mut second = customer(&app, "guest-2", "acme").await;
    let one = first.ask(json!({"type": "call_request", "ref": 1})).await;
    assert_eq!((&one["position"], &one["agents_available"]), (&json!(1), &json!(0)), "{one}");
    let two = second.ask(json!({"type": "call_request", "ref": 2})).await;
    assert_eq!((&two["position"], &two["agents_available"]), (&json!(2), &json!(0)), "{two}");
    let (one, two) = (one["call_id"].as_str().unwrap(), two["call_id"].as_str().unwrap());

    // Two agents come online, both free.
    let mut ann = app.agent("ann", "acme").await;
    let mut bob = app.agent("bob", "acme").await;
    until_position(&mut first, one, 1, 2).await;
    until_position(&mut second, two, 2, 2).await;
    // Ann takes the first call: the second moves up, one agent is free; bob takes that one:
    // nobody is free.
    ann.send_json(json!({"type": "call_accept", "call_id": one})).await;
    until_position(&mut second, two, 1, 1).await;
    bob.send_json(json!({"type": "call_accept", "call_id": two})).await;
    next_for(&mut second, "call_accepted", two).await;
    let mut third = customer(&app, "guest-3", "acme").await;
    let three = third.ask(json!({"type": "call_request", "ref": 3})).await;
    assert_eq!((&three["position"], &three["agents_available"]), (&json!(1), &json!(0)));
}

#[actix_web::test]
async fn the_call_history_names_owners_also_once_they_are_offline() {
    let app = spawn_app().await;
    let mut ann = app.agent("ann", "acme").await;
    let mut visitor = customer(&app, "guest-1", "acme").await;
    let call_id = call_in_progress(&mut ann, &mut visitor).await;
    ann.send_json(json!({"type": "call_end", "call_id": call_id})).await;
    next_for(&mut visitor, "call_ended", &call_id).await;
    ann.close().await;

    let bob = app.token("bob", Role::Agent, "acme");
    for _ in 0..50 {
        let (status, page) = app.get("/api/v1/calls?status=ended&limit=10", Some(&bob)).await;
        assert_eq!(status, 200, "{page}");
        if let Some(call) = page["calls"].as_array().unwrap().first() {
            assert_eq!((&call["id"], &call["owner_id"]), (&json!(call_id), &json!("ann")));
            assert_eq!(call["owner_name"], "ann name");
            let (_, one) = app.get(&format!("/api/v1/calls/{call_id}"), Some(&bob)).await;
            assert_eq!(one["owner_name"], "ann name");
            return;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the ended call never showed in the history");
}
