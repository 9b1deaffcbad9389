//! Runs a [`Function`] on the acting user's own primary calendar through google-calendar3.
//!
//! Events the tool creates are tagged in `extendedProperties.private` with the acting user and
//! company; reschedule, cancel and get refuse (as `not_found`) any event without the caller's
//! tag, and a cancelled event is not found either. Google's failures map onto the function
//! errors: 401 → refresh the access token once, then `calendar_not_connected`; 404/410 →
//! `not_found`; 429, rate-limit 403s, 5xx and network errors → a few retries with backoff, then
//! `calendar_unavailable`; other 4xx → `invalid_arguments` with Google's message.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use google_calendar3::CalendarHub;
use google_calendar3::api::{
    Event, EventAttendee, EventDateTime, EventExtendedProperties, FreeBusyRequest,
    FreeBusyRequestItem,
};
use serde_json::{Value, json};

use super::functions::{Function, FunctionError, NewAppointment};
use super::oauth::{Connector, HttpClient, TokenError};
use super::token::RefreshTokenAuth;

pub type Hub = CalendarHub<Connector>;

/// The calendar used: the user's own.
const CALENDAR: &str = "primary";
const TAG_USER: &str = "switchboard_user";
const TAG_COMPANY: &str = "switchboard_company";
/// Attempts for failures worth retrying, and the first backoff (doubled each time).
const ATTEMPTS: u32 = 3;
const BACKOFF: Duration = Duration::from_millis(200);

/// Builds a client for one user's calendar.
pub fn hub(client: HttpClient, auth: RefreshTokenAuth, api_url: &str) -> Hub {
    let mut hub = CalendarHub::new(client, auth);
    hub.base_url(api_url.to_owned());
    hub
}

/// Whose calendar this is, as the tags on the events we create say.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    pub company: &'a str,
    pub user: &'a str,
}

/// Runs one function; the output is what `function_result.output` carries.
pub async fn run(
    hub: &Hub,
    auth: &RefreshTokenAuth,
    owner: Owner<'_>,
    function: Function,
) -> Result<Value, FunctionError> {
    match function {
        Function::CheckAvailability { start, end } => availability(hub, auth, start, end).await,
        Function::CreateEvent(appointment) => create(hub, auth, owner, appointment).await,
        Function::Reschedule { event_id, start, end } => {
            reschedule(hub, auth, owner, &event_id, start, end).await
        }
        Function::Cancel { event_id } => {
            owned_event(hub, auth, owner, &event_id).await?;
            retry(auth, || hub.events().delete(CALENDAR, &event_id).send_updates("all").doit())
                .await?;
            Ok(json!({"event_id": event_id, "cancelled": true}))
        }
        Function::GetDetails { event_id } => details(hub, auth, owner, &event_id).await,
    }
}

