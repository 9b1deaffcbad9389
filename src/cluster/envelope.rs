//! What one node tells the others: an [`Envelope`] is a one-line JSON header (who sent it and
//! what it is) followed, after a newline, by the frame's bytes exactly as the sending node
//! encoded them. The frame is encoded once, on the node where it happened; every other node
//! hands the same bytes to its connections. serde_json escapes newlines inside strings, so the
//! first `\n` always ends the header.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::chat::ConversationId;
use crate::ids::{CallId, CompanyId, ConnId, RoomName, UserId};
use crate::protocol::{AgentStatus, Frame};
use crate::user::UserRef;

/// Who, inside one company, a frame is for. The same value picks the recipients on every node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum Audience {
    /// Every connection of one user (but `except_conn`, the one that asked).
    User { user_id: UserId, except_conn: Option<ConnId> },
    /// One connection: the answer to a request made on another node.
    Connection { user_id: UserId, conn: ConnId },
    /// The company's agents and admins (but `except_user`).
    Staff { except_user: Option<UserId> },
    /// The company's agents and one more user, each connection once.
    StaffAndUser { user_id: Option<UserId> },
    /// The agents shown `available` (but those who declined).
    AvailableAgents { except: Vec<UserId> },
    /// A conversation's participants.
    Participants {
        conversation: ConversationId,
        except_conn: Option<ConnId>,
        except_user: Option<UserId>,
    },
    /// A room's members (but `except_conn`, the sender).
    Room { room: RoomName, except_conn: Option<ConnId> },
}

/// What an envelope carries besides a frame.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    /// The frame that follows, for `audience` in `company`.
    Deliver { company: CompanyId, audience: Audience },
    /// A user's presence on the sending node: how many connections they have there (0: none
    /// left) and the status they chose. Absolute, so applying one twice changes nothing.
    Presence { company: CompanyId, user: UserRef, chosen: Option<AgentStatus>, conns: usize },
    /// `user`'s first connection joined a room on the sending node, or their last one left.
    RoomMember { company: CompanyId, room: RoomName, user: UserRef, joined: bool },
    /// An agent became, or stopped being, a party of a browser call (shown `busy`).
    InCall { company: CompanyId, user_id: UserId, in_call: bool },
    /// A node's lease lapsed; the node that claimed it tells the others.
    NodeGone { node: String },
    /// A stored change of a call (the frame: `call_status_changed`) for the owner and the
    /// agents; each node drops it if it already showed a later one (`rank`).
    CallChanged { company: CompanyId, call_id: CallId, rank: i32, owner_id: Option<UserId> },
    /// A browser call lives on the sending node: where commands for it go.
    CallOpened { company: CompanyId, call_id: CallId, customer: UserId },
    /// An agent took it (or `None`: it ended).
    CallParty { call_id: CallId, agent: Option<UserId> },
    /// A request about a browser call living on another node, made on the sending node by
    /// `user` on connection `conn` (where the answer goes, with `reference`).
    CallCommand {
        company: CompanyId,
        call_id: CallId,
        user: UserRef,
        conn: ConnId,
        reference: Option<Value>,
        command: CallCommand,
    },
}

/// What a party asks of a browser call that lives on another node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum CallCommand {
    Accept,
    Decline,
    End { reason: Option<String> },
    Offer { sdp: Value },
    Answer { sdp: Value },
    Candidate { candidate: Value },
}

/// One message on the cluster channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    /// The sending node; a node skips what it sent itself.
    pub from: String,
    #[serde(flatten)]
    pub body: Body,
}

/// An envelope as bytes: the header, a newline, the frame (if any).
pub fn encode(header: &Header, frame: Option<&Frame>) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(header).unwrap_or_default();
    bytes.push(b'\n');
    if let Some(frame) = frame {
        bytes.extend_from_slice(frame.as_bytes());
    }
    bytes
}

/// Reads an envelope back; `None` for anything this version cannot read (logged by the caller).
pub fn decode(bytes: &[u8]) -> Option<(Header, Option<Frame>)> {
    let newline = bytes.iter().position(|&b| b == b'\n')?;
    let header: Header = serde_json::from_slice(&bytes[..newline]).ok()?;
    let rest = &bytes[newline + 1..];
    let frame = if rest.is_empty() { None } else { Some(Frame::try_from(rest.to_vec()).ok()?) };
    Some((header, frame))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_crosses_unchanged_after_its_header() {
        let header = Header {
            from: "node-a".to_owned(),
            body: Body::Deliver {
                company: CompanyId::parse("acme").unwrap(),
                audience: Audience::Room {
                    room: RoomName::parse("sales").unwrap(),
                    except_conn: Some(ConnId::random()),
                },
            },
        };
        let frame = Frame::from("{\"type\":\"room_message\",\"data\":\"two\\nlines\"}");
        let bytes = encode(&header, Some(&frame));
        let (back, back_frame) = decode(&bytes).unwrap();
        assert_eq!(back.from, "node-a");
        assert_eq!(back_frame.as_ref(), Some(&frame));
        let Body::Deliver { audience, .. } = back.body else { panic!("kind") };
        let Header { body: Body::Deliver { audience: sent, .. }, .. } = header else { panic!() };
        assert_eq!(audience, sent);
    }

    #[test]
    fn what_is_not_an_envelope_is_refused() {
        assert!(decode(b"no newline").is_none());
        assert!(decode(b"{\"from\":\"x\",\"kind\":\"teleport\"}\n").is_none());
        let bad_id = b"{\"from\":\"x\",\"kind\":\"node_gone\"}\n";
        assert!(decode(bad_id).is_none(), "a field is missing");
        let user = "{\"from\":\"x\",\"kind\":\"in_call\",\"company\":\"\",\"user_id\":\"u\",\"in_call\":true}\n";
        assert!(decode(user.as_bytes()).is_none(), "an empty company is not an id");
    }
}
