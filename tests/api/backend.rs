//! Backend integration (`docs/protocol.md` §11): `rpc` frames through the RPC proxy to a fake
//! backend on loopback that checks the hub's signature, and `POST /api/v1/functions/{name}` for
//! a backend running calendar functions as a user (against the fake Google).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard::auth::Role;

use crate::calendar::{MORNING, calendar_app, connect_calendar};
use crate::fake_backend::{FakeBackend, SECRET};
use crate::helpers::{TestApp, WsClient, spawn_app, spawn_app_with};

async fn backend_app(secret: &str, extra: &[&str]) -> (TestApp, FakeBackend) {
    let backend = FakeBackend::start().await;
    let mut flags = backend.flags(secret);
    flags.extend(extra.iter().map(|s| s.to_string()));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    (spawn_app_with(&flags).await, backend)
}

async fn rpc(ws: &mut WsClient, method: &str, data: Value) -> Value {
    ws.ask(json!({"type": "rpc", "method": method, "data": data})).await
}

#[actix_web::test]
async fn an_rpc_reaches_the_backend_signed_with_the_verified_caller_and_its_answer_comes_back() {
    let (app, backend) = backend_app(SECRET, &[]).await;
    let mut ann = app.agent("ann", "acme").await;
    let session_id = ann.ask(json!({"type": "get_connection_info"})).await["session_id"].clone();

    let answer = ann
        .ask(json!({"type": "rpc", "method": "motivation", "data": {"mood": 3}, "ref": 7}))
        .await;
    assert_eq!(
        answer,
        json!({"type": "rpc_result", "method": "motivation", "ref": 7,
        "result": {"text": "Keep going, ann name: one entry a day adds up."}})
    );
    // Who called comes from the token, whatever the data says.
    let spoof = json!({"user": {"id": "boss", "company": "other"}, "user_id": "boss"});
    let echoed = rpc(&mut ann, "echo", spoof.clone()).await;
    assert_eq!(echoed["type"], "rpc_result");
    let call = &echoed["result"];
    assert_eq!(call["method"], "echo");
    assert_eq!(call["data"], spoof, "data passed unchanged");
    assert_eq!(
        call["user"],
        json!({"id": "ann", "name": "ann name", "role": "agent", "company": "acme"})
    );
    assert_eq!(call["session_id"], session_id);
    assert_eq!(backend.lock().calls.len(), 2);
    assert_eq!(backend.lock().refused, 0, "every call carried a good signature");
    for _ in 0..5 {
        assert_eq!(rpc(&mut ann, "motivation", json!({})).await["type"], "rpc_result");
    }
    assert_eq!(
        backend.lock().connections.len(),
        1,
        "one after the other, the calls reuse one connection"
    );

    // A customer may call the backend too, as themselves.
    let mut guest = app.connect(&app.token("guest-9", Role::Customer, "acme")).await;
    let echoed = rpc(&mut guest, "echo", Value::Null).await;
    assert_eq!(echoed["result"]["user"]["role"], "customer");
    assert_eq!(echoed["result"]["data"], Value::Null, "data is optional");

    let nothing = rpc(&mut ann, "nothing", json!({})).await;
    assert_eq!(
        nothing,
        json!({"type": "rpc_result", "method": "nothing", "result": null, "ref": nothing["ref"]})
    );
}

#[actix_web::test]
async fn the_backends_errors_pass_through_and_a_broken_backend_is_backend_unavailable() {
    let (app, backend) = backend_app(SECRET, &["--rpc-timeout-ms", "300"]).await;
    let mut ann = app.agent("ann", "acme").await;

    let refused = rpc(&mut ann, "refuse", json!({})).await;
    assert_eq!(
        (refused["type"].as_str(), refused["code"].as_str(), refused["message"].as_str()),
        (Some("rpc_error"), Some("no_quote_today"), Some("Come back tomorrow."))
    );
    assert_eq!(refused["method"], "refuse");

    for method in ["crash", "garbage", "bad_code"] {
        let failed = rpc(&mut ann, method, json!({})).await;
        assert_eq!(
            (failed["type"].as_str(), failed["code"].as_str()),
            (Some("rpc_error"), Some("backend_unavailable")),
            "{method}: {failed}"
        );
        assert!(
            !failed["message"].as_str().unwrap().contains("stack trace"),
            "nothing of the backend's leaks"
        );
    }

    let started = Instant::now();
    let slow = rpc(&mut ann, "motivation", json!({"sleep_ms": 2000})).await;
    assert_eq!(slow["code"], "backend_unavailable");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_millis(1500),
        "{waited:?}"
    );
    assert_eq!(backend.lock().refused, 0);
}

