//! The WebSocket wire (`docs/protocol.md` §4): client frames in, server frames out. Nothing here
//! knows actors or sockets. Server frames are encoded once into a [`Frame`] (a cheaply cloned,
//! immutable string) so a fan-out hands the same bytes to every recipient.

use bytestring::ByteString;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::chat::ConversationId;
use crate::error::{ErrorCode, FunctionErrorCode};
use crate::ids::{CallId, CompanyId, ConnId, RoomName, UserId};
use crate::user::UserRef;

/// One encoded server frame (JSON text). Cloning shares the bytes.
pub type Frame = ByteString;

/// WebSocket close codes of `docs/protocol.md` §4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum CloseCode {
    Normal = 1000,
    GoingAway = 1001,
    ProtocolError = 1002,
    TooBig = 1009,
    InternalError = 1011,
    Unauthorized = 4001,
    Forbidden = 4003,
    RateLimited = 4008,
    SlowConsumer = 4009,
}

impl CloseCode {
    pub fn as_u16(self) -> u16 {
        self as u16
    }
}

/// The `connected` frame's user: a [`UserRef`] plus the company.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserWithCompany<'a> {
    #[serde(flatten)]
    pub user: &'a UserRef,
    pub company: &'a CompanyId,
}

/// An agent's availability: the one they chose (stored; `available` until they first choose),
/// shown as `busy` while they are a party of a browser call in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentStatus {
    Available,
    Busy,
    Away,
    Offline,
}

impl AgentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Busy => "busy",
            Self::Away => "away",
            Self::Offline => "offline",
        }
    }

    /// The status stored under this name; `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Available, Self::Busy, Self::Away, Self::Offline]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// A frame a client may send. Unknown `type`s become [`ClientMessage::Unknown`].
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    Auth {
        token: String,
    },
    Ping,
    JoinRoom {
        room: String,
    },
    LeaveRoom {
        room: String,
    },
    GetRoomMembers {
        room: String,
        cursor: Option<String>,
    },
    Publish {
        room: String,
        data: Value,
    },
    GetOnlineUsers,
    GetConnectionInfo,
    AgentStatus {
        status: AgentStatus,
    },
    CallRequest {
        note: Option<String>,
    },
    CallAccept {
        call_id: CallId,
    },
    CallDecline {
        call_id: CallId,
    },
    CallEnd {
        call_id: CallId,
        reason: Option<String>,
    },
    WebrtcOffer {
        call_id: CallId,
        sdp: Value,
    },
    WebrtcAnswer {
        call_id: CallId,
        sdp: Value,
    },
    IceCandidate {
        call_id: CallId,
        candidate: Value,
    },
    FunctionCall {
        call_id: String,
        name: String,
        #[serde(default)]
        arguments: Value,
    },
    SendMessage {
        conversation: Option<String>,
        to: Option<String>,
        text: String,
        meta: Option<Value>,
        client_id: Option<String>,
    },
    Typing {
        conversation: String,
        active: bool,
    },
    MarkRead {
        conversation: String,
        seq: i64,
    },
    Rpc {
        method: RpcMethod,
        #[serde(default)]
        data: Value,
    },
    #[serde(other)]
    Unknown,
}

/// Every client frame `type`, sorted: the label values of the frames-in metric.
pub const CLIENT_FRAME_TYPES: &[&str] = &[
    "agent_status",
    "auth",
    "call_accept",
    "call_decline",
    "call_end",
    "call_request",
    "function_call",
    "get_connection_info",
    "get_online_users",
    "get_room_members",
    "ice_candidate",
    "join_room",
    "leave_room",
    "mark_read",
    "ping",
    "publish",
    "rpc",
    "send_message",
    "typing",
    "webrtc_answer",
    "webrtc_offer",
];

