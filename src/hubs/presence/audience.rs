//! Who on this node an [`Audience`] names: the one place that turns "the company's agents",
//! "a conversation's participants" and the rest into connections. The same audience, sent on
//! the bus, picks the recipients on every other node the same way.

use std::collections::HashSet;

use super::Directory;
use crate::chat::ConversationId;
use crate::cluster::Audience;
use crate::hubs::connection::{ConnectionHandle, SlowConsumer, fan_out};
use crate::ids::{ConnId, UserId};
use crate::protocol::Frame;

/// Delivers `frame` to `audience`'s connections in one company's directory; `available` is the
/// company's agents shown `available`. Answers how many connections it reached.
pub(super) fn deliver(
    directory: &Directory,
    available: Option<&HashSet<UserId>>,
    audience: &Audience,
    frame: &Frame,
    slow: &mut Vec<SlowConsumer>,
) -> usize {
    let staff = || directory.staff.values().map(|(u, h)| (u, h));
    match audience {
        Audience::User { user_id, except_conn } => {
            fan_out(user_connections(directory, user_id, *except_conn, None), frame, slow)
        }
        Audience::Connection { user_id, conn } => {
            let one =
                user_connections(directory, user_id, None, None).filter(|(_, h)| h.id == *conn);
            fan_out(one, frame, slow)
        }
        Audience::Staff { except_user } => {
            fan_out(staff().filter(|(u, _)| except_user.as_ref() != Some(*u)), frame, slow)
        }
        Audience::StaffAndUser { user_id } => {
            let mut delivered = fan_out(staff(), frame, slow);
            if let Some(user_id) = user_id {
                let not_staff = user_connections(directory, user_id, None, None)
                    .filter(|(_, h)| !directory.staff.contains_key(&h.id));
                delivered += fan_out(not_staff, frame, slow);
            }
            delivered
        }
        Audience::AvailableAgents { except } => {
            let offered =
                |u: &UserId| available.is_some_and(|a| a.contains(u)) && !except.contains(u);
            fan_out(staff().filter(|(u, _)| offered(u)), frame, slow)
        }
        Audience::Participants { conversation, except_conn, except_user } => {
            let targets = participants(directory, conversation, *except_conn, except_user.as_ref());
            fan_out(targets, frame, slow)
        }
        // A room's members are the RoomHub's.
        Audience::Room { .. } => 0,
    }
}

/// One user's connections here but `except_conn`; with `as_staff`, only if the user's role
/// is (or is not) staff.
fn user_connections<'a>(
    directory: &'a Directory,
    user_id: &UserId,
    except_conn: Option<ConnId>,
    as_staff: Option<bool>,
) -> impl Iterator<Item = (&'a UserId, &'a ConnectionHandle)> {
    let entry = directory
        .users
        .get(user_id)
        .filter(|e| as_staff.is_none_or(|staff| e.user.role.is_staff() == staff));
    entry.into_iter().flat_map(move |e| {
        let others = e.connections.iter().filter(move |c| Some(c.handle.id) != except_conn);
        others.map(move |c| (&e.user.id, &c.handle))
    })
}

/// A conversation's participants: a support conversation's customer and the company's agents;
/// a direct conversation's two staff users (only as staff: a customer never receives a direct
/// conversation, whatever id it was sent under).
fn participants<'a>(
    directory: &'a Directory,
    conversation: &ConversationId,
    except_conn: Option<ConnId>,
    except_user: Option<&UserId>,
) -> Vec<(&'a UserId, &'a ConnectionHandle)> {
    let wanted = |(user, handle): &(&UserId, &ConnectionHandle)| {
        except_conn != Some(handle.id) && except_user != Some(*user)
    };
    let mut targets: Vec<(&UserId, &ConnectionHandle)> = Vec::new();
    match conversation {
        ConversationId::Support { customer } => {
            targets.extend(user_connections(directory, customer, None, Some(false)).filter(wanted));
            targets.extend(directory.staff.values().map(|(u, h)| (u, h)).filter(wanted));
        }
        ConversationId::Direct { a, b } => {
            for user in [a, b] {
                targets.extend(user_connections(directory, user, None, Some(true)).filter(wanted));
            }
        }
    }
    targets
}
