//! Prometheus metrics (`docs/protocol.md` §10), one [`Metrics`] per hub, encoded by
//! `prometheus-client` in the OpenMetrics text format under the `switchboard_` prefix.
//!
//! What a frame costs: frames in and out are counted per frame `type` (the type of an outgoing
//! frame read from its first bytes) in sharded counters (`frames.rs`): a relaxed atomic add on a
//! cache line only this thread writes — no lock, no allocation, no label lookup per frame. Rarer
//! events (a webhook, a refused handshake, a calendar call) go through a label family, which
//! takes a read lock.
//! Connections and online users are read from the PresenceHub when scraped, and the database
//! is asked whether it answers then too; nothing on the fan-out path keeps them.

mod frames;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use self::frames::{FrameCollector, FrameCounters, OTHER};
use crate::protocol::{CloseCode, frame_type};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    provider: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CalendarLabels {
    function: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabel {
    store: &'static str,
}

/// Every metric of one hub. Cloned handles share the counts.
pub struct Metrics {
    /// False with `--metrics-bind off`: nothing is counted on the frame path either.
    enabled: bool,
    registry: Registry,
    frames: Arc<FrameCounters>,
    closes: Vec<(CloseCode, Counter)>,
    evictions: Counter,
    handshakes_refused: Family<ReasonLabel, Counter>,
    webhooks: Family<WebhookLabels, Counter>,
    webhook_to_push: Histogram,
    db_query: Histogram,
    calendar_calls: Family<CalendarLabels, Counter>,
    chat_messages: Counter,
    connections: Gauge,
    online_users: Gauge,
    up: Family<StoreLabel, Gauge>,
    /// Cluster bus messages: plain counters, the bus is on the fan-out path.
    bus_published: Counter,
    bus_received: Counter,
    bus_dropped: Counter,
}

/// The close codes a hub sends, each with its counter made at start.
const CLOSE_CODES: [CloseCode; 9] = [
    CloseCode::Normal,
    CloseCode::GoingAway,
    CloseCode::ProtocolError,
    CloseCode::TooBig,
    CloseCode::InternalError,
    CloseCode::Unauthorized,
    CloseCode::Forbidden,
    CloseCode::RateLimited,
    CloseCode::SlowConsumer,
];

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Metrics that count nothing per frame (`--metrics-bind off`).
    pub fn disabled() -> Self {
        Self { enabled: false, ..Self::new() }
    }

    pub fn new() -> Self {
        let closes_family = Family::<CodeLabel, Counter>::default();
        let mut metrics = Self {
            frames: Arc::new(FrameCounters::new()),
            closes: CLOSE_CODES
                .iter()
                .map(|&code| {
                    (code, closes_family.get_or_create(&CodeLabel { code: code.as_u16() }).clone())
                })
                .collect(),
            evictions: Counter::default(),
            handshakes_refused: Family::default(),
            webhooks: Family::default(),
            webhook_to_push: Histogram::new(exponential_buckets(0.000_5, 2.0, 14)),
            db_query: Histogram::new(exponential_buckets(0.000_05, 2.0, 16)),
            calendar_calls: Family::default(),
            chat_messages: Counter::default(),
            connections: Gauge::default(),
            online_users: Gauge::default(),
            up: Family::default(),
            bus_published: Counter::default(),
            bus_received: Counter::default(),
            bus_dropped: Counter::default(),
            registry: Registry::default(),
            enabled: true,
        };
        metrics.registry = metrics.describe(closes_family);
        metrics
    }

    /// Every metric under its name and help text (the close-code family, whose counters are
    /// held one by one in `closes`, is passed in).
    fn describe(&self, closes_family: Family<CodeLabel, Counter>) -> Registry {
        let mut registry = Registry::with_prefix("switchboard");
        let m = self;
        registry.register("ws_connections", "Open WebSocket connections", m.connections.clone());
        registry.register(
            "online_users",
            "Users with at least one connection",
            m.online_users.clone(),
        );
        registry.register_collector(Box::new(FrameCollector(Arc::clone(&m.frames))));
        registry.register(
            "slow_consumer_evictions",
            "Connections evicted for a full queue (closed 4009)",
            m.evictions.clone(),
        );
        registry.register("ws_closes", "Closes the hub sent, by close code", closes_family);
        registry.register(
            "handshakes_refused",
            "WebSocket handshakes refused, by reason",
            m.handshakes_refused.clone(),
        );
        registry.register(
            "webhook_requests",
            "Webhook requests by provider and outcome",
            m.webhooks.clone(),
        );
        registry.register(
            "webhook_to_push_seconds",
            "From a webhook's arrival to its change handed to the screens",
            m.webhook_to_push.clone(),
        );
        registry.register(
            "db_query_seconds",
            "How long work held a database connection",
            m.db_query.clone(),
        );
        registry.register(
            "calendar_calls",
            "Calendar functions run, by function and outcome",
            m.calendar_calls.clone(),
        );
        registry.register("chat_messages", "Chat messages stored", m.chat_messages.clone());
        registry.register(
            "up",
            "Whether a store answers (1) or not (0), when last scraped",
            m.up.clone(),
        );
        registry.register(
            "bus_published",
            "Messages sent to the cluster bus",
            m.bus_published.clone(),
        );
        registry.register(
            "bus_received",
            "Messages from other nodes handed to this node's hubs",
            m.bus_received.clone(),
        );
        registry.register(
            "bus_dropped",
            "Messages not sent to the cluster bus: Redis away or too slow",
            m.bus_dropped.clone(),
        );
        registry
    }

    /// A client frame of `kind` (a `ClientMessage::kind`, or anything else for one that did
    /// not decode).
    pub fn frame_in(&self, kind: &str) {
        if !self.enabled {
            return;
        }
        self.frames.frame_in(kind);
    }

    /// A frame written to a connection.
    pub fn frame_out(&self, frame: &str) {
        if !self.enabled {
            return;
        }
        self.frames.frame_out(frame_type(frame).unwrap_or(OTHER));
    }

    /// A frame a hub pushed (counted once per connection it reached).
    pub fn delivered(&self) {
        if self.enabled {
            self.frames.delivered();
        }
    }

    pub fn evicted(&self) {
        self.evictions.inc();
    }

    /// The hub closed a connection with `code`.
    pub fn closed(&self, code: CloseCode) {
        if let Some((_, counter)) = self.closes.iter().find(|(c, _)| *c == code) {
            counter.inc();
        }
    }

    pub fn handshake_refused(&self, reason: &'static str) {
        self.handshakes_refused.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// A webhook request and how it ended (`stored`, `duplicate`, `invalid_signature`, …).
    pub fn webhook(&self, provider: &'static str, outcome: &'static str) {
        self.webhooks.get_or_create(&WebhookLabels { provider, outcome }).inc();
    }

    /// A stored webhook change was handed to the screens `elapsed` after the request came in.
    pub fn webhook_pushed(&self, elapsed: Duration) {
        self.webhook_to_push.observe(elapsed.as_secs_f64());
    }

    /// Work held a database connection for `elapsed`.
    pub fn db_query(&self, elapsed: Duration) {
        self.db_query.observe(elapsed.as_secs_f64());
    }

    pub fn calendar_call(&self, function: &'static str, outcome: &'static str) {
        self.calendar_calls.get_or_create(&CalendarLabels { function, outcome }).inc();
    }

    /// A cluster bus message sent.
    pub fn bus_published(&self) {
        self.bus_published.inc();
    }

    /// A message from another node handed to the hubs.
    pub fn bus_received(&self) {
        self.bus_received.inc();
    }

    /// A message for the bus dropped (Redis away, or the queue full).
    pub fn bus_dropped(&self) {
        self.bus_dropped.inc();
    }

    pub fn chat_messages_stored(&self, count: usize) {
        self.chat_messages.inc_by(count as u64);
    }

    /// The scrape: the totals the PresenceHub keeps and whether each store answers, then every
    /// metric as OpenMetrics text.
    pub fn render(
        &self,
        connections: usize,
        online_users: usize,
        stores: &[(&'static str, bool)],
    ) -> String {
        self.connections.set(connections as i64);
        self.online_users.set(online_users as i64);
        for &(store, up) in stores {
            self.up.get_or_create(&StoreLabel { store }).set(i64::from(up));
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn frames_are_counted_by_type_and_unknown_ones_as_other() {
        let metrics = Metrics::new();
        metrics.frame_in("ping");
        metrics.frame_in("ping");
        metrics.frame_in("teleport");
        metrics.frame_out(r#"{"type":"pong","ts":1}"#);
        metrics.frame_out(r#"{"type":"brand_new"}"#);
        metrics.frame_out("not json");
        metrics.closed(CloseCode::SlowConsumer);
        let text = metrics.render(3, 2, &[("database", true), ("redis", false)]);
        assert_eq!(value(&text, r#"switchboard_frames_in_total{type="ping"}"#), Some(2.0));
        assert_eq!(value(&text, r#"switchboard_frames_in_total{type="other"}"#), Some(1.0));
        assert_eq!(value(&text, r#"switchboard_frames_out_total{type="pong"}"#), Some(1.0));
        assert_eq!(value(&text, r#"switchboard_frames_out_total{type="other"}"#), Some(2.0));
        assert_eq!(value(&text, r#"switchboard_ws_closes_total{code="4009"}"#), Some(1.0));
        assert_eq!(value(&text, "switchboard_ws_connections"), Some(3.0));
        assert_eq!(value(&text, "switchboard_online_users"), Some(2.0));
        assert_eq!(value(&text, r#"switchboard_up{store="database"}"#), Some(1.0));
        assert_eq!(value(&text, r#"switchboard_up{store="redis"}"#), Some(0.0));
        assert!(text.ends_with("# EOF\n"), "OpenMetrics");
    }
}