/// Every server frame `type`, sorted: the label values of the frames-out metric.
pub const SERVER_FRAME_TYPES: &[&str] = &[
    "agent_status_changed",
    "auth_refreshed",
    "call_accepted",
    "call_ended",
    "call_queued",
    "call_status_changed",
    "call_taken",
    "call_withdrawn",
    "connected",
    "connection_info",
    "conversation_read",
    "error",
    "function_error",
    "function_result",
    "ice_candidate",
    "incoming_call",
    "message",
    "message_sent",
    "online_users",
    "pong",
    "presence_batch",
    "presence_changed",
    "published",
    "queue_position",
    "read_marked",
    "room_joined",
    "room_left",
    "room_members",
    "room_members_changed",
    "room_message",
    "rpc_error",
    "rpc_result",
    "server_message",
    "test",
    "tool_call_executed",
    "typing",
    "user_joined",
    "user_left",
    "webrtc_answer",
    "webrtc_offer",
];

/// The `type` of an encoded server frame, read from its first bytes (serde writes an internally
/// tagged enum's tag first): a cheap scan for the metrics, no parse.
pub fn frame_type(frame: &str) -> Option<&str> {
    let rest = frame.strip_prefix(r#"{"type":""#)?;
    rest.split_once('"').map(|(kind, _)| kind)
}

impl ClientMessage {
    /// The frame's `type`, as the client wrote it (for the frames-in metric).
    pub fn kind(&self) -> &'static str {
        match self {
            ClientMessage::Auth { .. } => "auth",
            ClientMessage::Ping => "ping",
            ClientMessage::JoinRoom { .. } => "join_room",
            ClientMessage::LeaveRoom { .. } => "leave_room",
            ClientMessage::GetRoomMembers { .. } => "get_room_members",
            ClientMessage::Publish { .. } => "publish",
            ClientMessage::GetOnlineUsers => "get_online_users",
            ClientMessage::GetConnectionInfo => "get_connection_info",
            ClientMessage::AgentStatus { .. } => "agent_status",
            ClientMessage::CallRequest { .. } => "call_request",
            ClientMessage::CallAccept { .. } => "call_accept",
            ClientMessage::CallDecline { .. } => "call_decline",
            ClientMessage::CallEnd { .. } => "call_end",
            ClientMessage::WebrtcOffer { .. } => "webrtc_offer",
            ClientMessage::WebrtcAnswer { .. } => "webrtc_answer",
            ClientMessage::IceCandidate { .. } => "ice_candidate",
            ClientMessage::FunctionCall { .. } => "function_call",
            ClientMessage::SendMessage { .. } => "send_message",
            ClientMessage::Typing { .. } => "typing",
            ClientMessage::MarkRead { .. } => "mark_read",
            ClientMessage::Rpc { .. } => "rpc",
            ClientMessage::Unknown => "unknown",
        }
    }
}

/// An `rpc` method name: 1–64 characters of `[a-z0-9_.]`, checked where the frame is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct RpcMethod(String);

impl RpcMethod {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RpcMethod {
    type Error = &'static str;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let ok = (1..=64).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.".contains(&b));
        ok.then_some(Self(value)).ok_or("a method is 1-64 characters of [a-z0-9_.]")
    }
}

/// A decoded client frame with its optional `ref` (a string or a number).
#[derive(Debug)]
pub struct Request {
    pub reference: Option<Value>,
    pub message: ClientMessage,
}

/// Why a client frame could not be decoded; each maps to one error code.
#[derive(Debug, PartialEq)]
pub enum DecodeError {
    /// Not JSON at all → `invalid_json`.
    InvalidJson,
    /// JSON, but not a frame of a known shape → `invalid_message`.
    InvalidMessage { reference: Option<Value>, reason: String },
    /// A well-formed frame whose `type` we do not know → `unknown_type`.
    UnknownType { reference: Option<Value>, kind: String },
}

impl DecodeError {
    /// The error frame that answers this decode failure.
    pub fn to_frame(&self) -> Frame {
        match self {
            DecodeError::InvalidJson => {
                error_frame(ErrorCode::InvalidJson, "frame is not valid JSON", None)
            }
            DecodeError::InvalidMessage { reference, reason } => {
                error_frame(ErrorCode::InvalidMessage, reason, reference.as_ref())
            }
            DecodeError::UnknownType { reference, kind } => error_frame(
                ErrorCode::UnknownType,
                &format!("unknown frame type '{kind}'"),
                reference.as_ref(),
            ),
        }
    }
}

