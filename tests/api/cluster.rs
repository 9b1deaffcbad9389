//! More than one node (§9): two or three real `switchboard` processes on one fresh PostgreSQL
//! database and the machine's Redis, each cluster under its own `--cluster-name` (its keys are
//! deleted after). Clients of one conversation sit on different nodes; every sentence of §9's
//! "behaves as on one node" paragraph is checked across nodes, then a node killed with
//! SIGKILL (the purge time is printed), a node joining late, and Redis going away.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard::auth::Role;

use crate::helpers::{Event, PostgresDatabase, TestApp, WsClient, client_of};
use crate::process::ServerProcess;

/// Where every machine of this kind has Redis.
const REDIS: &str = "redis://127.0.0.1:6379/0";
const GRACE_MS: &str = "1500";

/// The nodes of one test's cluster, killed and their Redis keys deleted when dropped.
struct Cluster {
    name: String,
    db: PostgresDatabase,
    nodes: Vec<Node>,
}

struct Node {
    process: ServerProcess,
    app: TestApp,
}

impl Cluster {
    /// `count` nodes (started one after the other: the first applies the migrations).
    fn start(count: usize, extra: &[&str]) -> Self {
        redis_required();
        let name = format!("sbtest-{}", uuid::Uuid::new_v4().simple());
        let mut cluster = Self { name, db: PostgresDatabase::required(), nodes: Vec::new() };
        for _ in 0..count {
            cluster.add_node(extra);
        }
        cluster
    }

    fn add_node(&mut self, extra: &[&str]) -> &Node {
        self.add_node_on(REDIS, extra)
    }

    fn add_node_on(&mut self, redis: &str, extra: &[&str]) -> &Node {
        let node_id = format!("node{}", self.nodes.len() + 1);
        let mut args = vec![
            "--encryption-key",
            "test-encryption-key-0123456789",
            "--redis-url",
            redis,
            "--cluster-name",
            &self.name,
            "--node-id",
            &node_id,
            "--handshake-rate-per-ip",
            "100000",
            "--call-grace-ms",
            GRACE_MS,
        ];
        args.extend_from_slice(extra);
        let process = ServerProcess::start(&self.db.url, &args);
        let port = process.address.rsplit(':').next().unwrap().parse().unwrap();
        let app = client_of(port, &self.db.url);
        self.nodes.push(Node { process, app });
        self.nodes.last().unwrap()
    }

    fn app(&self, index: usize) -> &TestApp {
        &self.nodes[index].app
    }

    /// Waits until every node counts `users` online users in `/api/v1/ws/status`.
    async fn wait_for_users(&self, users: u64) {
        for node in &self.nodes {
            wait_until(&format!("{users} users on every node"), || async {
                node.app.get("/api/v1/ws/status", None).await.1["connected_users"] == json!(users)
            })
            .await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.process.child.kill();
            let _ = node.process.child.wait();
        }
        if let Ok(mut redis) = redis::Client::open(REDIS).and_then(|c| c.get_connection()) {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}:*", self.name))
                .query(&mut redis)
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut redis);
            }
        }
    }
}

