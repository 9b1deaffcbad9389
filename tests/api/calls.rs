//! Calls: Twilio and Vapi webhooks to the right screens, in order, nothing lost; REST calls.

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use switchboard::auth::Role;

use crate::helpers::{TestApp, WsClient, spawn_app, spawn_app_with};

pub(crate) const TWILIO_TOKEN: &str = "twilio-test-auth-token";
const VAPI_SECRET: &str = "vapi-test-secret";
const QUIET: Duration = Duration::from_millis(300);

pub(crate) async fn telephony_app() -> TestApp {
    spawn_app_with(&[
        "--twilio-auth-token",
        TWILIO_TOKEN,
        "--vapi-secret",
        VAPI_SECRET,
        "--default-company",
        "acme",
    ])
    .await
}

/// Twilio's signature, computed here independently of the server's code: HMAC-SHA1 over the
/// URL and the sorted parameters, base64.
fn twilio_signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn form(params: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish()
}

/// POSTs a status callback signed (or not) as Twilio would; the status and the body.
pub(crate) async fn post_twilio(
    app: &TestApp,
    query: &str,
    params: &[(&str, &str)],
    signature: Option<String>,
) -> (u16, Value) {
    let path = if query.is_empty() {
        "/api/v1/webhooks/twilio".to_owned()
    } else {
        format!("/api/v1/webhooks/twilio?{query}")
    };
    let mut req = app.http.post(app.url(&path)).content_type("application/x-www-form-urlencoded");
    if let Some(signature) = signature {
        req = req.insert_header(("X-Twilio-Signature", signature));
    }
    let mut res = req.send_body(form(params)).await.unwrap();
    let body = res.body().await.unwrap();
    (res.status().as_u16(), serde_json::from_slice(&body).unwrap_or(Value::Null))
}

pub(crate) async fn twilio(app: &TestApp, query: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let path = if query.is_empty() {
        "/api/v1/webhooks/twilio".to_owned()
    } else {
        format!("/api/v1/webhooks/twilio?{query}")
    };
    let signature = twilio_signature(TWILIO_TOKEN, &app.url(&path), params);
    post_twilio(app, query, params, Some(signature)).await
}

pub(crate) fn callback<'a>(
    sid: &'a str,
    status: &'a str,
    sequence: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("ApiVersion", "2010-04-01"),
        ("CallSid", sid),
        ("CallStatus", status),
        ("CallbackSource", "call-progress-events"),
        ("Direction", "inbound"),
        ("From", "+15017122661"),
        ("To", "+15558675310"),
        ("SequenceNumber", sequence),
        ("Timestamp", "Tue, 03 Mar 2026 10:00:01 +0000"),
    ]
}