/// Decodes one client text frame.
pub fn decode(text: &str) -> Result<Request, DecodeError> {
    let value: Value = serde_json::from_str(text).map_err(|_| DecodeError::InvalidJson)?;
    let Value::Object(mut map) = value else {
        return Err(invalid(None, "a frame is a JSON object with a \"type\""));
    };
    let reference = match map.remove("ref") {
        None | Some(Value::Null) => None,
        Some(r @ (Value::String(_) | Value::Number(_))) => Some(r),
        Some(_) => return Err(invalid(None, "\"ref\" must be a string or a number")),
    };
    let kind = match map.get("type") {
        Some(Value::String(kind)) => kind.clone(),
        _ => return Err(invalid(reference, "\"type\" must be a string")),
    };
    match serde_json::from_value::<ClientMessage>(Value::Object(map)) {
        Ok(ClientMessage::Unknown) => Err(DecodeError::UnknownType { reference, kind }),
        Ok(message) => Ok(Request { reference, message }),
        Err(e) => Err(invalid(reference, format!("invalid '{kind}' frame: {e}"))),
    }
}

fn invalid(reference: Option<Value>, reason: impl Into<String>) -> DecodeError {
    DecodeError::InvalidMessage { reference, reason: reason.into() }
}

/// One user in an `online_users` answer.
#[derive(Debug, Serialize)]
pub struct OnlineUser<'a> {
    #[serde(flatten)]
    pub user: &'a UserRef,
    pub status: Option<AgentStatus>,
    pub connections: usize,
}

/// A chat message on the wire (`docs/protocol.md` §8).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChatMessage<'a> {
    pub id: &'a str,
    #[schema(value_type = String, example = "support:guest-7")]
    pub conversation: &'a ConversationId,
    pub seq: i64,
    pub from: Sender<'a>,
    pub text: &'a str,
    #[schema(value_type = Option<Object>)]
    pub meta: Option<Value>,
    pub client_id: Option<&'a str>,
    pub sent_at: String,
}

/// Who sent a stored message, as stored: `{"id","name","role"}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Sender<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub role: &'a str,
}

/// One connection as `connection_info` and `GET /api/v1/ws/clients` describe it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConnectionSummary {
    #[schema(value_type = String)]
    pub session_id: ConnId,
    pub user: UserRef,
    pub rooms: Vec<RoomName>,
    pub connected_at: String,
}