#[actix_web::test]
async fn a_hub_with_the_wrong_secret_is_refused_by_the_backend_and_answers_backend_unavailable() {
    let (app, backend) = backend_app("not-the-shared-secret", &[]).await;
    let mut ann = app.agent("ann", "acme").await;
    let failed = rpc(&mut ann, "motivation", json!({})).await;
    assert_eq!(failed["code"], "backend_unavailable");
    assert_eq!(backend.lock().refused, 1);
    assert!(backend.lock().calls.is_empty());
}

#[actix_web::test]
async fn without_a_backend_rpc_is_not_configured_and_bad_rpc_frames_are_invalid() {
    let app = spawn_app_with(&["--max-message-bytes", "200000"]).await;
    let mut ann = app.agent("ann", "acme").await;
    let answer = rpc(&mut ann, "motivation", json!({})).await;
    assert_eq!(
        (answer["type"].as_str(), answer["code"].as_str()),
        (Some("rpc_error"), Some("not_configured"))
    );

    for bad in [
        json!({"type": "rpc", "method": "Motivation", "ref": 1}),
        json!({"type": "rpc", "method": "", "ref": 2}),
        json!({"type": "rpc", "method": "m".repeat(65), "ref": 3}),
        json!({"type": "rpc", "data": 1, "ref": 4}),
        json!({"type": "rpc", "method": "big", "data": "x".repeat(64 * 1024), "ref": 5}),
    ] {
        let error = ann.ask(bad.clone()).await;
        assert_eq!(
            (error["type"].as_str(), error["code"].as_str()),
            (Some("error"), Some("invalid_message")),
            "{bad:.80}"
        );
    }
    assert_eq!(ann.ask(json!({"type": "ping"})).await["type"], "pong", "the connection lives on");
}

#[actix_web::test]
async fn at_most_eight_rpcs_wait_per_connection_and_a_pending_rpc_holds_up_nothing_else() {
    let (app, backend) = backend_app(SECRET, &[]).await;
    let mut ann = app.agent("ann", "acme").await;
    let mut bob = app.agent("bob", "acme").await;
    ann.ask(json!({"type": "join_room", "room": "sales"})).await;
    bob.ask(json!({"type": "join_room", "room": "sales"})).await;
    ann.next_of_type("user_joined").await;

    for n in 0..8 {
        ann.send_json(
            json!({"type": "rpc", "method": "echo", "data": {"sleep_ms": 1500}, "ref": n}),
        )
        .await;
    }
    let ninth = rpc(&mut ann, "echo", json!({})).await;
    assert_eq!(
        (ninth["type"].as_str(), ninth["code"].as_str()),
        (Some("rpc_error"), Some("rate_limited"))
    );

    // While eight wait on the backend, the connection answers at once and still gets room
    // messages.
    let started = Instant::now();
    assert_eq!(ann.ask(json!({"type": "ping"})).await["type"], "pong");
    bob.send_json(json!({"type": "publish", "room": "sales", "data": "meanwhile"})).await;
    assert_eq!(ann.next_of_type("room_message").await["data"], "meanwhile");
    assert!(started.elapsed() < Duration::from_millis(500), "{:?}", started.elapsed());
    // Another connection of the same user has its own eight.
    let mut ann_phone = app.agent("ann", "acme").await;
    assert_eq!(rpc(&mut ann_phone, "motivation", json!({})).await["type"], "rpc_result");

    let mut answered = Vec::new();
    while answered.len() < 8 {
        let frame = ann.next_json().await;
        if frame["type"] == "rpc_result" {
            answered.push(frame["ref"].as_u64().unwrap());
        }
    }
    answered.sort();
    assert_eq!(answered, (0..8).collect::<Vec<_>>());
    assert_eq!(
        backend.lock().most_in_flight,
        9,
        "eight of ann's desk and one of her phone at once"
    );
    assert_eq!(rpc(&mut ann, "motivation", json!({})).await["type"], "rpc_result", "room again");
}

// ---- POST /api/v1/functions/{name} ----

async fn run(app: &TestApp, token: &str, name: &str, body: Value) -> (u16, Value) {
    let (status, body) = app.post(&format!("/api/v1/functions/{name}"), &body, Some(token)).await;
    (status.as_u16(), body)
}

