//! The one task that talks to Redis for a node: one connection subscribed to the cluster's
//! channel, one multiplexed connection for commands. It publishes what the hubs queued (in
//! their order, pipelined), hands what other nodes published to the local hubs, renews this
//! node's lease every second and claims the nodes whose lease lapsed.
//!
//! When Redis goes away the node keeps serving its own clients; the driver retries with backoff
//! (0.1 s doubling to 5 s), and once back re-reads the other nodes' presence, republishes its
//! own ([`Resync`]) and publishes again from the snapshot on.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisError, RedisResult};
use tokio::sync::mpsc;

use super::envelope::{self, Audience, Body};
use super::{Bus, Incoming, Outgoing, Resync};
use crate::config::Secret;

/// How long a lease lasts, and how often it is renewed and the others' checked: a dead node
/// is claimed within LEASE + RENEW_EVERY (6 s) of its last renewal.
const LEASE: Duration = Duration::from_secs(5);
const RENEW_EVERY: Duration = Duration::from_secs(1);
/// Longest a Redis command or connection attempt may take before Redis counts as away.
const REDIS_DEADLINE: Duration = Duration::from_secs(2);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Most queued messages sent in one pipeline.
const BATCH: usize = 512;

/// Where the driver hands what other nodes sent.
pub struct Targets {
    pub presence: Recipient<Incoming>,
    pub resync: Recipient<Resync>,
    pub rooms: Recipient<Incoming>,
    pub calls: Recipient<Incoming>,
}

impl Targets {
    fn dispatch(&self, incoming: Incoming) {
        match &incoming.body {
            Body::Deliver { audience: Audience::Room { .. }, .. } | Body::RoomMember { .. } => {
                self.rooms.do_send(incoming)
            }
            Body::CallOpened { .. }
            | Body::CallParty { .. }
            | Body::CallCommand { .. }
            | Body::CallChanged { .. } => self.calls.do_send(incoming),
            Body::NodeGone { .. } => {
                self.calls.do_send(incoming.clone());
                self.rooms.do_send(incoming.clone());
                self.presence.do_send(incoming);
            }
            _ => self.presence.do_send(incoming),
        }
    }
}

/// The Redis key names of one cluster.
struct Keys {
    cluster: String,
    node: Arc<str>,
}

impl Keys {
    fn channel(&self) -> String {
        format!("{}:bus", self.cluster)
    }
    fn nodes(&self) -> String {
        format!("{}:nodes", self.cluster)
    }
    fn lease(&self, node: &str) -> String {
        format!("{}:lease:{node}", self.cluster)
    }
    fn presence(&self, node: &str) -> String {
        format!("{}:presence:{node}", self.cluster)
    }
    fn purge(&self, node: &str) -> String {
        format!("{}:purge:{node}", self.cluster)
    }
}

/// Starts the driver on the current arbiter; it runs until the hubs' queue closes.
pub fn start(
    url: &Secret,
    cluster: &str,
    bus: Bus,
    rx: mpsc::Receiver<Outgoing>,
    targets: Targets,
) -> RedisResult<()> {
    let client = redis::Client::open(url.expose())?;
    let keys = Keys { cluster: cluster.to_owned(), node: bus.node().clone() };
    actix_rt::spawn(run(client, keys, bus, rx, targets));
    Ok(())
}

async fn run(
    client: redis::Client,
    keys: Keys,
    bus: Bus,
    mut rx: mpsc::Receiver<Outgoing>,
    targets: Targets,
) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let mut driver = Driver { keys: &keys, bus: &bus, targets: &targets, connected: false };
        match driver.session(&client, &mut rx).await {
            Ok(()) => return,
            Err(e) => {
                if bus.set_up(false) {
                    log::warn!(
                        "redis is unreachable ({e}): serving this node's clients only, retrying"
                    );
                }
            }
        }
        backoff = if driver.connected { BACKOFF_MIN } else { (backoff * 2).min(BACKOFF_MAX) };
        actix_rt::time::sleep(backoff).await;
    }
}

struct Driver<'a> {
    keys: &'a Keys,
    bus: &'a Bus,
    targets: &'a Targets,
    /// Whether this session got as far as serving (the next retry starts with a short wait).
    connected: bool,
}

