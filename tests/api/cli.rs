//! The binary itself: bad settings, `migrate`, `user add` and `token`.

use std::process::{Command, Output, Stdio};

use serde_json::json;

use crate::helpers::spawn_app_on_database;
use crate::process::ServerProcess;

fn switchboard(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command.args(args).stdin(Stdio::null()).env("RUST_LOG", "warn");
    for (key, value) in envs {
        command.env(key, value);
    }
    command.output().expect("run switchboard")
}

fn assert_one_clear_line(output: &Output, setting: &str) {
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(setting), "names {setting}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_settings_end_with_one_line_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/hub.db", dir.path().display());
    assert_one_clear_line(&switchboard(&["--bind", "nope", "migrate"], &[]), "--bind");
    assert_one_clear_line(
        &switchboard(&["migrate"], &[("SWITCHBOARD_SESSION_QUEUE", "0"), ("DATABASE_URL", &db)]),
        "--session-queue",
    );
    assert_one_clear_line(
        &switchboard(&["migrate", "--database-url", "postgres://x"], &[]),
        "--database-url",
    );
    assert_one_clear_line(
        &switchboard(&["migrate", "--database-url", "sqlite:///no/such/dir/hub.db"], &[]),
        "--database-url",
    );
    // A SQLite file cannot be shared by the nodes of a cluster.
    let cluster_on_sqlite = switchboard(
        &["serve", "--database-url", &db, "--redis-url", "redis://127.0.0.1:6379/0"],
        &[],
    );
    assert_one_clear_line(&cluster_on_sqlite, "--redis-url");
    assert!(String::from_utf8_lossy(&cluster_on_sqlite.stderr).contains("postgres://"));
    assert_one_clear_line(
        &switchboard(&["serve", "--database-url", &db, "--cluster-name", "a b"], &[]),
        "--cluster-name",
    );
    assert_one_clear_line(
        &switchboard(
            &[
                "serve",
                "--database-url",
                &db,
                "--heartbeat-interval-ms",
                "500",
                "--client-timeout-ms",
                "400",
            ],
            &[],
        ),
        "--heartbeat-interval-ms",
    );
    assert_one_clear_line(
        &switchboard(&["serve", "--database-url", &db, "--jwt-public-key", "/no/key.pem"], &[]),
        "--jwt-issuer",
    );
    assert_one_clear_line(
        &switchboard(&["migrate", "--ice-servers", "[1,2]"], &[]),
        "--ice-servers",
    );
    // Parsed into a company id once, at start: a bad one never reaches a webhook.
    assert_one_clear_line(
        &switchboard(&["migrate"], &[("SWITCHBOARD_DEFAULT_COMPANY", "a\u{7}b")]),
        "--default-company",
    );
}

#[actix_web::test]
async fn user_add_and_token_work_against_the_servers_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/hub.db", dir.path().display());

    let migrated = switchboard(&["migrate", "--database-url", &db], &[]);
    assert!(migrated.status.success(), "{migrated:?}");

    let add_ann = || {
        let args = ["user", "add", "--email", "ann@acme.test", "--name", "Ann"];
        let more = ["--role", "agent", "--company", "acme", "--database-url", &db];
        let all: Vec<&str> = args.iter().chain(more.iter()).copied().collect();
        switchboard(&all, &[("SWITCHBOARD_PASSWORD", "correct horse")])
    };
    let added = add_ann();
    assert!(added.status.success(), "{added:?}");
    let user_id = String::from_utf8(added.stdout).unwrap().trim().to_owned();
    assert_eq!(user_id.len(), 32);

    let duplicate = add_ann();
    assert_one_clear_line(&duplicate, "--email");

    let minted = switchboard(
        &["token", "--sub", "crm", "--role", "service", "--company", "acme", "--database-url", &db],
        &[],
    );
    assert!(minted.status.success(), "{minted:?}");
    let stdout = String::from_utf8(minted.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "only the token: {stdout}");
    let token = stdout.trim().to_owned();

    // A server on the same database (no --jwt-secret: the stored one) accepts both.
    let app = spawn_app_on_database(&db, &[]).await;
    let (status, me) = app.get("/api/v1/me", Some(&token)).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!((me["sub"].as_str(), me["role"].as_str()), (Some("crm"), Some("service")));
    let (status, login) = app
        .post(
            "/api/v1/auth/login",
            &json!({"email": "ann@acme.test", "password": "correct horse"}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{login}");
    assert_eq!(login["user"]["id"], user_id.as_str());
    assert_eq!(login["user"]["name"], "Ann");
}

#[actix_web::test]
async fn sigterm_closes_websockets_with_1001_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/hub.db", dir.path().display());
    let mut server = ServerProcess::start(&db, &[]);
    let token = crate::helpers::test_token("agent-1", switchboard::auth::Role::Agent, "acme");
    let http = awc::Client::default();
    let url = format!("ws://{}/ws?token={token}", server.address);
    let mut ws = crate::helpers::connect_ws(&http, &url, &[]).await.unwrap();
    assert_eq!(ws.next_json().await["type"], "connected");

    // `kill` as the shell's builtin, so no procps is needed.
    let pid = server.child.id();
    let killed = Command::new("sh").args(["-c", &format!("kill -TERM {pid}")]).status().unwrap();
    assert!(killed.success());

    assert_eq!(ws.expect_close().await, 1001);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "still running 10 s after SIGTERM");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}
