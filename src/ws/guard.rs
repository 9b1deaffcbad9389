//! The transport guard: a pass-through over the bytes a WebSocket client sends, reading frame
//! headers as they arrive (`docs/protocol.md` §4).
//!
//! actix-http checks a frame's size only once the whole frame has arrived, and actix-web-actors
//! buffers whatever arrives until then: a header announcing 2^40 bytes would make the hub hold
//! everything that follows. The guard sees each header as soon as its bytes are in and fails
//! the stream when a frame — or a fragmented message, its frames counted together — announces
//! more than the limit, so the pending input of a connection never exceeds the limit plus a
//! frame header (the session closes with 1009). It also fails a fragmented control frame, which
//! RFC 6455 forbids, before actix-http logs an error line for it (the session closes with 1002).
//! The session learns why from [`Tripped`]. Payload bytes are skipped, not copied: the cost is a
//! few comparisons per frame.

use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_http::error::PayloadError;
use actix_web::web::Bytes;
use futures_core::Stream;

/// Why the guard failed the stream, once it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trip {
    /// A frame or message announced more than the limit: 1009.
    TooBig,
    /// A fragmented control frame: 1002.
    Protocol,
}

/// The guard's verdict, shared with the session.
#[derive(Debug, Clone, Default)]
pub struct Tripped(Rc<Cell<Option<Trip>>>);

impl Tripped {
    pub fn get(&self) -> Option<Trip> {
        self.0.get()
    }
}

/// Largest WebSocket frame header: 2 bytes, a 64-bit length, a 4-byte mask.
const MAX_HEADER: usize = 14;

/// Where the guard is in the client's byte stream.
#[derive(Debug, Default)]
struct Framing {
    /// Bytes of the header being read (fewer than its full length).
    header: [u8; MAX_HEADER],
    header_len: usize,
    /// Payload bytes of the current frame still to come.
    payload_left: u64,
    /// Data bytes announced so far by the message being received (fragments added up).
    message_len: u64,
}

impl Framing {
    /// Follows one chunk of input, until a frame breaks a rule.
    fn follow(&mut self, mut chunk: &[u8], limit: u64) -> Result<(), Trip> {
        while !chunk.is_empty() {
            if self.payload_left > 0 {
                let skip = self.payload_left.min(chunk.len() as u64);
                self.payload_left -= skip;
                chunk = &chunk[skip as usize..];
                continue;
            }
            let take = (MAX_HEADER - self.header_len).min(chunk.len());
            self.header[self.header_len..self.header_len + take].copy_from_slice(&chunk[..take]);
            let available = self.header_len + take;
            let Some((header_len, payload_len)) = parse_header(&self.header[..available]) else {
                self.header_len = available;
                chunk = &[];
                continue;
            };
            // Only the bytes of this header are consumed; the rest of `take` is payload.
            chunk = &chunk[header_len - self.header_len..];
            self.header_len = 0;
            let (fin, opcode) = (self.header[0] & 0x80 != 0, self.header[0] & 0x0F);
            if !fin && opcode >= 0x8 {
                return Err(Trip::Protocol);
            }
            if !self.announce(opcode, payload_len, limit) {
                return Err(Trip::TooBig);
            }
            self.payload_left = payload_len;
        }
        Ok(())
    }

    /// Counts a frame's announced length against the limit, fragments of one message together.
    fn announce(&mut self, opcode: u8, payload_len: u64, limit: u64) -> bool {
        match opcode {
            // A continuation adds to the message; text and binary start one.
            0x0 => self.message_len = self.message_len.saturating_add(payload_len),
            0x1 | 0x2 => self.message_len = payload_len,
            // Control frames stand alone (and may come between fragments).
            _ => return payload_len <= limit,
        }
        self.message_len <= limit
    }
}

/// `(header length, payload length)` once `bytes` hold the whole header, else `None`.
fn parse_header(bytes: &[u8]) -> Option<(usize, u64)> {
    let [_, second, rest @ ..] = bytes else { return None };
    let masked = second & 0x80 != 0;
    let mask_len = if masked { 4 } else { 0 };
    let (ext_len, payload_len) = match second & 0x7F {
        126 => (2, u64::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?))),
        127 => (8, u64::from_be_bytes(rest.get(..8)?.try_into().ok()?)),
        len => (0, u64::from(len)),
    };
    let header_len = 2 + ext_len + mask_len;
    (bytes.len() >= header_len).then_some((header_len, payload_len))
}

/// The client's byte stream, failed as soon as it announces too much. See the module docs.
pub struct InputGuard<S> {
    inner: S,
    limit: u64,
    framing: Framing,
    tripped: Tripped,
}

impl<S> InputGuard<S> {
    pub fn new(inner: S, limit: usize) -> (Self, Tripped) {
        let tripped = Tripped::default();
        let guard = Self {
            inner,
            limit: limit as u64,
            framing: Framing::default(),
            tripped: tripped.clone(),
        };
        (guard, tripped)
    }
}

impl<S> Stream for InputGuard<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.tripped.get().is_some() {
            return Poll::Ready(None);
        }
        let item = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &item {
            let this = &mut *self;
            if let Err(trip) = this.framing.follow(chunk, this.limit) {
                this.tripped.0.set(Some(trip));
                return Poll::Ready(Some(Err(PayloadError::Overflow)));
            }
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame header announcing `len` bytes.
    fn header(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
        match len {
            0..=125 => out.push(0x80 | len as u8),
            126..=0xFFFF => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                out.push(0x80 | 127);
                out.extend_from_slice(&len.to_be_bytes());
            }
        }
        out.extend_from_slice(&[1, 2, 3, 4]);
        out
    }

    #[test]
    fn a_huge_header_trips_before_any_payload() {
        let mut framing = Framing::default();
        assert_eq!(framing.follow(&header(true, 1, 1 << 40), 65_536), Err(Trip::TooBig));
    }

    #[test]
    fn frames_within_the_limit_pass_even_split_byte_by_byte() {
        let mut stream = header(true, 1, 70_000);
        stream.extend(vec![0u8; 70_000]);
        stream.extend(header(true, 9, 4));
        stream.extend([0u8; 4]);
        let mut framing = Framing::default();
        for byte in &stream {
            assert_eq!(framing.follow(std::slice::from_ref(byte), 100_000), Ok(()));
        }
        assert_eq!(framing.payload_left, 0);
        assert_eq!(framing.header_len, 0);
    }

    #[test]
    fn fragments_count_together_and_control_frames_do_not() {
        let mut framing = Framing::default();
        let mut first = header(false, 1, 600);
        first.extend(vec![0u8; 600]);
        assert_eq!(framing.follow(&first, 1_000), Ok(()));
        let mut ping = header(true, 9, 100);
        ping.extend(vec![0u8; 100]);
        assert_eq!(framing.follow(&ping, 1_000), Ok(()));
        assert_eq!(framing.follow(&header(true, 0, 600), 1_000), Err(Trip::TooBig));
    }

    #[test]
    fn a_fragmented_control_frame_is_a_protocol_error() {
        let mut framing = Framing::default();
        assert_eq!(framing.follow(&header(false, 9, 2), 1_000), Err(Trip::Protocol));
    }
}