#[actix_web::test]
async fn a_backend_runs_a_calendar_function_as_a_user_of_its_company_and_the_user_sees_it() {
    let (app, fake) = calendar_app(&[]).await;
    let mut ann = app.agent("ann", "acme").await; // an identity-provider user: seen, no account
    connect_calendar(&app, &fake, "ann", "ann").await;
    let service = app.token("assistant", Role::Service, "acme");

    let window = json!({"datetime_start": MORNING.0, "datetime_end": MORNING.1});
    let (status, body) = run(
        &app,
        &service,
        "check_calendar_availability",
        json!({"user_id": "ann", "arguments": window, "call_id": "tool-1"}),
    )
    .await;
    assert_eq!((status, &body), (200, &json!({"output": {"available": true, "busy": []}})));
    let shown = ann.next_of_type("tool_call_executed").await;
    assert_eq!(
        (shown["tool_call_id"].as_str(), shown["name"].as_str(), shown["ok"].as_bool()),
        (Some("tool-1"), Some("check_calendar_availability"), Some(true))
    );

    // A retried booking with the same call_id books once.
    let booking = json!({"user_id": "ann", "call_id": "tool-2", "arguments":
        {"summary": "Consultation", "datetime_start": MORNING.0, "datetime_end": MORNING.1}});
    let (status, first) = run(&app, &service, "create_calendar_event", booking.clone()).await;
    assert_eq!(status, 200, "{first}");
    let (_, again) = run(&app, &service, "create_calendar_event", booking).await;
    assert_eq!(first["output"]["event_id"], again["output"]["event_id"]);
    assert_eq!(fake.lock().events["ann"].len(), 1);

    // An account made with `user add` works the same way (its calendar not connected: 409).
    let account = app.create_user("cat@acme.test", "correct horse battery", "agent", "acme");
    let (status, body) = run(
        &app,
        &service,
        "check_calendar_availability",
        json!({"user_id": account, "arguments": window}),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (409, Some("calendar_not_connected")));
}

#[actix_web::test]
async fn the_functions_route_answers_each_failure_with_its_status() {
    let (app, fake) = calendar_app(&[]).await;
    let _ann = app.agent("ann", "acme").await;
    connect_calendar(&app, &fake, "ann", "ann").await;
    let service = app.token("assistant", Role::Service, "acme");
    let window = json!({"datetime_start": MORNING.0, "datetime_end": MORNING.1});
    let cases = [
        ("book_a_flight", json!({"user_id": "ann", "arguments": {}}), 404, "unknown_function"),
        (
            "check_calendar_availability",
            json!({"user_id": "ann", "arguments": {"datetime_start": "soon"}}),
            400,
            "invalid_arguments",
        ),
        (
            "get_appointment_details",
            json!({"user_id": "ann", "arguments": {"event_id": "nosuchevent"}}),
            404,
            "not_found",
        ),
        (
            "check_calendar_availability",
            json!({"user_id": "nobody", "arguments": window}),
            404,
            "not_found",
        ),
        ("check_calendar_availability", json!({"arguments": window}), 400, "invalid_message"),
    ];
    for (name, body, status, code) in cases {
        let (got, answer) = run(&app, &service, name, body).await;
        assert_eq!((got, answer["error"].as_str()), (status, Some(code)), "{name}: {answer}");
        assert!(answer["message"].is_string());
    }
    fake.fail_next(&[503, 503, 503]);
    let (status, body) = run(
        &app,
        &service,
        "check_calendar_availability",
        json!({"user_id": "ann", "arguments": window}),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (503, Some("calendar_unavailable")));
}

#[actix_web::test]
async fn only_a_service_of_the_users_own_company_may_run_functions() {
    let (app, fake) = calendar_app(&[]).await;
    let _ann = app.agent("ann", "acme").await;
    connect_calendar(&app, &fake, "ann", "ann").await;
    let body = json!({"user_id": "ann", "arguments": {"datetime_start": MORNING.0, "datetime_end": MORNING.1}});
    let requests = fake.lock().api_requests;

    let other_company = app.token("assistant", Role::Service, "globex");
    let (status, answer) =
        run(&app, &other_company, "check_calendar_availability", body.clone()).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (404, Some("not_found")),
        "ann is unknown in globex"
    );
    for role in [Role::Agent, Role::Admin, Role::Customer] {
        let token = app.token("ann", role, "acme");
        let (status, _) = run(&app, &token, "check_calendar_availability", body.clone()).await;
        assert_eq!(status, 403, "{role:?}");
    }
    let (status, _) = app.post("/api/v1/functions/check_calendar_availability", &body, None).await;
    assert_eq!(status.as_u16(), 401);
    assert_eq!(fake.lock().api_requests, requests, "none of them reached Google");

    let plain = spawn_app().await;
    let service = plain.token("assistant", Role::Service, "acme");
    let _ann = plain.agent("ann", "acme").await;
    let (status, answer) = run(&plain, &service, "check_calendar_availability", body).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (409, Some("calendar_not_connected")),
        "no Google configured"
    );
}