/// Fails with one line when the machine's Redis does not answer.
fn redis_required() {
    let answers = redis::Client::open(REDIS)
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
    if let Err(e) = answers {
        panic!("Redis is needed at {REDIS} and does not answer: {e}");
    }
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The next frame of `kind`, skipping others (and failing after the usual wait).
async fn next(client: &mut WsClient, kind: &str) -> Value {
    client.next_of_type(kind).await
}

/// Every frame of `kind` that arrives within `wait`.
async fn all_of(client: &mut WsClient, kind: &str, wait: Duration) -> Vec<Value> {
    let mut frames = Vec::new();
    while let Event::Json(frame) = client.next_event(wait).await {
        if frame["type"] == kind {
            frames.push(frame);
        }
    }
    frames
}

async fn customer(app: &TestApp, sub: &str) -> WsClient {
    app.connect(&app.token(sub, Role::Customer, "acme")).await
}

#[actix_web::test]
async fn presence_status_and_caps_count_every_node_as_one() {
    let cluster = Cluster::start(2, &["--max-connections-per-user", "2"]);
    let (one, two) = (cluster.app(0), cluster.app(1));
    let mut ann = one.agent("ann", "acme").await;
    let mut bob = two.agent("bob", "acme").await;
    let online = next(&mut ann, "presence_changed").await;
    assert_eq!(
        (online["user"]["id"].as_str(), online["online"].as_bool()),
        (Some("bob"), Some(true))
    );
    cluster.wait_for_users(2).await;

    // A second tab on the other node is not news; the per-user cap counts both nodes.
    let bobs_tab = one.agent("bob", "acme").await;
    let bobs_token = one.token("bob", Role::Agent, "acme");
    let mut third = one.connect_raw(&format!("/ws?token={bobs_token}"), &[]).await.unwrap();
    assert_eq!(third.expect_close().await, 4008, "over the cap of 2, counted over nodes");
    let users = ann.ask(json!({"type": "get_online_users"})).await;
    let bob_there = users["users"].as_array().unwrap().iter().find(|u| u["id"] == "bob");
    assert_eq!(bob_there.map(|u| u["connections"].clone()), Some(json!(2)), "{users}");
    let status = two.get("/api/v1/ws/status", None).await.1;
    assert_eq!(
        (status["connected_users"].clone(), status["connections"].clone()),
        (json!(2), json!(3))
    );

    // A status chosen on one node is seen, and offered by, every node.
    bob.ask(json!({"type": "agent_status", "status": "away"})).await;
    let changed = next(&mut ann, "agent_status_changed").await;
    assert_eq!(
        (changed["user_id"].as_str(), changed["status"].as_str()),
        (Some("bob"), Some("away"))
    );

    // Bob's last tab on node 2 closes: still online on node 1; then gone everywhere.
    bob.close().await;
    assert!(all_of(&mut ann, "presence_changed", Duration::from_millis(500)).await.is_empty());
    bobs_tab.close().await;
    let offline = next(&mut ann, "presence_changed").await;
    assert_eq!(
        (offline["user"]["id"].as_str(), offline["online"].as_bool()),
        (Some("bob"), Some(false))
    );
    cluster.wait_for_users(1).await;
}

#[actix_web::test]
async fn rooms_and_publishing_span_nodes_in_order() {
    let cluster = Cluster::start(3, &[]);
    let mut ann = cluster.app(0).agent("ann", "acme").await;
    let mut bob = cluster.app(1).agent("bob", "acme").await;
    let mut cat = cluster.app(2).agent("cat", "acme").await;
    cluster.wait_for_users(3).await;
    for client in [&mut ann, &mut bob, &mut cat] {
        let joined = client.ask(json!({"type": "join_room", "room": "sales"})).await;
        assert_eq!(joined["type"], "room_joined", "{joined}");
    }
    assert_eq!(next(&mut ann, "user_joined").await["user"]["id"], "bob");
    // Bob's second tab, on a third node, joining too is not news to anyone.
    let mut bobs_tab = cluster.app(2).agent("bob", "acme").await;
    bobs_tab.ask(json!({"type": "join_room", "room": "sales"})).await;
    let joins = all_of(&mut ann, "user_joined", Duration::from_millis(500)).await;
    assert_eq!(joins.iter().filter(|j| j["user"]["id"] == "bob").count(), 0, "{joins:?}");
    bobs_tab.close().await;

    for i in 0..100 {
        ann.send_json(json!({"type": "publish", "room": "sales", "data": {"i": i}})).await;
    }
    for client in [&mut bob, &mut cat] {
        for i in 0..100 {
            let message = next(client, "room_message").await;
            assert_eq!(
                (message["data"]["i"].as_i64(), message["from"]["id"].as_str()),
                (Some(i), Some("ann"))
            );
        }
    }
    assert!(
        all_of(&mut ann, "room_message", Duration::from_millis(300)).await.is_empty(),
        "not to the sender"
    );

    // Server-side publishing and /ws/test on one node reach every node.
    let service = cluster.app(2).token("backend", Role::Service, "acme");
    let body = json!({"room": "sales", "data": {"from": "server"}});
    let (status, _) = cluster.app(2).post("/api/v1/publish", &body, Some(&service)).await;
    assert_eq!(status, 200);
    for client in [&mut ann, &mut bob, &mut cat] {
        assert_eq!(next(client, "room_message").await["data"]["from"], "server");
    }
    let admin = cluster.app(0).token("root", Role::Admin, "acme");
    let (status, body) = cluster
        .app(0)
        .post("/api/v1/ws/test", &json!({"target_user_id": "cat", "message": "hi"}), Some(&admin))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(next(&mut cat, "test").await["message"], "hi");
}

#[actix_web::test]
async fn call_status_reaches_every_screen_once_and_never_backwards() {
    let cluster = Cluster::start(2, &[]);
    let mut owner = cluster.app(1).agent("ann", "acme").await;
    let mut other_agent = cluster.app(0).agent("bob", "acme").await;
    let mut owners_tab = cluster.app(0).agent("ann", "acme").await;
    cluster.wait_for_users(2).await;
    let service = cluster.app(0).token("pbx", Role::Service, "acme");
    let registration =
        json!({"provider": "asterisk", "provider_call_id": "pbx-1", "owner_id": "ann"});
    let (_, call) = cluster.app(0).post("/api/v1/calls", &registration, Some(&service)).await;
    let path = format!("/api/v1/calls/{}/status", call["id"].as_str().unwrap());
    // Changes reported to either node, in order, and one late straggler.
    for (node, status) in [(1, "ringing"), (0, "in-progress"), (1, "ringing"), (0, "ended")] {
        let service = cluster.app(node).token("pbx", Role::Service, "acme");
        cluster.app(node).post(&path, &json!({"status": status}), Some(&service)).await;
    }
    for client in [&mut owner, &mut other_agent, &mut owners_tab] {
        let seen: Vec<String> = all_of(client, "call_status_changed", Duration::from_millis(700))
            .await
            .iter()
            .map(|f| f["status"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(seen, ["queued", "ringing", "in-progress", "ended"], "each once, in order");
    }
}

#[actix_web::test]
async fn a_browser_call_across_nodes_one_accept_wins_and_signaling_relays() {
    let cluster = Cluster::start(3, &[]);
    let mut visitor = customer(cluster.app(0), "guest-1").await;
    let mut bob = cluster.app(1).agent("bob", "acme").await;
    let mut cat = cluster.app(2).agent("cat", "acme").await;
    cluster.wait_for_users(3).await;
    let queued = visitor.ask(json!({"type": "call_request", "ref": "q"})).await;
    assert_eq!(queued["type"], "call_queued", "{queued}");
    assert_eq!(queued["agents_available"], 2, "agents of the other nodes count");
    let call_id = queued["call_id"].as_str().unwrap().to_owned();
    for agent in [&mut bob, &mut cat] {
        assert_eq!(next(agent, "incoming_call").await["call_id"], call_id.as_str());
    }

    // Both accept at once from two nodes: the call's node decides, once.
    bob.send_json(json!({"type": "call_accept", "call_id": call_id, "ref": "b"})).await;
    cat.send_json(json!({"type": "call_accept", "call_id": call_id, "ref": "c"})).await;
    // The loser's `call_taken` (from the call's node) and its answer (forwarded back) travel
    // separately, so either may come first: remember it if it does.
    let mut outcomes = Vec::new();
    for agent in [&mut bob, &mut cat] {
        let mut taken_seen = false;
        loop {
            let frame = agent.next_json().await;
            match frame["type"].as_str() {
                Some("call_accepted") | Some("error") => {
                    outcomes.push((
                        frame["type"].clone(),
                        frame["ref"].clone(),
                        frame["code"].clone(),
                        taken_seen,
                    ));
                    break;
                }
                Some("call_taken") => taken_seen = frame["call_id"] == call_id.as_str(),
                _ => continue,
            }
        }
    }
    outcomes.sort_by_key(|o| o.0.to_string());
    assert_eq!(outcomes[0].0, "call_accepted", "{outcomes:?}");
    assert_eq!(
        (outcomes[1].0.as_str(), outcomes[1].2.as_str()),
        (Some("error"), Some("call_already_taken"))
    );
    let winner_ref = outcomes[0].1.as_str().unwrap().to_owned();
    let (winner, loser) =
        if winner_ref == "b" { (&mut bob, &mut cat) } else { (&mut cat, &mut bob) };
    let accepted = next(&mut visitor, "call_accepted").await;
    assert_eq!(accepted["call_id"], call_id.as_str());
    if !outcomes[1].3 {
        assert_eq!(next(loser, "call_taken").await["call_id"], call_id.as_str());
    }

    // Signaling crosses nodes both ways, in order, to the other party only.
    for i in 0..5 {
        winner
            .send_json(json!({"type": "ice_candidate", "call_id": call_id, "candidate": {"i": i}}))
            .await;
    }
    winner
        .send_json(json!({"type": "webrtc_offer", "call_id": call_id, "sdp": {"sdp": "v=0"}}))
        .await;
    for i in 0..5 {
        assert_eq!(next(&mut visitor, "ice_candidate").await["candidate"]["i"], i);
    }
    assert_eq!(next(&mut visitor, "webrtc_offer").await["sdp"]["sdp"], "v=0");
    visitor
        .send_json(json!({"type": "webrtc_answer", "call_id": call_id, "sdp": {"sdp": "ok"}}))
        .await;
    assert_eq!(next(winner, "webrtc_answer").await["sdp"]["sdp"], "ok");
    let stranger = loser.ask(json!({"type": "webrtc_offer", "call_id": call_id, "sdp": {}})).await;
    assert_eq!(stranger["code"], "not_in_call", "{stranger}");

    // The agent hangs up from their node.
    winner.send_json(json!({"type": "call_end", "call_id": call_id})).await;
    let ended = next(&mut visitor, "call_ended").await;
    assert_eq!(ended["reason"], "hangup");
}

#[actix_web::test]
async fn chat_typing_and_read_marks_reach_participants_on_every_node() {
    let cluster = Cluster::start(2, &[]);
    let mut visitor = customer(cluster.app(0), "guest-1").await;
    let mut ann = cluster.app(1).agent("ann", "acme").await;
    cluster.wait_for_users(2).await;
    visitor.send_json(json!({"type": "send_message", "text": "Hello?", "ref": "m1"})).await;
    let sent = next(&mut visitor, "message_sent").await["message"].clone();
    assert_eq!(next(&mut ann, "message").await["message"], sent);
    ann.send_json(json!({"type": "typing", "conversation": "support:guest-1", "active": true}))
        .await;
    assert_eq!(next(&mut visitor, "typing").await["user"]["id"], "ann");
    ann.send_json(json!({"type": "mark_read", "conversation": "support:guest-1", "seq": 1})).await;
    let read = next(&mut visitor, "conversation_read").await;
    assert_eq!(
        (read["seq"].as_i64(), read["user"]["id"].as_str()),
        (Some(1), Some("ann")),
        "{read}"
    );
    let reply = json!({"type": "send_message", "conversation": "support:guest-1", "text": "Hi!"});
    ann.send_json(reply).await;
    let answered = next(&mut visitor, "message").await;
    assert_eq!(
        (answered["message"]["seq"].as_i64(), answered["message"]["text"].as_str()),
        (Some(2), Some("Hi!"))
    );
}

#[actix_web::test]
async fn a_killed_node_is_purged_within_ten_seconds_and_its_calls_end() {
    let mut cluster = Cluster::start(2, &[]);
    let mut ann = cluster.app(0).agent("ann", "acme").await;
    let mut bob = cluster.app(1).agent("bob", "acme").await;
    let mut visitor = customer(cluster.app(1), "guest-1").await;
    cluster.wait_for_users(3).await;
    ann.ask(json!({"type": "join_room", "room": "ops"})).await;
    bob.ask(json!({"type": "join_room", "room": "ops"})).await;
    assert_eq!(next(&mut ann, "user_joined").await["user"]["id"], "bob");
    let queued = visitor.ask(json!({"type": "call_request"})).await;
    let call_id = queued["call_id"].as_str().unwrap().to_owned();
    next(&mut ann, "incoming_call").await;
    ann.send_json(json!({"type": "call_accept", "call_id": call_id})).await;
    next(&mut ann, "call_accepted").await;

    let killed = Instant::now();
    cluster.nodes[1].process.child.kill().unwrap();
    cluster.nodes[1].process.child.wait().unwrap();
    // Bob goes offline and leaves the room, whichever the hub tells first.
    let (mut offline, mut left) = (None, None);
    while offline.is_none() || left.is_none() {
        match ann.next_event(Duration::from_secs(12)).await {
            Event::Json(f) if f["type"] == "presence_changed" && f["user"]["id"] == "bob" => {
                offline = Some((f, killed.elapsed()))
            }
            Event::Json(f) if f["type"] == "user_left" => left = Some(f),
            Event::Json(_) => continue,
            other => panic!("no news of bob ({offline:?}, {left:?}): {other:?}"),
        }
    }
    let (offline, purge) = offline.unwrap();
    println!("purge after kill -9: {purge:?}");
    assert_eq!(offline["online"], false);
    assert!(purge < Duration::from_secs(10), "purged after {purge:?}");
    let left = left.unwrap();
    assert_eq!((left["room"].as_str(), left["user"]["id"].as_str()), (Some("ops"), Some("bob")));
    // The call the dead node held ends for the party that survived, after the grace.
    let ended = loop {
        match ann.next_event(Duration::from_secs(5)).await {
            Event::Json(f) if f["type"] == "call_ended" => break f,
            Event::Json(_) => continue,
            other => panic!("the call did not end: {other:?}"),
        }
    };
    assert_eq!(
        (ended["call_id"].as_str(), ended["reason"].as_str()),
        (Some(call_id.as_str()), Some("connection-lost"))
    );
    let status = cluster.app(0).get("/api/v1/ws/status", None).await.1;
    assert_eq!(status["connected_users"], 1, "{status}");
    cluster.nodes.truncate(1);
}

#[actix_web::test]
async fn a_node_joining_late_sees_who_is_online_already() {
    let mut cluster = Cluster::start(1, &[]);
    let mut ann = cluster.app(0).agent("ann", "acme").await;
    let _guest = customer(cluster.app(0), "guest-1").await;
    cluster.add_node(&[]);
    let mut bob = cluster.app(1).agent("bob", "acme").await;
    let users = bob.ask(json!({"type": "get_online_users"})).await;
    let mut ids: Vec<&str> =
        users["users"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["ann", "bob", "guest-1"], "{users}");
    assert_eq!(next(&mut ann, "presence_changed").await["user"]["id"], "bob");
    let readyz = cluster.app(1).get("/readyz", None).await.1;
    assert_eq!(readyz, json!({"status": "ok", "database": "ok", "redis": "ok"}));
}

/// A TCP proxy to the machine's Redis that can be cut (every connection dropped, new ones
/// closed at once) and restored: Redis going away, for one node only.
struct RedisProxy {
    url: String,
    up: tokio::sync::watch::Sender<bool>,
}

impl RedisProxy {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("redis://{}/0", listener.local_addr().unwrap());
        let (up, watch) = tokio::sync::watch::channel(true);
        actix_web::rt::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !*watch.borrow() {
                    continue;
                }
                let mut watch = watch.clone();
                actix_web::rt::spawn(async move {
                    let Ok(mut redis) = tokio::net::TcpStream::connect("127.0.0.1:6379").await
                    else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut redis) => {}
                        _ = watch.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Self { url, up }
    }

    fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }
}

#[actix_web::test]
async fn without_redis_a_node_serves_its_own_clients_then_republishes_its_presence() {
    let proxy = RedisProxy::start().await;
    let mut cluster = Cluster::start(1, &[]);
    cluster.add_node_on(&proxy.url, &[]);
    let (direct, cut_off) = (cluster.app(0), cluster.app(1));
    let mut bob = direct.agent("bob", "acme").await;
    let mut ann = cut_off.agent("ann", "acme").await;
    cluster.wait_for_users(2).await;
    assert_eq!(next(&mut bob, "presence_changed").await["user"]["id"], "ann");

    proxy.set_up(false);
    wait_until("/readyz naming redis", || async {
        let (status, body) = cut_off.get("/readyz", None).await;
        status == 503 && body == json!({"status": "unavailable", "database": "ok", "redis": "down"})
    })
    .await;
    // The node keeps serving its own clients meanwhile: a new agent there is seen there.
    let _carl = cut_off.agent("carl", "acme").await;
    // (Bob's own arrival may still be on its way to Ann, depending on who connected first.)
    let carl = loop {
        let changed = next(&mut ann, "presence_changed").await;
        if changed["user"]["id"] != "bob" {
            break changed;
        }
    };
    assert_eq!((carl["user"]["id"].as_str(), carl["online"].as_bool()), (Some("carl"), Some(true)));

    // Redis is back: the node reconnects by itself and tells the others who came meanwhile.
    proxy.set_up(true);
    let back = Instant::now();
    let seen = next_within(&mut bob, "presence_changed", Duration::from_secs(10)).await;
    println!("presence republished {:?} after Redis came back", back.elapsed());
    assert_eq!((seen["user"]["id"].as_str(), seen["online"].as_bool()), (Some("carl"), Some(true)));
    let (status, _) = cut_off.get("/readyz", None).await;
    assert_eq!(status, 200);
    // And the bus carries again.
    bob.ask(json!({"type": "join_room", "room": "ops"})).await;
    ann.ask(json!({"type": "join_room", "room": "ops"})).await;
    ann.send_json(json!({"type": "publish", "room": "ops", "data": "back"})).await;
    assert_eq!(next(&mut bob, "room_message").await["data"], "back");
}

/// The next frame of `kind` within `wait` (longer than the usual frame wait).
async fn next_within(client: &mut WsClient, kind: &str, wait: Duration) -> Value {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match client.next_event(left).await {
            Event::Json(frame) if frame["type"] == kind => return frame,
            Event::Json(_) => continue,
            other => panic!("no {kind} within {wait:?}: {other:?}"),
        }
    }
}
