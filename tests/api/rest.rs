//! Status endpoints and server-side publishing (`docs/protocol.md` §5).

use serde_json::json;
use switchboard::auth::Role;

use crate::helpers::{spawn_app, spawn_app_with};

#[actix_web::test]
async fn ws_status_counts_users_and_connections() {
    let app = spawn_app().await;
    let (status, body) = app.get("/api/v1/ws/status", None).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"status": "active", "connected_users": 0, "connections": 0}));

    let _a = app.agent("ann", "acme").await;
    let _b = app.agent("ann", "acme").await;
    let _c = app.agent("bob", "globex").await;
    let body = app.wait_for_connections(3).await;
    assert_eq!(body["connected_users"], 2);
}

#[actix_web::test]
async fn ws_clients_lists_the_callers_company_for_operators_only() {
    let app = spawn_app().await;
    let mut ann = app.agent("ann", "acme").await;
    ann.request(json!({"type": "join_room", "room": "sales"})).await;
    let _other = app.agent("bob", "globex").await;
    app.wait_for_connections(2).await;

    for role in [Role::Admin, Role::Service] {
        let token = app.token("ops", role, "acme");
        let (status, body) = app.get("/api/v1/ws/clients", Some(&token)).await;
        assert_eq!(status, 200, "{role:?}");
        let clients = body["clients"].as_array().unwrap();
        assert_eq!(clients.len(), 1, "{body}");
        assert_eq!(clients[0]["user"], json!({"id": "ann", "name": "ann name", "role": "agent"}));
        assert_eq!(clients[0]["rooms"], json!(["agents", "sales"]));
        assert_eq!(clients[0]["session_id"].as_str().unwrap().len(), 32);
    }
    let (status, body) =
        app.get("/api/v1/ws/clients", Some(&app.token("ann", Role::Agent, "acme"))).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (403, Some("forbidden")));
    assert_eq!(app.get("/api/v1/ws/clients", None).await.0, 401);
}

#[actix_web::test]
async fn ws_test_reaches_every_connection_of_the_target() {
    let app = spawn_app().await;
    let mut tab_1 = app.agent("ann", "acme").await;
    let mut tab_2 = app.agent("ann", "acme").await;
    let admin = app.token("boss", Role::Admin, "acme");

    let (status, body) = app
        .post(
            "/api/v1/ws/test",
            &json!({"target_user_id": "ann", "message": "hello", "event": "drill"}),
            Some(&admin),
        )
        .await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"success": true, "delivered": 2}));
    for tab in [&mut tab_1, &mut tab_2] {
        let frame = tab.next_json().await;
        assert_eq!(frame["type"], "test");
        assert_eq!(frame["event"], "drill");
        assert_eq!(frame["message"], "hello");
        assert_eq!(frame["sender"]["id"], "boss");
        assert!(frame["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    let agent = app.token("ann", Role::Agent, "acme");
    let (status, _) = app
        .post("/api/v1/ws/test", &json!({"target_user_id": "ann", "message": "x"}), Some(&agent))
        .await;
    assert_eq!(status, 403);
    let (status, body) = app.post("/api/v1/ws/test", &json!({"message": "x"}), Some(&admin)).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_message")));
}

#[actix_web::test]
async fn publish_to_a_room_or_a_user() {
    let app = spawn_app().await;
    let mut ann = app.agent("ann", "acme").await;
    let mut bob = app.agent("bob", "acme").await;
    ann.next_of_type("presence_changed").await;
    ann.request(json!({"type": "join_room", "room": "sales"})).await;
    let service = app.token("crm", Role::Service, "acme");

    let (status, body) = app
        .post("/api/v1/publish", &json!({"room": "sales", "data": {"deal": 7}}), Some(&service))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"delivered": 1}));
    assert_eq!(
        ann.next_json().await,
        json!({"type": "room_message", "room": "sales",
        "from": {"id": "crm", "name": "crm name", "role": "service"}, "data": {"deal": 7}})
    );

    let (_, body) = app
        .post("/api/v1/publish", &json!({"user_id": "bob", "data": "ping"}), Some(&service))
        .await;
    assert_eq!(body, json!({"delivered": 1}));
    assert_eq!(
        bob.next_json().await,
        json!({"type": "server_message", "data": "ping",
        "from": {"id": "crm", "name": "crm name", "role": "service"}})
    );

    let (_, body) =
        app.post("/api/v1/publish", &json!({"room": "empty", "data": 1}), Some(&service)).await;
    assert_eq!(body, json!({"delivered": 0}));
}

#[actix_web::test]
async fn publish_rejects_bad_requests_and_wrong_roles() {
    let app = spawn_app().await;
    let admin = app.token("boss", Role::Admin, "acme");
    for (body, why) in [
        (json!({"room": "a", "user_id": "b", "data": 1}), "both targets"),
        (json!({"data": 1}), "no target"),
        (json!({"room": "bad room", "data": 1}), "bad room name"),
        (json!({"room": "a"}), "no data"),
    ] {
        let (status, answer) = app.post("/api/v1/publish", &body, Some(&admin)).await;
        assert_eq!(
            (status.as_u16(), answer["error"].as_str()),
            (400, Some("invalid_message")),
            "{why}"
        );
    }
    for role in [Role::Agent, Role::Customer] {
        let token = app.token("x", role, "acme");
        let (status, body) =
            app.post("/api/v1/publish", &json!({"room": "a", "data": 1}), Some(&token)).await;
        assert_eq!((status.as_u16(), body["error"].as_str()), (403, Some("forbidden")), "{role:?}");
    }
    let (status, body) = app.post("/api/v1/publish", &json!({"room": "a", "data": 1}), None).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (401, Some("invalid_token")));
}

#[actix_web::test]
async fn the_pages_and_their_assets_are_served_with_a_strict_policy() {
    let app =
        spawn_app_with(&["--ice-servers", r#"[{"urls":"stun:stun.example.test:3478"}]"#]).await;
    for (path, kind, marker) in [
        ("/", "text/html", "Call us"),
        ("/agent", "text/html", "Sign in"),
        ("/static/js/switchboard.js", "text/javascript", "export class SwitchboardClient"),
        ("/static/js/call.js", "text/javascript", "RTCPeerConnection"),
        ("/static/css/app.css", "text/css", "[hidden]"),
    ] {
        let mut res = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let headers = res.headers();
        assert!(headers.get("content-type").unwrap().to_str().unwrap().starts_with(kind), "{path}");
        let csp = headers.get("content-security-policy").unwrap().to_str().unwrap();
        assert!(
            csp.contains("default-src 'self'") && csp.contains("script-src 'self'"),
            "{path}: {csp}"
        );
        let body = res.body().await.unwrap();
        assert!(String::from_utf8_lossy(&body).contains(marker), "{path}");
    }
    let (status, config) = app.get("/api/v1/webrtc/config", None).await;
    assert_eq!(status, 200);
    assert_eq!(config, json!({"ice_servers": [{"urls": "stun:stun.example.test:3478"}]}));
    let (_, default) = spawn_app().await.get("/api/v1/webrtc/config", None).await;
    assert_eq!(default, json!({"ice_servers": []}), "none on a LAN");
}
