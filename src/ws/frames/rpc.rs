//! `rpc`: a call to the app's backend through the RPC proxy (`docs/protocol.md` §11), made
//! with this connection's verified identity. The answer is awaited beside the connection's other
//! frames (spawned, never waited on), so a slow backend does not hold up a `ping` or a room
//! message; at most [`MAX_IN_FLIGHT`] per connection wait at once.

use actix::prelude::*;
use serde_json::Value;

use super::Asked;
use crate::error::ErrorCode;
use crate::protocol::{RpcMethod, ServerMessage};
use crate::rpc_proxy::{Caller, MAX_DATA_BYTES, MAX_IN_FLIGHT, RpcFailure, json_len};
use crate::ws::session::{Ctx, WsSession};

impl WsSession {
    /// Answers `rpc_result` or `rpc_error` (`ref` echoed) once the backend has answered.
    pub(super) fn rpc(&mut self, ctx: &mut Ctx, asked: Asked, method: RpcMethod, data: Value) {
        if json_len(&data) > MAX_DATA_BYTES {
            return asked.error(ctx, ErrorCode::InvalidMessage, "rpc data is at most 64 KiB");
        }
        let Some(proxy) = self.config.rpc.clone() else {
            return answer(ctx, &asked, &method, Err(RpcFailure::not_configured()));
        };
        if self.rpc_in_flight >= MAX_IN_FLIGHT {
            return answer(ctx, &asked, &method, Err(RpcFailure::rate_limited()));
        }
        let identity = &asked.identity;
        let caller =
            Caller { user: &identity.user, company: &identity.company, session_id: self.id };
        let request = proxy.request(&method, &data, &caller);
        self.rpc_in_flight += 1;
        async move { proxy.send(request).await }
            .into_actor(self)
            .map(move |result, session, ctx| {
                session.rpc_in_flight -= 1;
                answer(ctx, &asked, &method, result);
            })
            .spawn(ctx);
    }
}

fn answer(ctx: &mut Ctx, asked: &Asked, method: &RpcMethod, result: Result<Value, RpcFailure>) {
    let method = method.as_str();
    asked.answer(
        ctx,
        &match &result {
            Ok(result) => ServerMessage::RpcResult { method, result },
            Err(failure) => {
                ServerMessage::RpcError { method, code: &failure.code, message: &failure.message }
            }
        },
    );
}
