//! Chat frames (`docs/protocol.md` §8): `send_message`, `typing`, `mark_read`. The conversation
//! a frame names (or `to`) is resolved and checked here — anything the caller may not see is
//! `not_found`, never `forbidden` — and the ChatHub stores, answers and delivers.

use actix::prelude::*;
use serde_json::Value;

use super::Asked;
use crate::chat::{ConversationId, Draft};
use crate::error::ErrorCode;
use crate::hubs::chat::{MarkRead, Origin, SendMessage, Typing, role_of};
use crate::ids::UserId;
use crate::user::Role;
use crate::ws::session::{Ctx, WsSession};

const NOT_FOUND: &str = "no such conversation";

/// What a `send_message` names.
pub(super) struct Addressee {
    pub conversation: Option<String>,
    pub to: Option<String>,
}

impl WsSession {
    pub(super) fn send_message(
        &mut self,
        ctx: &mut Ctx,
        asked: Asked,
        addressee: Addressee,
        text: &str,
        meta: Option<Value>,
        client_id: Option<String>,
    ) {
        let draft = match Draft::new(text, meta, client_id) {
            Ok(draft) => draft,
            Err(invalid) => return asked.error(ctx, ErrorCode::InvalidMessage, invalid.0),
        };
        let me = &asked.identity.user;
        match (me.role, addressee.conversation, addressee.to) {
            // A customer has one conversation, named or not.
            (Role::Customer, None, None) => {
                let conversation = ConversationId::Support { customer: me.id.clone() };
                self.send_to(ctx, asked, conversation, draft)
            }
            (_, Some(named), None) => {
                match ConversationId::parse(&named).filter(|c| c.admits(me)) {
                    Some(conversation) => self.send_to(ctx, asked, conversation, draft),
                    None => asked.error(ctx, ErrorCode::NotFound, NOT_FOUND),
                }
            }
            (Role::Agent | Role::Admin | Role::Service, None, Some(to)) => {
                self.send_to_user(ctx, asked, &to, draft)
            }
            (Role::Customer, _, _) => asked.error(ctx, ErrorCode::NotFound, NOT_FOUND),
            (_, None, None) | (_, Some(_), Some(_)) => {
                let text = "name either a conversation or a user (to)";
                asked.error(ctx, ErrorCode::InvalidMessage, text)
            }
        }
    }

    /// `to` a customer is their support conversation, `to` a staff user the direct one.
    fn send_to_user(&mut self, ctx: &mut Ctx, asked: Asked, to: &str, draft: Draft) {
        let Some(to) = UserId::parse(to) else {
            return asked.error(ctx, ErrorCode::NotFound, NOT_FOUND);
        };
        let (pool, presence) = (self.config.pool.clone(), self.config.hubs.presence.clone());
        let company = asked.identity.company.clone();
        async move { (role_of(&pool, &presence, &company, &to).await, to) }
            .into_actor(self)
            .map(move |(role, to), act, ctx| {
                let me = &asked.identity.user;
                let conversation = match role {
                    Ok(Some(Role::Customer)) => Some(ConversationId::Support { customer: to }),
                    Ok(Some(Role::Agent | Role::Admin)) if me.role.is_staff() => {
                        ConversationId::direct(&me.id, &to)
                    }
                    Err(e) => {
                        log::error!("resolving a chat recipient: {e}");
                        let text = "storage is unavailable, try again";
                        return asked.error(ctx, ErrorCode::StorageUnavailable, text);
                    }
                    Ok(_) => None,
                };
                match conversation {
                    Some(conversation) => act.send_to(ctx, asked, conversation, draft),
                    None => asked.error(ctx, ErrorCode::NotFound, NOT_FOUND),
                }
            })
            .spawn(ctx);
    }

    fn send_to(&mut self, ctx: &mut Ctx, asked: Asked, conversation: ConversationId, draft: Draft) {
        let Some(reply_to) = self.reply_to(ctx, asked.reference) else { return };
        let (company, from) = (asked.identity.company, asked.identity.user);
        let origin = Origin::Socket(reply_to);
        let send = SendMessage { company, conversation, from, draft, origin };
        self.config.hubs.chat.do_send(send);
    }

    pub(super) fn typing(&mut self, ctx: &mut Ctx, asked: Asked, conversation: &str, active: bool) {
        let Some(conversation) = self.conversation_of(ctx, &asked, conversation) else { return };
        let (company, user) = (asked.identity.company, asked.identity.user);
        let typing = Typing { company, conversation, user, conn: self.id, active };
        self.config.hubs.chat.do_send(typing);
    }

    pub(super) fn mark_read(&mut self, ctx: &mut Ctx, asked: Asked, conversation: &str, seq: i64) {
        let Some(conversation) = self.conversation_of(ctx, &asked, conversation) else { return };
        let Some(reply_to) = self.reply_to(ctx, asked.reference.clone()) else { return };
        let (company, reader) = (asked.identity.company, asked.identity.user);
        let origin = Origin::Socket(reply_to);
        self.config.hubs.chat.do_send(MarkRead { company, conversation, reader, seq, origin });
    }

    /// A conversation the caller may see, or `not_found`.
    fn conversation_of(&self, ctx: &mut Ctx, asked: &Asked, named: &str) -> Option<ConversationId> {
        let found = ConversationId::parse(named).filter(|c| c.admits(&asked.identity.user));
        if found.is_none() {
            asked.error(ctx, ErrorCode::NotFound, NOT_FOUND);
        }
        found
    }
}
