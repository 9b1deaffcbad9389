use diesel::connection::SimpleConnection;
use serde_json::json;

use crate::helpers::spawn_app;

#[actix_web::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let (status, body) = app.get("/healthz", None).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"status": "ok"}));
}

#[actix_web::test]
async fn readyz_follows_the_database() {
    let app = spawn_app().await;
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(
        (status.as_u16(), body),
        (200, json!({"status": "ok", "database": "ok", "redis": "off"}))
    );

    // Arrange: break the schema underneath the running server through a second connection.
    let pool = switchboard::db::connect(
        &app.db_url.parse().unwrap(),
        switchboard::config::Synchronous::Full,
    )
    .unwrap();
    pool.get().unwrap().batch_execute("DROP TABLE users;").unwrap();

    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(
        (status.as_u16(), body),
        (503, json!({"status": "unavailable", "database": "down", "redis": "off"})),
        "names what is down, and no SQL"
    );
}

#[actix_web::test]
async fn unknown_paths_get_a_json_404() {
    let app = spawn_app().await;
    let (status, body) = app.get("/nope", None).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "not_found");
}