impl Driver<'_> {
    /// One connection's life: `Ok` when the hubs are gone, `Err` when Redis went away.
    async fn session(
        &mut self,
        client: &redis::Client,
        rx: &mut mpsc::Receiver<Outgoing>,
    ) -> RedisResult<()> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(REDIS_DEADLINE)
            .set_response_timeout(REDIS_DEADLINE);
        let mut pubsub = deadline(client.get_async_pubsub()).await?;
        deadline(pubsub.subscribe(self.keys.channel())).await?;
        let mut messages = pubsub.into_on_message();
        let mut conn = client.get_multiplexed_async_connection_with_config(&config).await?;
        self.join(&mut conn).await?;
        let remote = self.read_others(&mut conn).await?;
        self.connected = true;
        // Queued before anything a client of this node can ask the PresenceHub from now on.
        let _ = self.targets.resync.try_send(Resync { remote });
        self.bus.set_up(true);
        log::info!(node = &*self.keys.node; "joined cluster {}", self.keys.cluster);
        // What the hubs queued before the PresenceHub took its snapshot is older than it.
        let mut synced = false;
        let mut renew = actix_rt::time::interval(RENEW_EVERY);
        loop {
            tokio::select! {
                message = messages.next() => {
                    let Some(message) = message else {
                        return Err(closed("the subscription ended"));
                    };
                    self.received(message.get_payload_bytes());
                }
                first = rx.recv() => {
                    let Some(first) = first else { return Ok(()) };
                    let mut batch = vec![first];
                    while batch.len() < BATCH && let Ok(next) = rx.try_recv() {
                        batch.push(next);
                    }
                    self.send(&mut conn, batch, &mut synced).await?;
                }
                _ = renew.tick() => {
                    self.renew(&mut conn).await?;
                    self.claim_lapsed(&mut conn).await?;
                }
            }
        }
    }

    /// Hands one envelope from another node to the local hubs.
    fn received(&self, payload: &[u8]) {
        let Some((header, frame)) = envelope::decode(payload) else {
            log::warn!("ignoring a bus message this node cannot read ({} bytes)", payload.len());
            return;
        };
        if *header.from == *self.keys.node {
            return;
        }
        self.bus.received();
        self.targets.dispatch(Incoming { from: Arc::from(header.from), body: header.body, frame });
    }

    /// Sends what the hubs queued, in their order, as one pipeline. Until the snapshot asked
    /// for on (re)connecting has come, what was queued is older than it and is dropped.
    async fn send(
        &self,
        conn: &mut MultiplexedConnection,
        batch: Vec<Outgoing>,
        synced: &mut bool,
    ) -> RedisResult<()> {
        let (channel, hash) = (self.keys.channel(), self.keys.presence(&self.keys.node));
        let mut pipe = redis::pipe();
        for outgoing in batch {
            match outgoing {
                Outgoing::Snapshot(users) => {
                    *synced = true;
                    pipe.del(&hash).ignore();
                    for (field, envelope) in users {
                        pipe.hset(&hash, field, &envelope).ignore();
                        pipe.publish(&channel, envelope).ignore();
                    }
                }
                _ if !*synced => {}
                Outgoing::Publish(envelope) => {
                    pipe.publish(&channel, envelope).ignore();
                }
                Outgoing::Presence { field, envelope, gone } => {
                    if gone {
                        pipe.hdel(&hash, field).ignore();
                    } else {
                        pipe.hset(&hash, field, &envelope).ignore();
                    }
                    pipe.publish(&channel, envelope).ignore();
                }
            }
        }
        pipe.query_async::<()>(conn).await
    }

    /// Enters the cluster: this node's lease and name, no claim left from an earlier death.
    async fn join(&self, conn: &mut MultiplexedConnection) -> RedisResult<()> {
        let node = &*self.keys.node;
        redis::pipe()
            .del(self.keys.purge(node))
            .ignore()
            .pset_ex(self.keys.lease(node), 1, LEASE.as_millis() as u64)
            .ignore()
            .sadd(self.keys.nodes(), node)
            .ignore()
            .query_async::<()>(conn)
            .await
    }

    /// The users of every other node whose lease is alive, as their presence hashes hold them.
    async fn read_others(
        &self,
        conn: &mut MultiplexedConnection,
    ) -> RedisResult<Vec<(Arc<str>, Body)>> {
        let mut remote = Vec::new();
        for node in self.live_others(conn).await?.0 {
            let users: Vec<(String, Vec<u8>)> =
                redis::cmd("HGETALL").arg(self.keys.presence(&node)).query_async(conn).await?;
            let node: Arc<str> = Arc::from(node);
            for (_, bytes) in users {
                if let Some((header, _)) = envelope::decode(&bytes) {
                    remote.push((node.clone(), header.body));
                }
            }
        }
        Ok(remote)
    }

    /// The other nodes named in the cluster's set: those whose lease is alive, and those whose
    /// lease lapsed.
    async fn live_others(
        &self,
        conn: &mut MultiplexedConnection,
    ) -> RedisResult<(Vec<String>, Vec<String>)> {
        let mut nodes: Vec<String> =
            redis::cmd("SMEMBERS").arg(self.keys.nodes()).query_async(conn).await?;
        nodes.retain(|n| **n != *self.keys.node);
        if nodes.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let mut pipe = redis::pipe();
        for node in &nodes {
            pipe.exists(self.keys.lease(node));
        }
        let alive: Vec<bool> = pipe.query_async(conn).await?;
        let (live, lapsed): (Vec<_>, Vec<_>) = nodes.into_iter().zip(alive).partition(|(_, a)| *a);
        Ok((
            live.into_iter().map(|(n, _)| n).collect(),
            lapsed.into_iter().map(|(n, _)| n).collect(),
        ))
    }

    /// Renews this node's lease. If another node claimed it meanwhile (this node was too slow,
    /// or cut off), the others dropped its users: it takes its name back and republishes.
    async fn renew(&self, conn: &mut MultiplexedConnection) -> RedisResult<()> {
        let node = &*self.keys.node;
        let (_, _, claimed): ((), (), bool) = redis::pipe()
            .pset_ex(self.keys.lease(node), 1, LEASE.as_millis() as u64)
            .sadd(self.keys.nodes(), node)
            .del(self.keys.purge(node))
            .query_async(conn)
            .await?;
        if claimed {
            log::warn!("this node's lease had lapsed and was claimed: republishing its presence");
            let _ = self.targets.resync.try_send(Resync { remote: self.read_others(conn).await? });
        }
        Ok(())
    }

    /// Claims every node whose lease lapsed (one survivor wins each, `SET NX`), deletes its
    /// keys and tells every node, this one included, that it is gone.
    async fn claim_lapsed(&self, conn: &mut MultiplexedConnection) -> RedisResult<()> {
        for node in self.live_others(conn).await?.1 {
            let won: bool = redis::cmd("SET")
                .arg(self.keys.purge(&node))
                .arg(&*self.keys.node)
                .arg("NX")
                .arg("PX")
                .arg(60_000)
                .query_async::<Option<String>>(conn)
                .await?
                .is_some();
            if !won {
                continue;
            }
            log::warn!(node = node.as_str(); "a node's lease lapsed: its users are gone");
            let body = Body::NodeGone { node: node.clone() };
            let header = envelope::Header { from: self.keys.node.to_string(), body: body.clone() };
            redis::pipe()
                .del(self.keys.presence(&node))
                .ignore()
                .srem(self.keys.nodes(), &node)
                .ignore()
                .publish(self.keys.channel(), envelope::encode(&header, None))
                .ignore()
                .query_async::<()>(conn)
                .await?;
            self.targets.dispatch(Incoming { from: self.keys.node.clone(), body, frame: None });
        }
        Ok(())
    }
}

async fn deadline<T>(work: impl Future<Output = RedisResult<T>>) -> RedisResult<T> {
    match tokio::time::timeout(REDIS_DEADLINE, work).await {
        Ok(result) => result,
        Err(_) => Err(closed("timed out")),
    }
}

fn closed(what: &'static str) -> RedisError {
    RedisError::from(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, what))
}