/// Every frame the server sends.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage<'a> {
    Connected {
        session_id: ConnId,
        user: UserWithCompany<'a>,
        heartbeat_interval_ms: u64,
        message: &'static str,
    },
    Pong {
        ts: i64,
    },
    Error {
        code: ErrorCode,
        message: &'a str,
    },
    AuthRefreshed {
        expires_at: String,
    },
    RoomJoined {
        room: &'a RoomName,
        member_count: usize,
        members: Vec<&'a UserRef>,
        members_truncated: bool,
    },
    RoomMembers {
        room: &'a RoomName,
        members: Vec<&'a UserRef>,
        next_cursor: Option<String>,
    },
    RoomMembersChanged {
        room: &'a RoomName,
        joined: Vec<&'a UserRef>,
        left: Vec<&'a UserRef>,
        member_count: usize,
        /// More joined or left than the 100 listed of each.
        truncated: bool,
    },
    RoomLeft {
        room: &'a RoomName,
    },
    UserJoined {
        room: &'a RoomName,
        user: &'a UserRef,
    },
    UserLeft {
        room: &'a RoomName,
        user: &'a UserRef,
    },
    RoomMessage {
        room: &'a RoomName,
        from: &'a UserRef,
        data: &'a Value,
    },
    /// Acknowledges a `publish` that carried a `ref`.
    Published {
        room: &'a RoomName,
        delivered: usize,
    },
    OnlineUsers {
        users: Vec<OnlineUser<'a>>,
    },
    ConnectionInfo(&'a ConnectionSummary),
    AgentStatusChanged {
        user_id: &'a UserId,
        status: AgentStatus,
    },
    PresenceChanged {
        user: &'a UserRef,
        online: bool,
        /// The agent's status when online, else null.
        status: Option<AgentStatus>,
    },
    PresenceBatch {
        online: Vec<&'a UserRef>,
        offline: Vec<&'a UserRef>,
    },
    Test {
        event: &'a str,
        message: &'a str,
        sender: &'a UserRef,
        timestamp: String,
    },
    ServerMessage {
        data: &'a Value,
        from: &'a UserRef,
    },
    CallQueued {
        call_id: &'a CallId,
        position: usize,
        agents_available: usize,
    },
    /// To a waiting customer whenever their place in line or the number of free agents changes.
    QueuePosition {
        call_id: &'a CallId,
        position: usize,
        agents_available: usize,
    },
    /// To an agent's connections: an offer they declined is gone from their screen.
    CallWithdrawn {
        call_id: &'a CallId,
    },
    IncomingCall {
        call_id: &'a CallId,
        customer: &'a UserRef,
        note: Option<&'a str>,
    },
    CallAccepted {
        call_id: &'a CallId,
        agent: &'a UserRef,
    },
    CallTaken {
        call_id: &'a CallId,
        by: &'a UserRef,
    },
    CallEnded {
        call_id: &'a CallId,
        reason: &'a str,
        /// `None` when the hub ended it (no answer, connection lost).
        by: Option<&'a UserRef>,
    },
    WebrtcOffer {
        call_id: &'a CallId,
        sdp: &'a Value,
        from: &'a UserRef,
    },
    WebrtcAnswer {
        call_id: &'a CallId,
        sdp: &'a Value,
        from: &'a UserRef,
    },
    IceCandidate {
        call_id: &'a CallId,
        candidate: &'a Value,
        from: &'a UserRef,
    },
    FunctionResult {
        call_id: &'a str,
        name: &'a str,
        output: &'a Value,
    },
    FunctionError {
        call_id: &'a str,
        name: &'a str,
        code: FunctionErrorCode,
        message: &'a str,
    },
    /// What a voice assistant (or the user) did with the calendar, for the dashboard.
    ToolCallExecuted {
        tool_call_id: &'a str,
        name: &'a str,
        arguments: &'a Value,
        ok: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        output: Option<&'a Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<&'a str>,
        at: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        call_id: Option<&'a str>,
    },
    MessageSent {
        message: &'a ChatMessage<'a>,
    },
    Message {
        message: &'a ChatMessage<'a>,
    },
    Typing {
        conversation: &'a ConversationId,
        user: &'a UserRef,
        active: bool,
    },
    ReadMarked {
        conversation: &'a ConversationId,
        seq: i64,
        unread: i64,
    },
    ConversationRead {
        conversation: &'a ConversationId,
        user: &'a UserRef,
        seq: i64,
    },
    CallStatusChanged {
        call_id: &'a str,
        status: &'a str,
        previous_status: Option<&'a str>,
        provider: &'a str,
        direction: Option<&'a str>,
        from: Option<&'a str>,
        to: Option<&'a str>,
        owner_id: Option<&'a str>,
        ended_reason: Option<&'a str>,
        at: String,
        data: &'a Value,
    },
    RpcResult {
        method: &'a str,
        result: &'a Value,
    },
    RpcError {
        method: &'a str,
        code: &'a str,
        message: &'a str,
    },
}

/// Encodes a frame once, for any number of recipients.
pub fn encode(message: &ServerMessage<'_>) -> Frame {
    encode_reply(message, None)
}

/// Encodes a frame that answers a request, echoing its `ref` when it had one.
pub fn encode_reply(message: &ServerMessage<'_>, reference: Option<&Value>) -> Frame {
    match serde_json::to_string(message) {
        Ok(mut json) => {
            // Every server frame is a JSON object, so the ref goes in before the final brace;
            // cheaper and simpler than a flattened wrapper type.
            if let Some(reference) = reference
                && json.ends_with('}')
            {
                json.pop();
                json.push_str(",\"ref\":");
                json.push_str(&reference.to_string());
                json.push('}');
            }
            ByteString::from(json)
        }
        Err(e) => {
            log::error!("cannot encode a server frame: {e}");
            ByteString::from_static(
                r#"{"type":"error","code":"internal","message":"internal error"}"#,
            )
        }
    }
}

