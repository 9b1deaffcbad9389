//! The floor: actix-web + actix-web-actors with a session that greets and does nothing else —
//! no token, no guards, no directory. What it costs per new connection is what our stack costs
//! before any of Switchboard's own work (README "Performance"). `PORT` (default 9800).
use actix::prelude::*;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use actix_web_actors::ws;

struct S;
impl Actor for S {
    type Context = ws::WebsocketContext<S>;
    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.text(r#"{"type":"connected","session_id":"0123456789abcdef0123456789abcdef","message":"Successfully connected to WebSocket server"}"#);
    }
}
impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for S {
    fn handle(&mut self, _: Result<ws::Message, ws::ProtocolError>, _: &mut Self::Context) {}
}
async fn connect(req: HttpRequest, stream: web::Payload) -> Result<HttpResponse, actix_web::Error> {
    ws::start(S, &req, stream)
}
#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port = std::env::var("PORT").unwrap_or("9800".into());
    HttpServer::new(|| App::new().route("/ws", web::get().to(connect)))
        .bind(format!("127.0.0.1:{port}"))?
        .run()
        .await
}
