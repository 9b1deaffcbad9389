//! The sessions' way into the directory: each worker thread queues its sessions' [`Connect`]s
//! and [`Disconnect`]s and hands them to the PresenceHub as one [`Changes`] message at the end of
//! the worker's current turn.
//!
//! Why: the hub's thread sleeps between messages, so a `Connect` sent on its own wakes it — a
//! context switch there and, on a busy two-core box, a preempted worker here. In a storm of
//! 10,000 handshakes that was one wake-up per handshake, and leaving the `Connect` out
//! altogether (a measurement, not a mode) saved a fifth of the server's CPU. Batched, the hub's
//! thread woke about once per three handshakes in the same storm.
//!
//! Order holds as if each change were sent alone: one thread's changes reach the hub in the
//! order they were queued (a batch per turn, batches in turn order, through one mailbox), and a
//! connection's `Connect` is in the hub's mailbox before its client hears `connected` (the
//! handshake, or the session after an `auth` frame, waits for [`HandedOver`]), so whatever
//! follows — the client's frames, a REST call it prompts, a hub's delivery — finds the
//! connection in the directory.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll, Waker};

use actix::prelude::*;

use super::{Connect, Disconnect, PresenceHub};

/// One change to the directory, in the order a worker's sessions made them.
pub enum Change {
    Connect(Connect),
    Disconnect(Disconnect),
}

/// A worker's changes since its last turn, applied in order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Changes(pub Vec<Change>);

impl Handler<Changes> for PresenceHub {
    type Result = ();

    fn handle(&mut self, msg: Changes, ctx: &mut Context<Self>) {
        for change in msg.0 {
            match change {
                Change::Connect(connect) => Handler::<Connect>::handle(self, connect, ctx),
                Change::Disconnect(gone) => Handler::<Disconnect>::handle(self, gone, ctx),
            }
        }
    }
}

/// Queues a session's `Connect`; the future is ready once it is in the hub's mailbox.
pub fn connect(hub: &Addr<PresenceHub>, connect: Connect) -> HandedOver {
    HandedOver(queue(hub, Change::Connect(connect)))
}

/// Queues a session's `Disconnect` (nobody waits for it).
pub fn disconnect(hub: &Addr<PresenceHub>, gone: Disconnect) {
    queue(hub, Change::Disconnect(gone));
}

/// What one thread has queued for one hub (a process can run several servers, in tests).
struct Queue {
    hub: Addr<PresenceHub>,
    changes: Vec<Change>,
    batch: Rc<Batch>,
}

/// Whether a batch has been handed over, and who waits for it.
#[derive(Default)]
struct Batch {
    handed: Cell<bool>,
    waiting: RefCell<Vec<Waker>>,
}

thread_local! {
    static QUEUED: RefCell<Vec<Queue>> = const { RefCell::new(Vec::new()) };
}

fn queue(hub: &Addr<PresenceHub>, change: Change) -> Rc<Batch> {
    QUEUED.with_borrow_mut(|queues| {
        if queues.is_empty() {
            // Runs after the tasks already due on this worker: the rest of this turn's
            // handshakes and closes join the batch.
            actix_rt::spawn(async { hand_over() });
        }
        let index = match queues.iter().position(|q| q.hub == *hub) {
            Some(index) => index,
            None => {
                let batch = Rc::default();
                queues.push(Queue { hub: hub.clone(), changes: Vec::new(), batch });
                queues.len() - 1
            }
        };
        let queue = &mut queues[index];
        queue.changes.push(change);
        Rc::clone(&queue.batch)
    })
}

/// Sends each hub its batch and wakes the sessions waiting on it.
fn hand_over() {
    for queue in QUEUED.take() {
        // A hub that is gone (shutdown) has nobody left to tell; the sessions go on regardless.
        queue.hub.do_send(Changes(queue.changes));
        queue.batch.handed.set(true);
        for waker in queue.batch.waiting.take() {
            waker.wake();
        }
    }
}

/// Ready once the `Connect` it was returned for is in the hub's mailbox.
pub struct HandedOver(Rc<Batch>);

impl Future for HandedOver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        if self.0.handed.get() {
            return Poll::Ready(());
        }
        let mut waiting = self.0.waiting.borrow_mut();
        if !waiting.last().is_some_and(|w| w.will_wake(cx.waker())) {
            waiting.push(cx.waker().clone());
        }
        Poll::Pending
    }
}