/// An `error` frame with `code`, a human message and the request's `ref`.
pub fn error_frame(code: ErrorCode, message: &str, reference: Option<&Value>) -> Frame {
    encode_reply(&ServerMessage::Error { code, message }, reference)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &str) -> Value {
        serde_json::from_str(v).unwrap()
    }

    #[test]
    fn method_names_follow_the_contract() {
        for good in ["motivation", "crm.lookup", "a_1", &"m".repeat(64)] {
            assert!(RpcMethod::try_from(good.to_owned()).is_ok(), "{good}");
        }
        for bad in ["", "Motivation", "a-b", "a b", "ü", &"m".repeat(65)] {
            assert!(RpcMethod::try_from(bad.to_owned()).is_err(), "{bad:?}");
        }
        let req = decode(r#"{"type":"rpc","method":"motivation","ref":1}"#).unwrap();
        assert!(
            matches!(req.message, ClientMessage::Rpc { method, data: Value::Null } if method.as_str() == "motivation")
        );
        assert!(matches!(
            decode(r#"{"type":"rpc","method":"Bad"}"#),
            Err(DecodeError::InvalidMessage { .. })
        ));
    }

    #[test]
    fn the_frame_type_lists_name_real_frames() {
        for list in [CLIENT_FRAME_TYPES, SERVER_FRAME_TYPES] {
            assert!(list.windows(2).all(|w| w[0] < w[1]), "sorted, for binary search");
        }
        for kind in CLIENT_FRAME_TYPES {
            let decoded = decode(&format!(r#"{{"type":"{kind}"}}"#));
            assert!(!matches!(decoded, Err(DecodeError::UnknownType { .. })), "{kind}");
            if let Ok(request) = decoded {
                assert_eq!(request.message.kind(), *kind);
            }
        }
        let pong = encode(&ServerMessage::Pong { ts: 1 });
        assert_eq!(frame_type(&pong), Some("pong"));
        let error = error_frame(ErrorCode::Forbidden, "no", Some(&Value::from(1)));
        assert_eq!(frame_type(&error), Some("error"));
        for kind in ["pong", "error", "room_message", "call_status_changed", "rpc_result"] {
            assert!(SERVER_FRAME_TYPES.binary_search(&kind).is_ok(), "{kind}");
        }
    }

    #[test]
    fn decodes_known_frames_with_refs() {
        let req = decode(r#"{"type":"join_room","room":"sales","ref":7}"#).unwrap();
        assert_eq!(req.reference, Some(Value::from(7)));
        assert!(matches!(req.message, ClientMessage::JoinRoom { room } if room == "sales"));
        let req = decode(r#"{"type":"agent_status","status":"busy","ref":"a"}"#).unwrap();
        assert!(matches!(req.message, ClientMessage::AgentStatus { status: AgentStatus::Busy }));
    }

    #[test]
    fn classifies_bad_frames() {
        assert_eq!(decode("{nope").unwrap_err(), DecodeError::InvalidJson);
        assert!(matches!(decode("[1,2]"), Err(DecodeError::InvalidMessage { .. })));
        assert!(matches!(decode(r#"{"room":"x"}"#), Err(DecodeError::InvalidMessage { .. })));
        assert!(matches!(
            decode(r#"{"type":"teleport","ref":"r1"}"#),
            Err(DecodeError::UnknownType { reference: Some(_), .. })
        ));
        let Err(DecodeError::InvalidMessage { reference, .. }) =
            decode(r#"{"type":"join_room","room":5,"ref":"r2"}"#)
        else {
            panic!("expected invalid_message");
        };
        assert_eq!(reference, Some(Value::from("r2")));
        assert!(matches!(
            decode(r#"{"type":"ping","ref":{"x":1}}"#),
            Err(DecodeError::InvalidMessage { reference: None, .. })
        ));
    }

    #[test]
    fn replies_echo_the_ref() {
        let frame = encode_reply(&ServerMessage::Pong { ts: 5 }, Some(&Value::from("abc")));
        assert_eq!(parse(&frame), serde_json::json!({"type": "pong", "ts": 5, "ref": "abc"}));
        let frame = error_frame(ErrorCode::NotAMember, "no", None);
        assert_eq!(
            parse(&frame),
            serde_json::json!({"type": "error", "code": "not_a_member", "message": "no"})
        );
    }
}
