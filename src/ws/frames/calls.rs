//! Browser-call frames: `call_request` (customers), `call_accept` and `call_decline` (staff),
//! `call_end` and the WebRTC signaling frames (the parties). The CallHub decides everything
//! else.

use super::Asked;
use crate::hubs::calls::{AcceptCall, DeclineCall, EndCall, RelaySignal, RequestCall, Signal};
use crate::ids::CallId;
use crate::net::ip_key;
use crate::user::{Role, clean_text};
use crate::ws::session::{Ctx, WsSession};

/// Longest `note` of a `call_request`, and `reason` of a `call_end`, kept.
const MAX_NOTE_CHARS: usize = 500;
const MAX_REASON_CHARS: usize = 64;

impl WsSession {
    pub(super) fn request_call(&mut self, ctx: &mut Ctx, asked: Asked, note: Option<String>) {
        let customer = asked.identity.role() == Role::Customer;
        if !asked.permit(ctx, customer, "only customers request calls") {
            return;
        }
        let note = note.map(|n| clean_text(&n, MAX_NOTE_CHARS)).filter(|n| !n.is_empty());
        let Some(reply_to) = self.reply_to(ctx, asked.reference) else { return };
        let (company, customer) = (asked.identity.company, asked.identity.user);
        let client_ip = self.transport.client_ip.map(ip_key);
        let request = RequestCall { company, customer, note, client_ip, reply_to };
        self.config.hubs.calls.do_send(request);
    }

    pub(super) fn accept_call(&mut self, ctx: &mut Ctx, asked: Asked, call_id: CallId) {
        if !asked.permit(ctx, asked.identity.role().is_staff(), "only agents accept calls") {
            return;
        }
        let Some(reply_to) = self.reply_to(ctx, asked.reference) else { return };
        let (company, agent) = (asked.identity.company, asked.identity.user);
        self.config.hubs.calls.do_send(AcceptCall { company, agent, call_id, reply_to });
    }

    pub(super) fn decline_call(&mut self, ctx: &mut Ctx, asked: Asked, call_id: CallId) {
        if !asked.permit(ctx, asked.identity.role().is_staff(), "only agents decline calls") {
            return;
        }
        let Some(reply_to) = self.reply_to(ctx, asked.reference) else { return };
        let (company, agent) = (asked.identity.company, asked.identity.user);
        self.config.hubs.calls.do_send(DeclineCall { company, agent, call_id, reply_to });
    }

    pub(super) fn end_call(
        &mut self,
        ctx: &mut Ctx,
        asked: Asked,
        call_id: CallId,
        reason: Option<String>,
    ) {
        let reason = reason.map(|r| clean_text(&r, MAX_REASON_CHARS)).filter(|r| !r.is_empty());
        let Some(reply_to) = self.reply_to(ctx, asked.reference) else { return };
        let (company, user) = (asked.identity.company, asked.identity.user);
        self.config.hubs.calls.do_send(EndCall { company, user, call_id, reason, reply_to });
    }

    pub(super) fn relay(&mut self, ctx: &mut Ctx, asked: Asked, call_id: CallId, signal: Signal) {
        let Some(reply_to) = self.reply_to(ctx, asked.reference) else { return };
        let (company, from) = (asked.identity.company, asked.identity.user);
        self.config.hubs.calls.do_send(RelaySignal { company, from, call_id, signal, reply_to });
    }
}
