//! `CalendarTool`: runs calendar functions on the acting user's own Google Calendar.
//!
//! It owns one google-calendar3 client per user, built on first use from that user's stored
//! (encrypted) refresh token, reused while in use and dropped after [`IDLE`]. Its thread never
//! waits on Google: a call runs as a future next to the actor (the actor keeps handling other
//! messages), with a timeout, and the result goes back to whoever asked. Sessions send
//! `function_call`s here, the Vapi webhook sends `tool-calls`; the acting user always comes from
//! a token or from a call's owner, never from the arguments.
//!
//! Mailbox:
//!
//! | message | sent by | answer |
//! | --- | --- | --- |
//! | [`RunFunction`] | a session (`function_call`), the Vapi webhook (`tool-calls`) | the output, or a [`FunctionError`] |
//! | [`ForgetUser`] | the calendar routes (connect, disconnect) | — (the cached client is dropped) |

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde_json::Value;

use super::crypto::TokenCipher;
use super::functions::{self, Function, FunctionError};
use super::google::{self, Hub, Owner};
use super::oauth::Google;
use super::token::RefreshTokenAuth;
use crate::db::{self, DbPool};
use crate::ids::{CompanyId, UserId};

/// A client unused this long is dropped.
pub const IDLE: Duration = Duration::from_secs(600);
/// Longest a function may take, retries included.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

type UserKey = (CompanyId, UserId);

/// The calendar actor. See the module docs.
pub struct CalendarTool {
    pool: DbPool,
    cipher: Arc<TokenCipher>,
    /// `None` when no Google client is configured: every function is `calendar_not_connected`.
    google: Option<Arc<Google>>,
    clients: HashMap<UserKey, CachedClient>,
}

#[derive(Clone)]
struct CachedClient {
    hub: Arc<Hub>,
    auth: RefreshTokenAuth,
    last_used: Instant,
}

impl CalendarTool {
    pub fn new(pool: DbPool, cipher: Arc<TokenCipher>, google: Option<Arc<Google>>) -> Self {
        Self { pool, cipher, google, clients: HashMap::new() }
    }

    /// The user's client from the cache, else built from the stored connection.
    async fn load(
        pool: DbPool,
        cipher: Arc<TokenCipher>,
        google: Arc<Google>,
        key: UserKey,
    ) -> Result<CachedClient, FunctionError> {
        let (company, user) = (key.0.to_string(), key.1.to_string());
        let stored = db::run(&pool, move |conn| db::calendar::find(conn, &company, &user))
            .await
            .map_err(|e| {
                log::error!("loading a calendar connection failed: {e}");
                FunctionError::unavailable()
            })?
            .ok_or_else(FunctionError::not_connected)?;
        let refresh_token =
            cipher.decrypt(&stored.refresh_token, &owner_label(&key.0, &key.1)).map_err(|e| {
                log::error!("calendar token of {}/{}: {e}", key.0, key.1);
                FunctionError::not_connected()
            })?;
        let auth =
            RefreshTokenAuth::new(google.http.clone(), Arc::clone(&google.config), refresh_token);
        let hub = Arc::new(google::hub(google.http.clone(), auth.clone(), &google.config.api_url));
        Ok(CachedClient { hub, auth, last_used: Instant::now() })
    }
}

/// The associated data a user's stored token is encrypted with.
pub fn owner_label(company: &CompanyId, user: &UserId) -> String {
    format!("{company}/{user}")
}

impl Actor for CalendarTool {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(IDLE / 4, |tool, _| {
            tool.clients.retain(|_, c| c.last_used.elapsed() < IDLE)
        });
    }
}

/// Runs one function for a user; answers the output or the function error.
#[derive(Message)]
#[rtype(result = "Result<Value, FunctionError>")]
pub struct RunFunction {
    pub company: CompanyId,
    pub user_id: UserId,
    pub name: String,
    pub arguments: Value,
    /// The caller's id for this tool call (`function_call.call_id`, Vapi's `toolCallId`): a
    /// retry with the same one never books twice.
    pub tool_call_id: String,
}

impl Handler<RunFunction> for CalendarTool {
    type Result = ResponseActFuture<Self, Result<Value, FunctionError>>;

    fn handle(&mut self, msg: RunFunction, _: &mut Context<Self>) -> Self::Result {
        // Bad arguments are answered without a word to Google.
        let mut function = match functions::parse(&msg.name, &msg.arguments) {
            Ok(function) => function,
            Err(e) => return Box::pin(fut::ready(Err(e))),
        };
        if let Function::CreateEvent(appointment) = &mut function {
            let (company, user) = (msg.company.as_str(), msg.user_id.as_str());
            appointment.event_id = Some(functions::event_id_for(company, user, &msg.tool_call_id));
        }
        let Some(google) = self.google.clone() else {
            return Box::pin(fut::ready(Err(FunctionError::not_connected())));
        };
        let key: UserKey = (msg.company, msg.user_id);
        let cached = self.clients.get_mut(&key).map(|client| {
            client.last_used = Instant::now();
            client.clone()
        });
        let (pool, cipher) = (self.pool.clone(), Arc::clone(&self.cipher));
        let load_key = key.clone();
        let client = async move {
            match cached {
                Some(client) => Ok(client),
                None => Self::load(pool, cipher, google, load_key).await,
            }
        };
        Box::pin(
            client
                .into_actor(self)
                .map(move |client, tool, _| {
                    if let Ok(client) = &client {
                        tool.clients.entry(key.clone()).or_insert_with(|| client.clone());
                    }
                    client.map(|client| (client, key))
                })
                .then(|client, _, _| {
                    fut::wrap_future(async move {
                        let (client, (company, user)) = client?;
                        let owner = Owner { company: company.as_str(), user: user.as_str() };
                        let call = google::run(&client.hub, &client.auth, owner, function);
                        tokio::time::timeout(CALL_TIMEOUT, call)
                            .await
                            .unwrap_or_else(|_| Err(FunctionError::unavailable()))
                    })
                }),
        )
    }
}

/// Drops a user's cached client (they disconnected or reconnected their calendar).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ForgetUser {
    pub company: CompanyId,
    pub user_id: UserId,
}

impl Handler<ForgetUser> for CalendarTool {
    type Result = ();

    fn handle(&mut self, msg: ForgetUser, _: &mut Context<Self>) {
        self.clients.remove(&(msg.company, msg.user_id));
    }
}