/// `check_calendar_availability`: the busy periods of the primary calendar in the window.
async fn availability(
    hub: &Hub,
    auth: &RefreshTokenAuth,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Value, FunctionError> {
    let request = FreeBusyRequest {
        time_min: Some(start),
        time_max: Some(end),
        time_zone: Some("UTC".into()),
        items: Some(vec![FreeBusyRequestItem { id: Some(CALENDAR.into()) }]),
        ..Default::default()
    };
    let (_, answer) = retry(auth, || hub.freebusy().query(request.clone()).doit()).await?;
    let busy: Vec<Value> = answer
        .calendars
        .and_then(|mut calendars| calendars.remove(CALENDAR))
        .and_then(|calendar| calendar.busy)
        .unwrap_or_default()
        .iter()
        .map(|period| json!({"start": rfc3339(period.start), "end": rfc3339(period.end)}))
        .collect();
    Ok(json!({"available": busy.is_empty(), "busy": busy}))
}

/// `reschedule_appointment`: moves one of the caller's events, keeping its time zones.
async fn reschedule(
    hub: &Hub,
    auth: &RefreshTokenAuth,
    owner: Owner<'_>,
    event_id: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Value, FunctionError> {
    let existing = owned_event(hub, auth, owner, event_id).await?;
    let moved = |time: DateTime<Utc>, old: &Option<EventDateTime>| EventDateTime {
        date_time: Some(time),
        time_zone: old.as_ref().and_then(|t| t.time_zone.clone()),
        ..Default::default()
    };
    let patch = Event {
        start: Some(moved(start, &existing.start)),
        end: Some(moved(end, &existing.end)),
        ..Default::default()
    };
    let (_, updated) =
        retry(auth, || hub.events().patch(patch.clone(), CALENDAR, event_id).doit()).await?;
    Ok(json!({"event_id": event_id, "start": when(&updated.start), "end": when(&updated.end)}))
}

/// `get_appointment_details`: one of the caller's events.
async fn details(
    hub: &Hub,
    auth: &RefreshTokenAuth,
    owner: Owner<'_>,
    event_id: &str,
) -> Result<Value, FunctionError> {
    let event = owned_event(hub, auth, owner, event_id).await?;
    let attendees: Vec<Value> = event
        .attendees
        .unwrap_or_default()
        .into_iter()
        .filter_map(|a| a.email)
        .map(Value::String)
        .collect();
    Ok(json!({
        "event_id": event_id,
        "summary": event.summary,
        "start": when(&event.start),
        "end": when(&event.end),
        "attendees": attendees,
        "status": event.status.unwrap_or_else(|| "confirmed".into()),
    }))
}

async fn create(
    hub: &Hub,
    auth: &RefreshTokenAuth,
    owner: Owner<'_>,
    new: NewAppointment,
) -> Result<Value, FunctionError> {
    let tags = HashMap::from([
        (TAG_USER.to_owned(), owner.user.to_owned()),
        (TAG_COMPANY.to_owned(), owner.company.to_owned()),
    ]);
    let at = |t: DateTime<Utc>| EventDateTime {
        date_time: Some(t),
        time_zone: new.timezone.clone(),
        ..Default::default()
    };
    let invite = new.attendee_email.is_some();
    let event_id = new.event_id.clone();
    let event = Event {
        id: new.event_id,
        summary: Some(new.summary),
        description: new.description,
        start: Some(at(new.start)),
        end: Some(at(new.end)),
        attendees: new
            .attendee_email
            .map(|email| vec![EventAttendee { email: Some(email), ..Default::default() }]),
        extended_properties: Some(EventExtendedProperties {
            private: Some(tags),
            ..Default::default()
        }),
        ..Default::default()
    };
    let updates = if invite { "all" } else { "none" };
    let insert = || hub.events().insert(event.clone(), CALENDAR).send_updates(updates).doit();
    let created = match attempt(auth, insert).await {
        Ok((_, created)) => created,
        // Made already: by this call's earlier attempt whose answer was lost, or by a retried
        // tool call. The same event is the answer (if it is this user's).
        Err(Outcome::Duplicate) => {
            let event_id = event_id.ok_or_else(FunctionError::unavailable)?;
            owned_event(hub, auth, owner, &event_id).await?
        }
        Err(Outcome::Failed(e)) => return Err(e),
    };
    Ok(json!({
        "event_id": created.id,
        "html_link": created.html_link,
        "start": when(&created.start),
        "end": when(&created.end),
    }))
}

/// The event, if it exists, is not cancelled, and carries this owner's tags.
async fn owned_event(
    hub: &Hub,
    auth: &RefreshTokenAuth,
    owner: Owner<'_>,
    event_id: &str,
) -> Result<Event, FunctionError> {
    let (_, event) = retry(auth, || hub.events().get(CALENDAR, event_id).doit()).await?;
    let tags = event.extended_properties.as_ref().and_then(|p| p.private.as_ref());
    let tag = |key: &str| tags.and_then(|t| t.get(key)).map(String::as_str);
    let ours = tag(TAG_USER) == Some(owner.user) && tag(TAG_COMPANY) == Some(owner.company);
    if !ours || event.status.as_deref() == Some("cancelled") {
        return Err(FunctionError::not_found());
    }
    Ok(event)
}

fn rfc3339(time: Option<DateTime<Utc>>) -> Option<String> {
    time.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

fn when(time: &Option<EventDateTime>) -> Option<String> {
    rfc3339(time.as_ref().and_then(|t| t.date_time))
}

/// What a failed Google call calls for.
#[derive(Debug, PartialEq)]
enum Failure {
    Unauthorized,
    NotFound,
    /// 409: an event with the id we chose exists.
    Duplicate,
    Retry(String),
    Revoked,
    Rejected(String),
}

fn classify(error: &google_calendar3::Error) -> Failure {
    use google_calendar3::Error;
    match error {
        Error::BadRequest(body) => {
            let status = body.pointer("/error/code").and_then(Value::as_u64).unwrap_or(400) as u16;
            let reason =
                body.pointer("/error/errors/0/reason").and_then(Value::as_str).unwrap_or("");
            let message = body
                .pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or("Google rejected the request");
            by_status(status, reason, message)
        }
        Error::Failure(response) => {
            by_status(response.status().as_u16(), "", "Google rejected the request")
        }
        Error::MissingToken(inner) => match inner.downcast_ref::<TokenError>() {
            Some(TokenError::Refused(_)) => Failure::Revoked,
            _ => Failure::Retry(format!("token refresh failed: {inner}")),
        },
        Error::HttpError(_) | Error::Io(_) | Error::JsonDecodeError(..) => {
            Failure::Retry(error.to_string())
        }
        other => Failure::Rejected(other.to_string()),
    }
}

fn by_status(status: u16, reason: &str, message: &str) -> Failure {
    match status {
        401 => Failure::Unauthorized,
        404 | 410 => Failure::NotFound,
        409 => Failure::Duplicate,
        429 | 500..=599 => Failure::Retry(format!("Google answered {status}")),
        403 if reason.contains("RateLimitExceeded") || reason == "rateLimitExceeded" => {
            Failure::Retry(reason.into())
        }
        _ => Failure::Rejected(message.to_owned()),
    }
}

/// How a Google call ended, when not well.
enum Outcome {
    /// 409 on an insert with our own id.
    Duplicate,
    Failed(FunctionError),
}

/// Runs a Google call with the failure policy of this module.
async fn retry<T, F, Fut>(auth: &RefreshTokenAuth, call: F) -> Result<T, FunctionError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, google_calendar3::Error>>,
{
    attempt(auth, call).await.map_err(|outcome| match outcome {
        Outcome::Failed(e) => e,
        Outcome::Duplicate => FunctionError::invalid("Google says this already exists"),
    })
}

/// [`retry`], telling a duplicate apart.
async fn attempt<T, F, Fut>(auth: &RefreshTokenAuth, mut call: F) -> Result<T, Outcome>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, google_calendar3::Error>>,
{
    let failed = |e: FunctionError| Err(Outcome::Failed(e));
    let mut refreshed = false;
    let mut attempt = 0;
    loop {
        let error = match call().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        match classify(&error) {
            Failure::Unauthorized if !refreshed => {
                refreshed = true;
                auth.invalidate().await;
            }
            Failure::Unauthorized | Failure::Revoked => {
                return failed(FunctionError::not_connected());
            }
            Failure::NotFound => return failed(FunctionError::not_found()),
            Failure::Duplicate => return Err(Outcome::Duplicate),
            Failure::Rejected(message) => return failed(FunctionError::invalid(message)),
            Failure::Retry(why) => {
                attempt += 1;
                if attempt >= ATTEMPTS {
                    log::warn!("Google Calendar unavailable after {attempt} attempts: {why}");
                    return failed(FunctionError::unavailable());
                }
                tokio::time::sleep(BACKOFF * 2u32.pow(attempt - 1)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn google_errors_map_onto_the_policy() {
        let bad = |code: u64, reason: &str| {
            classify(&google_calendar3::Error::BadRequest(
                json!({"error": {"code": code, "message": "m", "errors": [{"reason": reason}]}}),
            ))
        };
        assert_eq!(bad(401, "authError"), Failure::Unauthorized);
        assert_eq!(bad(404, "notFound"), Failure::NotFound);
        assert_eq!(bad(410, "deleted"), Failure::NotFound);
        assert!(matches!(bad(429, "rateLimitExceeded"), Failure::Retry(_)));
        assert!(matches!(bad(503, "backendError"), Failure::Retry(_)));
        assert!(matches!(bad(403, "userRateLimitExceeded"), Failure::Retry(_)));
        assert_eq!(bad(400, "timeRangeEmpty"), Failure::Rejected("m".into()));
        let revoked = google_calendar3::Error::MissingToken(Box::new(TokenError::Refused(
            "invalid_grant".into(),
        )));
        assert_eq!(classify(&revoked), Failure::Revoked);
    }
}
