//! Vapi server messages: `{"message":{"type": …, "call": {…}, …}}`.
//!
//! Authentication is a shared secret, sent as `x-vapi-secret: <secret>` (Vapi's legacy inline
//! secret, and a Bearer credential with that header) or `Authorization: Bearer <secret>`.
//! `status-update` and `end-of-call-report` move a call; `message.call.phoneCallProviderId` is
//! the Twilio CallSid of a phone call, which joins Vapi's and Twilio's reports into one call.

use actix_web::HttpRequest;
use actix_web::http::header;
use serde_json::{Value, json};

use super::{constant_time_eq, normalize_direction};
use crate::calls::CallStatus;

/// Whether the request carries the configured secret, compared in constant time.
pub fn secret_matches(req: &HttpRequest, secret: &str) -> bool {
    let headers = req.headers();
    let inline = headers.get("x-vapi-secret").and_then(|v| v.to_str().ok()).map(|v| v.trim());
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    // Both are checked, so the time does not say which header was present.
    let inline_ok = inline.is_some_and(|v| constant_time_eq(v.as_bytes(), secret.as_bytes()));
    let bearer_ok = bearer.is_some_and(|v| constant_time_eq(v.as_bytes(), secret.as_bytes()));
    inline_ok | bearer_ok
}

/// What a Vapi message asks of us.
#[derive(Debug, Clone, PartialEq)]
pub enum VapiMessage {
    /// `status-update` or `end-of-call-report`.
    Status(Box<StatusReport>),
    /// `tool-calls`: the calendar tool answers these.
    ToolCalls { call_id: Option<String> },
    /// Anything else: acknowledged, nothing to do.
    Other(String),
}

/// A status report about a Vapi call.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusReport {
    pub vapi_call_id: String,
    /// The Twilio CallSid when the call runs over Twilio.
    pub twilio_call_sid: Option<String>,
    /// `None` for Vapi statuses that have no place in our model (`not-found`, …).
    pub status: Option<CallStatus>,
    pub ended_reason: Option<String>,
    pub direction: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// From `call.metadata.company`, set by whoever configured the assistant.
    pub company: Option<String>,
    /// From `call.metadata.owner_id` (or `owner`).
    pub owner_id: Option<String>,
    /// The details shown with the change (the bulky transcript and artifacts left out).
    pub data: Value,
}

fn text(value: &Value, pointer: &str) -> Option<String> {
    value.pointer(pointer).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// Reads `{"message": {...}}`.
pub fn parse(body: &Value) -> Result<VapiMessage, String> {
    let message =
        body.get("message").filter(|m| m.is_object()).ok_or("expected {\"message\":{…}}")?;
    let kind = text(message, "/type").ok_or("message.type is missing")?;
    match kind.as_str() {
        "status-update" | "end-of-call-report" => {
            parse_status(message, &kind).map(|r| VapiMessage::Status(Box::new(r)))
        }
        "tool-calls" => Ok(VapiMessage::ToolCalls { call_id: text(message, "/call/id") }),
        _ => Ok(VapiMessage::Other(kind)),
    }
}

fn parse_status(message: &Value, kind: &str) -> Result<StatusReport, String> {
    let vapi_call_id = text(message, "/call/id").ok_or("message.call.id is missing")?;
    let raw_status = if kind == "end-of-call-report" {
        Some("ended".to_owned())
    } else {
        text(message, "/status").or_else(|| text(message, "/call/status"))
    };
    let status = raw_status.as_deref().and_then(|s| match s {
        "scheduled" | "queued" => Some(CallStatus::Queued),
        "ringing" => Some(CallStatus::Ringing),
        "in-progress" | "forwarding" => Some(CallStatus::InProgress),
        "ended" => Some(CallStatus::Ended),
        _ => None,
    });
    let ended_reason = text(message, "/endedReason").or_else(|| text(message, "/call/endedReason"));
    let direction = text(message, "/call/type").and_then(|t| match t.as_str() {
        "inboundPhoneCall" => Some("inbound".to_owned()),
        "outboundPhoneCall" => Some("outbound".to_owned()),
        "webCall" => Some("web".to_owned()),
        other => normalize_direction(other),
    });
    let customer =
        text(message, "/call/customer/number").or_else(|| text(message, "/customer/number"));
    let our_number =
        text(message, "/phoneNumber/number").or_else(|| text(message, "/call/phoneNumber/number"));
    let (from, to) = if direction.as_deref() == Some("outbound") {
        (our_number, customer)
    } else {
        (customer, our_number)
    };
    let data = json!({
        "type": kind,
        "vapi_call_id": vapi_call_id,
        "status": raw_status,
        "endedReason": ended_reason,
        "phoneCallProviderId": text(message, "/call/phoneCallProviderId"),
        "timestamp": message.get("timestamp"),
    });
    Ok(StatusReport {
        twilio_call_sid: text(message, "/call/phoneCallProviderId"),
        status,
        ended_reason,
        direction,
        from,
        to,
        company: text(message, "/call/metadata/company"),
        owner_id: text(message, "/call/metadata/owner_id")
            .or_else(|| text(message, "/call/metadata/owner")),
        data,
        vapi_call_id,
    })
}

/// One function call of a `tool-calls` message.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// An object, or a JSON string holding one (both are accepted downstream).
    pub arguments: Value,
}

