//! Frames about the connection itself: `ping`, a later `auth` (token refresh) and
//! `get_connection_info`.

use actix::prelude::*;
use chrono::Utc;

use std::sync::Arc;

use super::Asked;
use crate::auth::{Identity, TokenRejected};
use crate::error::ErrorCode;
use crate::hubs::rooms::RoomsByConnection;
use crate::protocol::{CloseCode, ConnectionSummary, ServerMessage};
use crate::time::{timestamp, timestamp_from_unix};
use crate::ws::session::{Ctx, WsSession};

impl WsSession {
    /// `ping` → `pong` with the server's clock.
    pub(super) fn pong(ctx: &mut Ctx, asked: &Asked) {
        asked.answer(ctx, &ServerMessage::Pong { ts: Utc::now().timestamp_millis() });
    }

    /// A later `auth` frame: a fresh token for the same user and company extends the
    /// connection; another user's token is refused; an invalid token closes it (4001).
    pub(super) fn refresh_token(&mut self, ctx: &mut Ctx, asked: Asked, token: String) {
        let tokens = Arc::clone(&self.config.tokens);
        async move { tokens.verify_fresh(&token).await }
            .into_actor(self)
            .map(move |verified, act, ctx| act.refreshed(ctx, asked, verified))
            .wait(ctx);
    }

    fn refreshed(
        &mut self,
        ctx: &mut Ctx,
        asked: Asked,
        verified: Result<Identity, TokenRejected>,
    ) {
        let fresh = match verified {
            Ok(fresh) => fresh,
            Err(e) => {
                log::debug!("ws refresh: {e}");
                return self.close(ctx, CloseCode::Unauthorized, "invalid token");
            }
        };
        let Some(current) = self.identity.as_mut() else {
            return;
        };
        if fresh.user.id != current.user.id || fresh.company != current.company {
            return asked.error(ctx, ErrorCode::UserMismatch, "the token is for another user");
        }
        current.expires_at = fresh.expires_at;
        let expires_at = timestamp_from_unix(fresh.expires_at);
        asked.answer(ctx, &ServerMessage::AuthRefreshed { expires_at });
    }

    /// `get_connection_info`: this connection, its user and its rooms (asked of the RoomHub).
    pub(super) fn send_connection_info(&mut self, ctx: &mut Ctx, asked: Asked) {
        let query =
            RoomsByConnection { company: asked.identity.company.clone(), conn: Some(self.id) };
        self.config
            .hubs
            .rooms
            .send(query)
            .into_actor(self)
            .map(move |result, act, ctx| {
                let rooms = result.ok().and_then(|mut m| m.remove(&act.id)).unwrap_or_default();
                let summary = ConnectionSummary {
                    session_id: act.id,
                    user: asked.identity.user.clone(),
                    rooms,
                    connected_at: timestamp(act.connected_at),
                };
                asked.answer(ctx, &ServerMessage::ConnectionInfo(&summary));
            })
            .spawn(ctx);
    }
}
