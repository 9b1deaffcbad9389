//! The calendar tool against a fake Google on loopback: the connect flow, the five functions
//! and their errors, token refresh, isolation between users, tokens at rest, Vapi tool-calls.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard::auth::Role;

use crate::fake_google::FakeGoogle;
use crate::helpers::{TestApp, WsClient, spawn_app, spawn_app_with};

pub(crate) const MORNING: (&str, &str) = ("2026-03-04T09:00:00Z", "2026-03-04T10:00:00Z");

pub(crate) async fn calendar_app(extra: &[&str]) -> (TestApp, FakeGoogle) {
    let fake = FakeGoogle::start().await;
    let mut flags = fake.flags();
    flags.extend(extra.iter().map(|s| s.to_string()));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    (spawn_app_with(&flags).await, fake)
}

pub(crate) fn query_param(url: &str, name: &str) -> String {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Google's redirect back to the hub, from a browser holding `cookie` (`name=value`);
/// returns the `Location` we answer with.
pub(crate) async fn google_redirects_back(app: &TestApp, query: &str, cookie: &str) -> String {
    let http = awc::Client::builder().disable_redirects().finish();
    let res = http
        .get(app.url(&format!("/api/v1/calendar/oauth/callback?{query}")))
        .insert_header(("cookie", cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    res.headers().get("location").unwrap().to_str().unwrap().to_owned()
}

/// `POST /api/v1/calendar/connect` as `token`: the consent URL, and the browser-binding cookie
/// (`name=value`) it sets.
pub(crate) async fn start_connect(app: &TestApp, token: &str) -> (String, String) {
    let mut res =
        app.http.post(app.url("/api/v1/calendar/connect")).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let set_cookie = res.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
    for attribute in
        ["HttpOnly", "SameSite=Lax", "Path=/api/v1/calendar/oauth/callback", "Max-Age=600"]
    {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let body: Value = serde_json::from_slice(&res.body().await.unwrap()).unwrap();
    let url = body["authorization_url"].as_str().unwrap().to_owned();
    (url, set_cookie.split(';').next().unwrap().to_owned())
}

/// Runs the whole connect flow for `sub`, linking Google account `account`.
pub(crate) async fn connect_calendar(app: &TestApp, fake: &FakeGoogle, sub: &str, account: &str) {
    let token = app.token(sub, Role::Agent, "acme");
    let (url, cookie) = start_connect(app, &token).await;
    let code = format!("code-{sub}");
    fake.expect_code(&code, account, &query_param(&url, "code_challenge"));
    let query = format!("code={code}&state={}", query_param(&url, "state"));
    assert_eq!(google_redirects_back(app, &query, &cookie).await, "/agent?calendar=connected");
}

/// Sends a `function_call` and returns its answer (`function_result` or `function_error`).
async fn call(ws: &mut WsClient, name: &str, arguments: Value) -> Value {
    let id = format!("call-{}", uuid::Uuid::new_v4().simple());
    ws.send_json(json!({"type": "function_call", "call_id": id, "name": name, "arguments": arguments, "ref": id})).await;
    loop {
        let frame = ws.next_json().await;
        if (frame["type"] == "function_result" || frame["type"] == "function_error")
            && frame["call_id"] == id.as_str()
        {
            assert_eq!(frame["ref"], id.as_str());
            return frame;
        }
    }
}

fn output(frame: &Value) -> &Value {
    assert_eq!(frame["type"], "function_result", "{frame}");
    &frame["output"]
}

fn error_code(frame: &Value) -> &str {
    assert_eq!(frame["type"], "function_error", "{frame}");
    assert!(!frame["message"].as_str().unwrap().contains('\n'));
    frame["code"].as_str().unwrap()
}

#[actix_web::test]
async fn the_connect_flow_end_to_end() {
    let (app, fake) = calendar_app(&[]).await;
    let token = app.token("ann", Role::Agent, "acme");
    let (_, before) = app.get("/api/v1/calendar", Some(&token)).await;
    assert_eq!(before, json!({"connected": false, "calendar_id": null, "time_zone": null}));

    let (url, cookie) = start_connect(&app, &token).await;
    assert!(url.starts_with(&format!("{}/auth?", fake.base)));
    assert_eq!(query_param(&url, "client_id"), crate::fake_google::CLIENT_ID);
    assert_eq!(
        query_param(&url, "redirect_uri"),
        format!("{}/api/v1/calendar/oauth/callback", app.address)
    );
    assert_eq!(query_param(&url, "access_type"), "offline");
    assert_eq!(query_param(&url, "prompt"), "consent");
    assert_eq!(query_param(&url, "response_type"), "code");
    assert_eq!(query_param(&url, "code_challenge_method"), "S256");
    // The narrowest scopes the five functions need: events, and reading; never full control.
    let scopes = query_param(&url, "scope");
    let scopes: Vec<&str> = scopes.split(' ').collect();
    assert!(scopes.contains(&"https://www.googleapis.com/auth/calendar.events"), "{scopes:?}");
    assert!(scopes.contains(&"https://www.googleapis.com/auth/calendar.readonly"), "{scopes:?}");
    assert!(!scopes.contains(&"https://www.googleapis.com/auth/calendar"), "{scopes:?}");
    let state = query_param(&url, "state");
    assert!(state.len() >= 32);

    // A wrong verifier (another challenge) is refused by Google: nothing is stored.
    fake.expect_code("code-1", "ann", "not-the-challenge");
    let location =
        google_redirects_back(&app, &format!("code=code-1&state={state}"), &cookie).await;
    assert_eq!(location, "/agent?calendar=error&reason=exchange_refused");
    // That state is used up.
    fake.expect_code("code-2", "ann", &query_param(&url, "code_challenge"));
    let location =
        google_redirects_back(&app, &format!("code=code-2&state={state}"), &cookie).await;
    assert_eq!(location, "/agent?calendar=error&reason=invalid_state");
    let location = google_redirects_back(&app, "code=code-2&state=made-up", &cookie).await;
    assert_eq!(location, "/agent?calendar=error&reason=invalid_state");
    assert_eq!(app.get("/api/v1/calendar", Some(&token)).await.1["connected"], false);

    connect_calendar(&app, &fake, "ann", "ann").await;
    let (_, after) = app.get("/api/v1/calendar", Some(&token)).await;
    assert_eq!(
        after,
        json!({"connected": true, "calendar_id": "ann@example.com", "time_zone": "Europe/Berlin"})
    );

    let res =
        app.http.delete(app.url("/api/v1/calendar")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(app.get("/api/v1/calendar", Some(&token)).await.1["connected"], false);
    let mut ws = app.agent("ann", "acme").await;
    assert_eq!(
        error_code(
            &call(
                &mut ws,
                "check_calendar_availability",
                json!({"datetime_start": MORNING.0, "datetime_end": MORNING.1})
            )
            .await
        ),
        "calendar_not_connected"
    );
}

#[actix_web::test]
async fn a_consent_approved_in_another_browser_links_nothing() {
    let (app, fake) = calendar_app(&[]).await;
    let mallory = app.token("mallory", Role::Agent, "acme");
    let (_, vics_cookie) = start_connect(&app, &app.token("vic", Role::Agent, "acme")).await;
    // The attacker starts a connect for their own account and lures Vic to the consent URL;
    // Vic's browser never got Mallory's cookie: without it, with a forged one or with Vic's
    // own, nothing is stored, and the state is used up.
    for cookie in ["", "sb_oauth=forged", vics_cookie.as_str()] {
        let (url, mallorys_cookie) = start_connect(&app, &mallory).await;
        assert!(mallorys_cookie.starts_with("sb_oauth="));
        fake.expect_code("code-vic", "vic", &query_param(&url, "code_challenge"));
        let query = format!("code=code-vic&state={}", query_param(&url, "state"));
        let location = google_redirects_back(&app, &query, cookie).await;
        assert_eq!(location, "/agent?calendar=error&reason=state_mismatch", "{cookie:?}");
        let location = google_redirects_back(&app, &query, &mallorys_cookie).await;
        assert_eq!(location, "/agent?calendar=error&reason=invalid_state");
    }
    assert_eq!(app.get("/api/v1/calendar", Some(&mallory)).await.1["connected"], false);
}

#[actix_web::test]
async fn connecting_needs_a_configured_client_and_a_dashboard_user() {
    let app = spawn_app().await;
    let (status, body) = app
        .post_raw("/api/v1/calendar/connect", "", Some(&app.token("ann", Role::Agent, "acme")))
        .await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (503, Some("provider_not_configured")));
    let mut ws = app.agent("ann", "acme").await;
    let frame = call(
        &mut ws,
        "check_calendar_availability",
        json!({"datetime_start": MORNING.0, "datetime_end": MORNING.1}),
    )
    .await;
    assert_eq!(error_code(&frame), "calendar_not_connected");

    let (app, _fake) = calendar_app(&[]).await;
    let customer = app.token("guest-1", Role::Customer, "acme");
    assert_eq!(app.post_raw("/api/v1/calendar/connect", "", Some(&customer)).await.0, 403);
    assert_eq!(app.post_raw("/api/v1/calendar/connect", "", None).await.0, 401);
}

#[actix_web::test]
async fn the_five_functions_on_the_users_own_calendar() {
    let (app, fake) = calendar_app(&[]).await;
    connect_calendar(&app, &fake, "ann", "ann").await;
    fake.add_busy("ann", "2026-03-04T09:30:00Z", "2026-03-04T10:00:00Z");
    let mut ws = app.agent("ann", "acme").await;

    let free = call(
        &mut ws,
        "check_calendar_availability",
        json!({"datetime_start": "2026-03-04T08:00:00Z", "datetime_end": "2026-03-04T09:00:00Z"}),
    )
    .await;
    assert_eq!(output(&free), &json!({"available": true, "busy": []}));
    // Arguments as a JSON string, as OpenAI sends them; offsets are honoured.
    let args = json!({"datetime_start": "2026-03-04T10:00:00+01:00", "datetime_end": "2026-03-04T11:00:00+01:00"}).to_string();
    let busy = call(&mut ws, "check_calendar_availability", Value::String(args)).await;
    assert_eq!(
        output(&busy),
        &json!({"available": false, "busy": [{"start": "2026-03-04T09:30:00Z", "end": "2026-03-04T10:00:00Z"}]})
    );

    let created = call(&mut ws, "create_calendar_event", json!({"summary": "Consultation", "datetime_start": MORNING.0,
        "datetime_end": MORNING.1, "attendee_email": "jane@example.com", "description": "Booked by voice", "timezone": "Europe/Berlin",
        "user_id": "someone-else"})).await;
    let event_id = output(&created)["event_id"].as_str().unwrap().to_owned();
    assert_eq!(output(&created)["start"], MORNING.0);
    assert!(output(&created)["html_link"].as_str().unwrap().contains(&event_id));
    let stored = fake.event("ann", &event_id).unwrap();
    assert_eq!(
        stored["extendedProperties"]["private"],
        json!({"switchboard_user": "ann", "switchboard_company": "acme"}),
        "tagged, and the user_id argument ignored"
    );
    assert_eq!(stored["attendees"][0]["email"], "jane@example.com");

    let details = call(&mut ws, "get_appointment_details", json!({"event_id": event_id})).await;
    assert_eq!(
        output(&details),
        &json!({"event_id": event_id, "summary": "Consultation", "start": MORNING.0, "end": MORNING.1,
        "attendees": ["jane@example.com"], "status": "confirmed"})
    );

    let moved = call(&mut ws, "reschedule_appointment", json!({"event_id": event_id, "new_datetime_start": "2026-03-05T09:00:00Z", "new_datetime_end": "2026-03-05T09:30:00Z"})).await;
    assert_eq!(
        output(&moved),
        &json!({"event_id": event_id, "start": "2026-03-05T09:00:00Z", "end": "2026-03-05T09:30:00Z"})
    );
    let patch = fake.lock().bodies.last().cloned().unwrap();
    assert!(
        patch.get("attendees").is_none() && patch.get("summary").is_none(),
        "only start and end are patched: {patch}"
    );

    let cancelled = call(&mut ws, "cancel_appointment", json!({"event_id": event_id})).await;
    assert_eq!(output(&cancelled), &json!({"event_id": event_id, "cancelled": true}));
    let after = call(&mut ws, "get_appointment_details", json!({"event_id": event_id})).await;
    assert_eq!(error_code(&after), "not_found", "a cancelled event is gone");

    // Every executed function is shown on the user's connections too.
    let mut other_tab = app.agent("ann", "acme").await;
    call(
        &mut ws,
        "check_calendar_availability",
        json!({"datetime_start": MORNING.0, "datetime_end": MORNING.1}),
    )
    .await;
    let shown = other_tab.next_of_type("tool_call_executed").await;
    assert_eq!(
        (shown["name"].as_str(), shown["ok"].as_bool()),
        (Some("check_calendar_availability"), Some(true))
    );
    assert_eq!(shown["output"]["available"], false);
}

#[actix_web::test]
async fn function_errors() {
    let (app, fake) = calendar_app(&[]).await;
    connect_calendar(&app, &fake, "ann", "ann").await;
    let mut ws = app.agent("ann", "acme").await;
    let requests = fake.lock().api_requests;

    let bad = [
        ("book_a_flight", json!({}), "unknown_function"),
        (
            "check_calendar_availability",
            json!({"datetime_start": "soon", "datetime_end": MORNING.1}),
            "invalid_arguments",
        ),
        (
            "check_calendar_availability",
            json!({"datetime_start": MORNING.1, "datetime_end": MORNING.0}),
            "invalid_arguments",
        ),
        (
            "create_calendar_event",
            json!({"datetime_start": MORNING.0, "datetime_end": MORNING.1}),
            "invalid_arguments",
        ),
        ("cancel_appointment", json!("{not json"), "invalid_arguments"),
    ];
    for (name, args, code) in bad {
        assert_eq!(error_code(&call(&mut ws, name, args).await), code, "{name}");
    }
    assert_eq!(fake.lock().api_requests, requests, "none of those reached Google");

    assert_eq!(
        error_code(
            &call(&mut ws, "get_appointment_details", json!({"event_id": "nosuchevent"})).await
        ),
        "not_found"
    );

    fake.fail_next(&[503, 429]);
    let recovered = call(
        &mut ws,
        "check_calendar_availability",
        json!({"datetime_start": MORNING.0, "datetime_end": MORNING.1}),
    )
    .await;
    assert_eq!(output(&recovered)["available"], true, "two failures, then retried successfully");
    fake.fail_next(&[503, 503, 503]);
    let given_up = call(
        &mut ws,
        "check_calendar_availability",
        json!({"datetime_start": MORNING.0, "datetime_end": MORNING.1}),
    )
    .await;
    assert_eq!(error_code(&given_up), "calendar_unavailable");

    let mut customer = app.connect(&app.token("guest-1", Role::Customer, "acme")).await;
    customer.send_json(json!({"type": "function_call", "call_id": "x", "name": "cancel_appointment", "arguments": {}})).await;
    assert_eq!(customer.next_of_type("error").await["code"], "forbidden");
}

#[actix_web::test]
async fn access_tokens_are_refreshed_when_they_expire_or_are_refused() {
    let (app, fake) = calendar_app(&[]).await;
    fake.lock().token_lifetime = 63; // our provider refreshes a minute early: valid for ~3 s
    connect_calendar(&app, &fake, "ann", "ann").await;
    let mut ws = app.agent("ann", "acme").await;
    let check = json!({"datetime_start": MORNING.0, "datetime_end": MORNING.1});

    output(&call(&mut ws, "check_calendar_availability", check.clone()).await);
    output(&call(&mut ws, "check_calendar_availability", check.clone()).await);
    assert_eq!(fake.lock().refreshes, 1, "the first call refreshed, the second reused it");
    actix_web::rt::time::sleep(Duration::from_millis(3200)).await;
    output(&call(&mut ws, "check_calendar_availability", check.clone()).await);
    assert_eq!(fake.lock().refreshes, 2, "refreshed after the access token expired");

    fake.lock().token_lifetime = 3600;
    fake.expire_access_tokens();
    output(&call(&mut ws, "check_calendar_availability", check.clone()).await);
    assert_eq!(fake.lock().refreshes, 3, "a 401 refreshes once and retries");

    fake.revoke("ann");
    fake.expire_access_tokens();
    assert_eq!(
        error_code(&call(&mut ws, "check_calendar_availability", check).await),
        "calendar_not_connected"
    );
}

#[actix_web::test]
async fn two_users_never_see_or_change_each_others_events() {
    let (app, fake) = calendar_app(&[]).await;
    connect_calendar(&app, &fake, "ann", "ann").await;
    connect_calendar(&app, &fake, "bob", "bob").await;
    // cy shares ann's Google account (a team calendar): the tags still keep them apart.
    connect_calendar(&app, &fake, "cy", "ann").await;
    let mut ann = app.agent("ann", "acme").await;
    let mut bob = app.agent("bob", "acme").await;
    let mut cy = app.agent("cy", "acme").await;

    let created = call(
        &mut ann,
        "create_calendar_event",
        json!({"summary": "Ann's", "datetime_start": MORNING.0, "datetime_end": MORNING.1}),
    )
    .await;
    let event_id = output(&created)["event_id"].as_str().unwrap().to_owned();

    for intruder in [&mut bob, &mut cy] {
        for name in ["get_appointment_details", "cancel_appointment"] {
            assert_eq!(
                error_code(&call(intruder, name, json!({"event_id": event_id})).await),
                "not_found",
                "{name}"
            );
        }
        let moved = call(intruder, "reschedule_appointment", json!({"event_id": event_id, "new_datetime_start": "2026-03-06T09:00:00Z", "new_datetime_end": "2026-03-06T10:00:00Z"})).await;
        assert_eq!(error_code(&moved), "not_found");
    }
    assert_eq!(fake.event("ann", &event_id).unwrap()["status"], "confirmed", "untouched");
    assert_eq!(
        output(&call(&mut ann, "get_appointment_details", json!({"event_id": event_id})).await)["summary"],
        "Ann's"
    );
}

#[actix_web::test]
async fn refresh_tokens_are_not_readable_in_the_database_file() {
    let (app, fake) = calendar_app(&[]).await;
    connect_calendar(&app, &fake, "ann", "ann").await;
    let text = if crate::helpers::on_postgres() {
        // No file to read: what a database dump would show, the table's text.
        crate::helpers::table_text(&app, "calendar_connections")
    } else {
        let path = app.db_url.strip_prefix("sqlite://").unwrap().to_owned();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
        String::from_utf8_lossy(&bytes).into_owned()
    };
    assert!(text.contains("ann@example.com"), "the connection is stored");
    assert!(!text.contains("1//refresh-"), "but its refresh token only encrypted");
}

#[actix_web::test]
async fn vapi_tool_calls_act_for_the_calls_owner() {
    let (app, fake) = calendar_app(&["--vapi-secret", "vapi-secret"]).await;
    connect_calendar(&app, &fake, "ann", "ann").await;
    let mut ann = app.agent("ann", "acme").await;
    let vapi = |body: Value| {
        let app = &app;
        async move {
            let mut res = app
                .http
                .post(app.url("/api/v1/webhooks/vapi"))
                .insert_header(("x-vapi-secret", "vapi-secret"))
                .send_json(&body)
                .await
                .unwrap();
            let status = res.status().as_u16();
            (status, serde_json::from_slice::<Value>(&res.body().await.unwrap()).unwrap())
        }
    };
    let call_of = |owner: &str| json!({"id": format!("vapi-{owner}"), "metadata": {"company": "acme", "owner_id": owner}});
    let (status, _) = vapi(json!({"message": {"type": "status-update", "status": "in-progress", "call": call_of("ann")}})).await;
    assert_eq!(status, 200);

    let args = json!({"datetime_start": MORNING.0, "datetime_end": MORNING.1});
    let (status, answer) = vapi(json!({"message": {"type": "tool-calls", "call": call_of("ann"), "toolCallList": [
        {"id": "t1", "type": "function", "function": {"name": "check_calendar_availability", "arguments": args.to_string()}},
        {"id": "t2", "name": "create_calendar_event", "arguments": {"summary": "From Vapi", "datetime_start": MORNING.0, "datetime_end": MORNING.1, "user_id": "bob"}},
        {"id": "t3", "name": "cancel_appointment", "parameters": {"event_id": "nosuchevent"}}]}})).await;
    assert_eq!(status, 200);
    let results = answer["results"].as_array().unwrap();
    assert_eq!(
        results.iter().map(|r| r["toolCallId"].as_str().unwrap()).collect::<Vec<_>>(),
        ["t1", "t2", "t3"]
    );
    let first: Value = serde_json::from_str(results[0]["result"].as_str().unwrap()).unwrap();
    assert_eq!(first, json!({"available": true, "busy": []}));
    let second: Value = serde_json::from_str(results[1]["result"].as_str().unwrap()).unwrap();
    let stored = fake.event("ann", second["event_id"].as_str().unwrap()).unwrap();
    assert_eq!(
        stored["extendedProperties"]["private"]["switchboard_user"], "ann",
        "acted for the owner, not the argument"
    );
    assert!(results[2].get("result").is_none());
    assert!(!results[2]["error"].as_str().unwrap().is_empty());

    let shown = ann.next_of_type("tool_call_executed").await;
    assert_eq!(
        (shown["tool_call_id"].as_str(), shown["name"].as_str()),
        (Some("t1"), Some("check_calendar_availability"))
    );
    assert!(
        shown["call_id"].as_str().is_some_and(|id| id.len() == 32),
        "the Switchboard call: {shown}"
    );

    // A call with nobody to act for answers an error result, still with HTTP 200.
    let unowned = json!({"id": "vapi-unowned", "metadata": {"company": "acme"}});
    vapi(json!({"message": {"type": "status-update", "status": "in-progress", "call": unowned}}))
        .await;
    let (status, answer) = vapi(json!({"message": {"type": "tool-calls", "call": unowned,
        "toolCallList": [{"id": "t9", "name": "check_calendar_availability", "arguments": args}]}}))
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer["results"][0]["toolCallId"], "t9");
    assert!(answer["results"][0]["error"].as_str().unwrap().contains("owner"));
}

/// A `function_call` with the caller's own tool-call id; its answer.
async fn call_as(ws: &mut WsClient, id: &str, name: &str, arguments: Value) -> Value {
    ws.send_json(
        json!({"type": "function_call", "call_id": id, "name": name, "arguments": arguments}),
    )
    .await;
    loop {
        let frame = ws.next_json().await;
        if frame["call_id"] == id && frame["type"] != "tool_call_executed" {
            return frame;
        }
    }
}

#[actix_web::test]
async fn a_retried_booking_never_books_twice() {
    let (app, fake) = calendar_app(&[]).await;
    connect_calendar(&app, &fake, "ann", "ann").await;
    let mut ws = app.agent("ann", "acme").await;
    let booking =
        json!({"summary": "Consultation", "datetime_start": MORNING.0, "datetime_end": MORNING.1});
    let events = |fake: &FakeGoogle| fake.lock().events.get("ann").map_or(0, |e| e.len());

    // A client that retries the same tool call (a reconnect, Vapi's own retry) gets the same
    // event back.
    let first = call_as(&mut ws, "call_1", "create_calendar_event", booking.clone()).await;
    let again = call_as(&mut ws, "call_1", "create_calendar_event", booking.clone()).await;
    assert_eq!(output(&first)["event_id"], output(&again)["event_id"]);
    assert_eq!(events(&fake), 1);
    // Another tool call is another booking.
    call_as(&mut ws, "call_2", "create_calendar_event", booking.clone()).await;
    assert_eq!(events(&fake), 2);
    // Google stored it but the answer was lost: our own retry finds it instead of a second.
    fake.lock().lose_next_insert_answer = true;
    let lost = call_as(&mut ws, "call_3", "create_calendar_event", booking.clone()).await;
    assert!(output(&lost)["event_id"].is_string(), "{lost}");
    assert_eq!(events(&fake), 3);
    // The same tool-call id from another user is that user's own booking.
    connect_calendar(&app, &fake, "bob", "bob").await;
    let mut bob = app.agent("bob", "acme").await;
    let bobs = call_as(&mut bob, "call_1", "create_calendar_event", booking).await;
    assert_ne!(output(&bobs)["event_id"], output(&first)["event_id"]);
}

#[actix_web::test]
async fn disconnecting_revokes_the_grant_and_absurd_token_lifetimes_are_survived() {
    let (app, fake) = calendar_app(&[]).await;
    // Google says the access token lives for ever: believed for a day at most, no panic.
    fake.lock().token_lifetime = u64::MAX;
    connect_calendar(&app, &fake, "ann", "ann").await;
    let mut ws = app.agent("ann", "acme").await;
    let free = call(
        &mut ws,
        "check_calendar_availability",
        json!({"datetime_start": MORNING.0, "datetime_end": MORNING.1}),
    )
    .await;
    assert_eq!(output(&free)["available"], true);

    let token = app.token("ann", Role::Agent, "acme");
    let res =
        app.http.delete(app.url("/api/v1/calendar")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let mut revoked = false;
    for _ in 0..50 {
        revoked = !fake.lock().revoked.is_empty();
        if revoked {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(revoked, "the grant is revoked at Google");
}
