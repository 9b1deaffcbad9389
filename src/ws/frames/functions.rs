//! `function_call`: a calendar function (`docs/protocol.md` §7) run by the CalendarTool for the
//! caller; customers have no calendar.

use actix::prelude::*;
use serde_json::Value;

use super::Asked;
use crate::calendar::tool::RunFunction;
use crate::protocol::ServerMessage;
use crate::user::Role;
use crate::ws::session::{Ctx, WsSession};

impl WsSession {
    /// Answers `function_result` or `function_error`, and shows `tool_call_executed` on all of
    /// the user's connections.
    pub(super) fn run_function(
        &mut self,
        ctx: &mut Ctx,
        asked: Asked,
        call_id: String,
        name: String,
        arguments: Value,
    ) {
        let allowed = asked.identity.role() != Role::Customer;
        if !asked.permit(ctx, allowed, "customers have no calendar") {
            return;
        }
        let run = RunFunction {
            company: asked.identity.company.clone(),
            user_id: asked.identity.user.id.clone(),
            name: name.clone(),
            arguments,
            tool_call_id: call_id.clone(),
        };
        let hubs = self.config.hubs.clone();
        async move { hubs.run_function(run, None).await }
            .into_actor(self)
            .map(move |result, _, ctx| {
                let (call_id, name) = (call_id.as_str(), name.as_str());
                asked.answer(
                    ctx,
                    &match &result {
                        Ok(output) => ServerMessage::FunctionResult { call_id, name, output },
                        Err(e) => ServerMessage::FunctionError {
                            call_id,
                            name,
                            code: e.code,
                            message: &e.message,
                        },
                    },
                );
            })
            .spawn(ctx);
    }
}