async fn vapi(app: &TestApp, headers: &[(&str, &str)], body: &Value) -> (u16, Value) {
    let mut req = app.http.post(app.url("/api/v1/webhooks/vapi")).content_type("application/json");
    for (name, value) in headers {
        req = req.insert_header((*name, *value));
    }
    let mut res = req.send_body(body.to_string()).await.unwrap();
    let bytes = res.body().await.unwrap();
    (res.status().as_u16(), serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

pub(crate) async fn calls_of(app: &TestApp, company: &str) -> Vec<Value> {
    let (status, body) =
        app.get("/api/v1/calls", Some(&app.token("reader", Role::Admin, company))).await;
    assert_eq!(status, 200, "{body}");
    body["calls"].as_array().unwrap().clone()
}

async fn call_with_events(app: &TestApp, company: &str, id: &str) -> Value {
    let (status, body) = app
        .get(&format!("/api/v1/calls/{id}"), Some(&app.token("reader", Role::Admin, company)))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Every `call_status_changed` a client gets until it has been quiet for a moment.
async fn status_frames(client: &mut WsClient) -> Vec<Value> {
    let mut frames = Vec::new();
    while let crate::helpers::Event::Json(frame) = client.next_event(QUIET).await {
        if frame["type"] == "call_status_changed" {
            frames.push(frame);
        }
    }
    frames
}

#[actix_web::test]
async fn twilio_signatures_are_checked_and_bad_ones_store_nothing() {
    let app = telephony_app().await;
    let params = callback("CA0001", "ringing", "1");
    let path = "/api/v1/webhooks/twilio?company=acme";
    let good = twilio_signature(TWILIO_TOKEN, &app.url(path), &params);

    let (status, body) = post_twilio(&app, "company=acme", &params, None).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("invalid_signature")), "missing");
    let wrong_key = twilio_signature("another-token", &app.url(path), &params);
    assert_eq!(
        post_twilio(&app, "company=acme", &params, Some(wrong_key)).await.0,
        403,
        "wrong key"
    );
    let mut tampered = params.clone();
    tampered[3] = ("CallStatus", "completed");
    assert_eq!(
        post_twilio(&app, "company=acme", &tampered, Some(good.clone())).await.0,
        403,
        "tampered body"
    );
    assert_eq!(
        post_twilio(&app, "company=globex", &params, Some(good.clone())).await.0,
        403,
        "tampered URL"
    );
    assert!(calls_of(&app, "acme").await.is_empty(), "nothing stored");

    assert_eq!(post_twilio(&app, "company=acme", &params, Some(good)).await.0, 204);
    assert_eq!(calls_of(&app, "acme").await.len(), 1);
}

#[actix_web::test]
async fn webhooks_answer_503_when_the_provider_is_not_configured() {
    let app = spawn_app().await;
    let (status, body) = twilio(&app, "", &callback("CA1", "ringing", "0")).await;
    assert_eq!((status, body["error"].as_str()), (503, Some("provider_not_configured")));
    let (status, body) =
        vapi(&app, &[("x-vapi-secret", "x")], &json!({"message": {"type": "status-update"}})).await;
    assert_eq!((status, body["error"].as_str()), (503, Some("provider_not_configured")));
}

#[actix_web::test]
async fn a_status_change_reaches_the_owner_and_the_companys_agents_only() {
    let app = telephony_app().await;
    let mut owner = app.agent("agent-1", "acme").await;
    let mut colleague = app.agent("agent-2", "acme").await;
    let mut other_company = app.agent("agent-1", "globex").await;
    let mut customer = app.connect(&app.token("guest-1", Role::Customer, "acme")).await;
    owner.next_of_type("presence_changed").await; // agent-2
    owner.next_of_type("presence_batch").await; // guest-1
    colleague.next_of_type("presence_batch").await; // guest-1

    let (status, _) =
        twilio(&app, "company=acme&owner=agent-1", &callback("CA0002", "ringing", "1")).await;
    assert_eq!(status, 204);

    let frames = status_frames(&mut owner).await;
    assert_eq!(frames.len(), 1, "the owner is also an agent, and gets it once: {frames:?}");
    let frame = &frames[0];
    assert_eq!(frame["status"], "ringing");
    assert_eq!(frame["previous_status"], Value::Null, "the first event creates the call");
    assert_eq!(frame["provider"], "twilio");
    assert_eq!(frame["direction"], "inbound");
    assert_eq!(
        (frame["from"].as_str(), frame["to"].as_str()),
        (Some("+15017122661"), Some("+15558675310"))
    );
    assert_eq!(frame["owner_id"], "agent-1");
    assert_eq!(frame["ended_reason"], Value::Null);
    assert!(frame["at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(frame["data"]["CallSid"], "CA0002");
    assert_eq!(status_frames(&mut colleague).await, frames);
    other_company.expect_silence(QUIET).await;
    customer.expect_silence(QUIET).await;

    twilio(&app, "company=acme&owner=agent-1", &callback("CA0002", "busy", "2")).await;
    let ended = status_frames(&mut owner).await;
    assert_eq!(ended.len(), 1);
    assert_eq!(
        (ended[0]["status"].as_str(), ended[0]["previous_status"].as_str()),
        (Some("ended"), Some("ringing"))
    );
    assert_eq!(ended[0]["ended_reason"], "busy");
}

#[actix_web::test]
async fn a_shuffled_replay_sent_three_times_ends_like_the_ordered_one() {
    let app = telephony_app().await;
    let mut owner = app.agent("agent-1", "acme").await;
    let lifecycle =
        [("initiated", "0"), ("ringing", "1"), ("in-progress", "2"), ("completed", "3")];

    for (status, sequence) in lifecycle {
        assert_eq!(
            twilio(&app, "company=acme&owner=agent-1", &callback("CA-ORDERED", status, sequence))
                .await
                .0,
            204
        );
    }
    let ordered = status_frames(&mut owner).await;
    assert_eq!(
        ordered.iter().map(|f| f["status"].as_str().unwrap()).collect::<Vec<_>>(),
        ["initiated", "ringing", "in-progress", "ended"]
    );

    // Every event three times, in a scrambled order, all at once.
    let order = [2, 0, 3, 1, 1, 3, 0, 2, 3, 2, 1, 0];
    let sends = order.iter().map(|&i| {
        let (status, sequence) = lifecycle[i];
        let params = callback("CA-SHUFFLED", status, sequence);
        let app = &app;
        async move { twilio(app, "company=acme&owner=agent-1", &params).await.0 }
    });
    let statuses = futures_util::future::join_all(sends).await;
    assert!(statuses.iter().all(|s| *s == 204), "{statuses:?}");

    let seen = status_frames(&mut owner).await;
    let ranks: Vec<usize> = seen
        .iter()
        .map(|f| {
            ["initiated", "ringing", "in-progress", "ended"]
                .iter()
                .position(|s| f["status"] == *s)
                .unwrap()
        })
        .collect();
    assert!(
        !ranks.is_empty() && ranks.windows(2).all(|w| w[0] < w[1]),
        "strictly forward: {ranks:?}"
    );
    assert_eq!(seen.last().unwrap()["status"], "ended");

    let calls = calls_of(&app, "acme").await;
    let find = |sid: &str| calls.iter().find(|c| c["provider_call_id"] == sid).cloned().unwrap();
    let (a, b) = (find("CA-ORDERED"), find("CA-SHUFFLED"));
    for field in ["status", "ended_reason", "direction", "from", "to", "owner_id"] {
        assert_eq!(a[field], b[field], "{field}");
    }
    let detail = call_with_events(&app, "acme", b["id"].as_str().unwrap()).await;
    let events = detail["events"].as_array().unwrap();
    assert_eq!(events.len(), 12, "every event is kept in the log");
    // Two applied changes can reach the hub in either order; it drops the older one rather
    // than show a step backwards, so the screen sees a forward subset of the applied changes.
    let applied: Vec<&str> = events
        .iter()
        .filter(|e| e["applied"] == true)
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert!(seen.len() <= applied.len(), "{seen:?} vs {applied:?}");
    assert!(seen.iter().all(|f| applied.contains(&f["status"].as_str().unwrap())));
}

#[actix_web::test]
async fn a_lower_sequence_number_is_stale() {
    let app = telephony_app().await;
    twilio(&app, "company=acme", &callback("CA-SEQ", "in-progress", "5")).await;
    twilio(&app, "company=acme", &callback("CA-SEQ", "ringing", "4")).await;
    twilio(&app, "company=acme", &callback("CA-SEQ", "in-progress", "5")).await;
    let calls = calls_of(&app, "acme").await;
    assert_eq!(calls[0]["status"], "in-progress");
    let detail = call_with_events(&app, "acme", calls[0]["id"].as_str().unwrap()).await;
    let applied: Vec<bool> = detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["applied"].as_bool().unwrap())
        .collect();
    assert_eq!(applied, [true, false, false]);
}

fn vapi_status(vapi_id: &str, status: &str, sid: Option<&str>) -> Value {
    let mut call = json!({"id": vapi_id, "type": "inboundPhoneCall", "customer": {"number": "+15017122661"},
        "metadata": {"company": "acme", "owner_id": "agent-1"}});
    if let Some(sid) = sid {
        call["phoneCallProvider"] = json!("twilio");
        call["phoneCallProviderId"] = json!(sid);
    }
    json!({"message": {"type": "status-update", "status": status, "call": call, "timestamp": 1772532001000u64}})
}

#[actix_web::test]
async fn vapi_after_twilio_for_the_same_call_sid_stays_one_call() {
    let app = telephony_app().await;
    let mut agent = app.agent("agent-1", "acme").await;
    twilio(&app, "company=acme", &callback("CA-BOTH", "ringing", "1")).await;

    let (status, _) = vapi(
        &app,
        &[("x-vapi-secret", VAPI_SECRET)],
        &vapi_status("vapi-1", "in-progress", Some("CA-BOTH")),
    )
    .await;
    assert_eq!(status, 200);
    let report = json!({"message": {"type": "end-of-call-report", "endedReason": "customer-ended-call",
        "call": {"id": "vapi-1", "metadata": {"company": "acme"}}, "artifact": {"transcript": "AI: Hello"}}});
    let (status, _) =
        vapi(&app, &[("authorization", &format!("Bearer {VAPI_SECRET}"))], &report).await;
    assert_eq!(status, 200);

    let calls = calls_of(&app, "acme").await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["status"], "ended");
    assert_eq!(calls[0]["ended_reason"], "customer-ended-call");
    assert_eq!(calls[0]["owner_id"], "agent-1", "filled in from the Vapi metadata");
    let frames = status_frames(&mut agent).await;
    let statuses: Vec<&str> = frames.iter().map(|f| f["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["ringing", "in-progress", "ended"]);
    assert_eq!(frames[2]["data"]["endedReason"], "customer-ended-call");
}

#[actix_web::test]
async fn vapi_needs_its_secret() {
    let app = telephony_app().await;
    let body = vapi_status("vapi-2", "ringing", None);
    for headers in
        [vec![], vec![("x-vapi-secret", "wrong")], vec![("authorization", "Bearer wrong")]]
    {
        let (status, answer) = vapi(&app, &headers, &body).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (401, Some("invalid_signature")),
            "{headers:?}"
        );
    }
    assert!(calls_of(&app, "acme").await.is_empty());
    let (status, answer) = vapi(&app, &[("x-vapi-secret", VAPI_SECRET)], &json!({"nope": 1})).await;
    assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_message")));
    let (status, _) =
        vapi(&app, &[("x-vapi-secret", VAPI_SECRET)], &json!({"message": {"type": "transcript"}}))
            .await;
    assert_eq!(status, 200, "other message types are acknowledged");
}

#[actix_web::test]
async fn a_failed_write_answers_503_and_leaves_nothing_behind() {
    let app = telephony_app().await;
    // A real failure inside the database, injected from outside the server.
    crate::helpers::refuse_inserts(&app, "call_events");

    let (status, body) = twilio(&app, "company=acme", &callback("CA-FAIL", "ringing", "1")).await;
    assert_eq!((status, body["error"].as_str()), (503, Some("storage_unavailable")));
    assert!(!body.to_string().contains("disk on fire"), "no SQL or internals in answers");
    assert!(calls_of(&app, "acme").await.is_empty(), "the call row was rolled back too");

    crate::helpers::accept_inserts(&app, "call_events");
    assert_eq!(
        twilio(&app, "company=acme", &callback("CA-FAIL", "ringing", "1")).await.0,
        204,
        "the retry lands"
    );
    assert_eq!(calls_of(&app, "acme").await.len(), 1);
}

#[actix_web::test]
async fn registered_calls_get_their_webhooks_but_a_signed_company_wins() {
    let app = telephony_app().await;
    let service = app.token("crm", Role::Service, "globex");
    let registration = json!({"provider": "twilio", "provider_call_id": "CA-REG", "owner_id": "agent-9", "from": "+1555", "direction": "outbound-api"});

    let (status, call) = app.post("/api/v1/calls", &registration, Some(&service)).await;
    assert_eq!(status, 201, "{call}");
    assert_eq!(
        (call["status"].as_str(), call["company"].as_str()),
        (Some("queued"), Some("globex"))
    );
    assert_eq!(call["direction"], "outbound");
    let (status, again) = app.post("/api/v1/calls", &registration, Some(&service)).await;
    assert_eq!(
        (status.as_u16(), &again["id"]),
        (200, &call["id"]),
        "registering twice is idempotent"
    );
    let agent = app.token("agent-9", Role::Agent, "globex");
    assert_eq!(app.post("/api/v1/calls", &registration, Some(&agent)).await.0, 403);

    // No company in the URL: the registration decides (globex, owner agent-9).
    twilio(&app, "", &callback("CA-REG", "ringing", "1")).await;
    let globex = calls_of(&app, "globex").await;
    assert_eq!(globex.len(), 1);
    assert_eq!(
        (globex[0]["status"].as_str(), globex[0]["owner_id"].as_str()),
        (Some("ringing"), Some("agent-9"))
    );

    // A signed URL naming acme is another company's call: globex's is left alone.
    twilio(&app, "company=acme", &callback("CA-REG", "in-progress", "2")).await;
    assert_eq!(calls_of(&app, "globex").await[0]["status"], "ringing");
    let acme = calls_of(&app, "acme").await;
    assert_eq!((acme.len(), acme[0]["status"].as_str()), (1, Some("in-progress")));
}

#[actix_web::test]
async fn services_report_status_for_other_providers() {
    let app = telephony_app().await;
    let service = app.token("pbx", Role::Service, "acme");
    let mut agent = app.agent("agent-1", "acme").await;
    let (_, call) = app
        .post(
            "/api/v1/calls",
            &json!({"provider": "asterisk", "provider_call_id": "pbx-1", "owner_id": "agent-1"}),
            Some(&service),
        )
        .await;
    let id = call["id"].as_str().unwrap();
    let path = format!("/api/v1/calls/{id}/status");

    let (status, body) = app
        .post(&path, &json!({"status": "in-progress", "data": {"line": 4}}), Some(&service))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["applied"].as_bool(), body["call"]["status"].as_str()),
        (Some(true), Some("in-progress"))
    );
    let (_, body) = app.post(&path, &json!({"status": "ringing"}), Some(&service)).await;
    assert_eq!(body["applied"], false, "behind the current status");
    let (_, body) = app
        .post(&path, &json!({"status": "ended", "ended_reason": "hangup"}), Some(&service))
        .await;
    assert_eq!(
        (body["call"]["ended_reason"].as_str(), body["call"]["ended_at"].is_string()),
        (Some("hangup"), true)
    );
    let (_, body) = app.post(&path, &json!({"status": "in-progress"}), Some(&service)).await;
    assert_eq!(body["applied"], false, "nothing after a terminal status");

    let statuses: Vec<String> = status_frames(&mut agent)
        .await
        .iter()
        .map(|f| f["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(statuses, ["queued", "in-progress", "ended"]);

    let (status, body) = app.post(&path, &json!({"status": "sideways"}), Some(&service)).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_message")));
    let (status, _) =
        app.post("/api/v1/calls/nope/status", &json!({"status": "ended"}), Some(&service)).await;
    assert_eq!(status, 404);
    let other = app.token("pbx", Role::Service, "globex");
    let (status, _) = app.post(&path, &json!({"status": "ended"}), Some(&other)).await;
    assert_eq!(status, 404, "another company's call does not exist for it");
}

#[actix_web::test]
async fn listing_and_reading_calls_is_company_scoped_and_paged() {
    let app = telephony_app().await;
    for (i, status) in ["ringing", "ringing", "completed", "ringing", "busy"].iter().enumerate() {
        let sid = format!("CA-LIST-{i}");
        twilio(&app, "company=acme", &callback(&sid, status, "1")).await;
    }
    twilio(&app, "company=globex", &callback("CA-OTHER", "ringing", "1")).await;
    let admin = app.token("boss", Role::Admin, "acme");

    let (_, first) = app.get("/api/v1/calls?limit=2", Some(&admin)).await;
    assert_eq!(first["calls"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) =
        app.get(&format!("/api/v1/calls?limit=2&before={cursor}"), Some(&admin)).await;
    let (_, third) = app
        .get(
            &format!("/api/v1/calls?limit=2&before={}", second["next_cursor"].as_str().unwrap()),
            Some(&admin),
        )
        .await;
    assert_eq!(third["calls"].as_array().unwrap().len(), 1);
    assert_eq!(third["next_cursor"], Value::Null);
    let mut ids: Vec<Value> = [&first, &second, &third]
        .iter()
        .flat_map(|p| p["calls"].as_array().unwrap().iter().map(|c| c["id"].clone()))
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 5, "five acme calls, each once");

    let (_, ended) = app.get("/api/v1/calls?status=ended", Some(&admin)).await;
    assert_eq!(ended["calls"].as_array().unwrap().len(), 2);
    let (status, body) = app.get("/api/v1/calls?status=nonsense", Some(&admin)).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_message")));
    assert_eq!(app.get("/api/v1/calls?limit=0", Some(&admin)).await.0, 400);
    assert_eq!(app.get("/api/v1/calls?before=garbage", Some(&admin)).await.0, 400);

    let one = first["calls"][0].clone();
    let detail = call_with_events(&app, "acme", one["id"].as_str().unwrap()).await;
    assert_eq!(detail["id"], one["id"]);
    assert_eq!(detail["events"][0]["payload"]["CallSid"], one["provider_call_id"]);
    for key in [
        "company",
        "provider",
        "provider_call_id",
        "owner_id",
        "direction",
        "from",
        "to",
        "status",
        "ended_reason",
        "created_at",
        "updated_at",
        "ended_at",
    ] {
        assert!(detail.get(key).is_some(), "{key}");
    }

    let globex_call = calls_of(&app, "globex").await[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(app.get(&format!("/api/v1/calls/{globex_call}"), Some(&admin)).await.0, 404);
    let customer = app.token("guest-1", Role::Customer, "acme");
    assert_eq!(app.get("/api/v1/calls", Some(&customer)).await.0, 403);
    assert_eq!(app.get("/api/v1/calls", None).await.0, 401);
}