/// The tool calls of a `tool-calls` message, in order. Vapi's docs and SDK disagree on the
/// shape, so all three are read: `{id, function: {name, arguments}}`, `{id, name, arguments}`,
/// `{id, name, parameters}`; `toolWithToolCallList[].toolCall` when `toolCallList` is absent.
pub fn tool_calls(body: &Value) -> Vec<ToolCall> {
    let message = body.get("message").unwrap_or(&Value::Null);
    let read = |call: &Value, outer_name: Option<&str>| {
        let id = call.get("id")?.as_str()?.to_owned();
        let name = call
            .pointer("/function/name")
            .and_then(Value::as_str)
            .or_else(|| call.get("name").and_then(Value::as_str))
            .or(outer_name)?
            .to_owned();
        let arguments = call
            .pointer("/function/arguments")
            .or_else(|| call.get("arguments"))
            .or_else(|| call.get("parameters"))
            .cloned()
            .unwrap_or(Value::Null);
        Some(ToolCall { id, name, arguments })
    };
    if let Some(list) = message.get("toolCallList").and_then(Value::as_array) {
        return list.iter().filter_map(|call| read(call, None)).collect();
    }
    message
        .get("toolWithToolCallList")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|tool| {
                    read(tool.get("toolCall")?, tool.get("name").and_then(Value::as_str))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_update_links_the_twilio_call() {
        let body = json!({"message": {"type": "status-update", "status": "ended",
            "endedReason": "customer-ended-call", "timestamp": 1772532001000u64,
            "call": {"id": "c8f0", "type": "outboundPhoneCall", "phoneCallProvider": "twilio",
                     "phoneCallProviderId": "CA11", "customer": {"number": "+15558675310"},
                     "metadata": {"company": "acme", "owner_id": "agent-1"}},
            "phoneNumber": {"number": "+15017122661"}}});
        let VapiMessage::Status(report) = parse(&body).unwrap() else { panic!("status") };
        assert_eq!(report.vapi_call_id, "c8f0");
        assert_eq!(report.twilio_call_sid.as_deref(), Some("CA11"));
        assert_eq!(report.status, Some(CallStatus::Ended));
        assert_eq!(report.ended_reason.as_deref(), Some("customer-ended-call"));
        assert_eq!(
            (report.from.as_deref(), report.to.as_deref()),
            (Some("+15017122661"), Some("+15558675310"))
        );
        assert_eq!(
            (report.company.as_deref(), report.owner_id.as_deref()),
            (Some("acme"), Some("agent-1"))
        );
    }

    #[test]
    fn tool_calls_are_read_in_all_three_shapes() {
        let args = json!({"event_id": "e1"});
        let body = json!({"message": {"type": "tool-calls", "toolCallList": [
            {"id": "a", "type": "function", "function": {"name": "cancel_appointment", "arguments": args.to_string()}},
            {"id": "b", "name": "cancel_appointment", "arguments": args},
            {"id": "c", "name": "cancel_appointment", "parameters": args}]}});
        let calls = tool_calls(&body);
        assert_eq!(calls.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
        assert!(calls.iter().all(|c| c.name == "cancel_appointment"));
        assert_eq!(calls[0].arguments, Value::String(args.to_string()));
        assert_eq!(calls[2].arguments, args);
        let nested = json!({"message": {"toolWithToolCallList": [{"name": "get_appointment_details",
            "toolCall": {"id": "d", "parameters": {"event_id": "e2"}}}]}});
        assert_eq!(
            tool_calls(&nested),
            [ToolCall {
                id: "d".into(),
                name: "get_appointment_details".into(),
                arguments: json!({"event_id": "e2"})
            }]
        );
    }

    #[test]
    fn end_of_call_report_ends_the_call() {
        let body = json!({"message": {"type": "end-of-call-report", "endedReason": "hangup", "call": {"id": "v1"}}});
        let VapiMessage::Status(report) = parse(&body).unwrap() else { panic!("status") };
        assert_eq!(
            (report.status, report.ended_reason.as_deref()),
            (Some(CallStatus::Ended), Some("hangup"))
        );
    }

    #[test]
    fn other_messages_and_bad_bodies() {
        assert_eq!(
            parse(&json!({"message": {"type": "transcript"}})).unwrap(),
            VapiMessage::Other("transcript".into())
        );
        assert!(parse(&json!({"type": "status-update"})).is_err());
        assert!(
            parse(&json!({"message": {"type": "status-update", "status": "ringing"}})).is_err()
        );
        let odd = json!({"message": {"type": "status-update", "status": "not-found", "call": {"id": "v"}}});
        let VapiMessage::Status(report) = parse(&odd).unwrap() else { panic!("status") };
        assert_eq!(report.status, None);
    }
}
