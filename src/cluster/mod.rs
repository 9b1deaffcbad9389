//! More than one node (`docs/protocol.md` §9): the nodes of a cluster share PostgreSQL (every
//! decision that must be single stays there) and Redis, which carries the bus and the presence
//! leases. Nothing here is loaded without `--redis-url`.
//!
//! The hubs keep their local maps as on one node. What must reach recipients on other nodes is
//! published once as an [`envelope`] on the cluster's channel, `<cluster>:bus`: a delivery
//! (company + [`Audience`] + the frame's bytes, encoded once where it happened), a user's
//! presence on the sending node, a browser call's whereabouts. Every node's [`driver`] hands
//! what the others sent to its local hubs as [`Incoming`], and skips its own, so no connection
//! gets a frame twice; one publishing connection keeps what one node sends in order.
//!
//! Presence: each node keeps its users in the hash `<cluster>:presence:<node>` and a lease
//! `<cluster>:lease:<node>` it renews every second for five. A node whose lease lapsed is
//! claimed (`SET NX <cluster>:purge:<node>`) by the first survivor to see it, which deletes its
//! keys and announces [`Body::NodeGone`]: every node drops its users (`presence_changed`
//! offline, rooms left, calls ended after the grace).

pub mod driver;
pub mod envelope;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix::prelude::*;
use tokio::sync::mpsc;

pub use envelope::{Audience, Body, CallCommand};

use crate::config::ClusterSettings;
use crate::ids::CompanyId;
use crate::metrics::Metrics;
use crate::protocol::Frame;

/// What a node heard from another node (or, for [`Body::NodeGone`], decided itself: then
/// `from` is this node's own name).
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Incoming {
    pub from: Arc<str>,
    pub body: Body,
    pub frame: Option<Frame>,
}

/// Asks the PresenceHub, after the bus (re)connected, to take the other nodes' users as read
/// from Redis and to republish its own ([`Bus::snapshot`]).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Resync {
    pub remote: Vec<(Arc<str>, Body)>,
}

/// What the driver sends to Redis, in the order the hubs asked.
pub enum Outgoing {
    Publish(Vec<u8>),
    /// A user's presence here changed: published, and kept in this node's presence hash
    /// under `field` (removed when `gone`).
    Presence {
        field: String,
        envelope: Vec<u8>,
        gone: bool,
    },
    /// Every user of this node, after (re)connecting: replaces its presence hash.
    Snapshot(Vec<(String, Vec<u8>)>),
}

/// How much a node may have queued for Redis before it drops (Redis too slow or away).
const QUEUE: usize = 65_536;

/// A node's handle on the bus, cloned into every hub. Cheap: publishing is one encode and one
/// channel push; the driver task does the I/O.
#[derive(Clone)]
pub struct Bus {
    inner: Arc<BusInner>,
}

struct BusInner {
    node: Arc<str>,
    tx: mpsc::Sender<Outgoing>,
    up: AtomicBool,
    metrics: Arc<Metrics>,
}

impl Bus {
    /// A bus for this node; the returned receiver goes to [`driver::start`].
    pub fn new(
        settings: &ClusterSettings,
        metrics: Arc<Metrics>,
    ) -> (Self, mpsc::Receiver<Outgoing>) {
        let node: Arc<str> = match &settings.node_id {
            Some(id) => Arc::from(id.as_str()),
            None => Arc::from(crate::ids::random_uuid().simple().to_string()),
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let inner = BusInner { node, tx, up: AtomicBool::new(false), metrics };
        (Self { inner: Arc::new(inner) }, rx)
    }

    pub fn node(&self) -> &Arc<str> {
        &self.inner.node
    }

    /// Whether Redis answers (for `/readyz` and `up{store="redis"}`).
    pub fn is_up(&self) -> bool {
        self.inner.up.load(Ordering::Relaxed)
    }

    /// Waits up to `limit` for the first connection to Redis, so a node that starts knows the
    /// others' users before its first client does; answers whether it came.
    pub async fn joined(&self, limit: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while !self.is_up() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        self.is_up()
    }

    /// Marks Redis up or down; answers what it was.
    pub(crate) fn set_up(&self, up: bool) -> bool {
        self.inner.up.swap(up, Ordering::Relaxed)
    }

    /// One message from another node handed to the hubs.
    pub(crate) fn received(&self) {
        self.inner.metrics.bus_received();
    }

    /// A frame for `audience` on the other nodes.
    pub fn deliver(&self, company: &CompanyId, audience: Audience, frame: &Frame) {
        let body = Body::Deliver { company: company.clone(), audience };
        self.push(|header| Outgoing::Publish(envelope::encode(header, Some(frame))), body);
    }

    /// A message with a frame for the other nodes.
    pub fn send_frame(&self, body: Body, frame: &Frame) {
        self.push(|header| Outgoing::Publish(envelope::encode(header, Some(frame))), body);
    }

    /// A message without a frame for the other nodes.
    pub fn send(&self, body: Body) {
        self.push(|header| Outgoing::Publish(envelope::encode(header, None)), body);
    }

    /// A user's presence on this node ([`Body::Presence`]); kept in Redis for late joiners.
    pub fn presence(&self, body: Body) {
        let Body::Presence { company, user, conns, .. } = &body else { return };
        let (field, gone) = (presence_field(company, &user.id), *conns == 0);
        self.push(
            |h| Outgoing::Presence { field, envelope: envelope::encode(h, None), gone },
            body,
        );
    }

    /// Every user of this node ([`Body::Presence`] each), after (re)connecting. Sent even while
    /// down: the driver waits for it after every reconnect.
    pub fn snapshot(&self, users: Vec<Body>) {
        let entries = users
            .into_iter()
            .filter_map(|body| {
                let Body::Presence { company, user, .. } = &body else { return None };
                let field = presence_field(company, &user.id);
                Some((field, envelope::encode(&self.header(body), None)))
            })
            .collect();
        if self.inner.tx.try_send(Outgoing::Snapshot(entries)).is_err() {
            self.inner.metrics.bus_dropped();
        }
    }

    fn header(&self, body: Body) -> envelope::Header {
        envelope::Header { from: self.inner.node.to_string(), body }
    }

    /// Queues one message for the driver, unless Redis is away (what happens meanwhile stays
    /// on this node; presence is republished on reconnect) or the queue is full.
    fn push(&self, make: impl FnOnce(&envelope::Header) -> Outgoing, body: Body) {
        if !self.is_up() {
            self.inner.metrics.bus_dropped();
            return;
        }
        let outgoing = make(&self.header(body));
        match self.inner.tx.try_send(outgoing) {
            Ok(()) => self.inner.metrics.bus_published(),
            Err(_) => self.inner.metrics.bus_dropped(),
        }
    }
}

/// A user's field in a node's presence hash.
fn presence_field(company: &CompanyId, user_id: &crate::ids::UserId) -> String {
    format!("{company}\n{user_id}")
}
