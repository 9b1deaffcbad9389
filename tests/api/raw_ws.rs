//! A WebSocket client written by hand over a plain TCP socket, for attacks a well-behaved
//! client library would never make: a frame header announcing 2^40 bytes, a socket that
//! completes the handshake and then never reads, a slow body.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct RawWs {
    pub stream: TcpStream,
}

/// The answer to a handshake: the status line's code and the whole head.
pub struct Handshake {
    pub status: u16,
    pub head: String,
}

impl RawWs {
    /// Opens a TCP connection to `address` and asks for a WebSocket upgrade on `path`.
    pub async fn connect(address: &str, path: &str) -> (Self, Handshake) {
        let stream = TcpStream::connect(address).await.expect("tcp connect");
        let mut raw = Self { stream };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        raw.stream.write_all(request.as_bytes()).await.expect("send handshake");
        let head = raw.read_head().await;
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        (raw, Handshake { status, head })
    }

    /// Reads the HTTP response head byte by byte (nothing after it is consumed).
    async fn read_head(&mut self) -> String {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let read = tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut byte))
                .await
                .expect("handshake answer in time")
                .expect("read handshake");
            if read == 0 {
                break;
            }
            head.push(byte[0]);
        }
        String::from_utf8_lossy(&head).into_owned()
    }

    /// A masked client frame header announcing `len` payload bytes.
    pub fn header(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
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
        out.extend_from_slice(&[0, 0, 0, 0]); // a zero mask: the payload goes as is
        out
    }

    /// Whether the server ends the TCP connection within `wait` (EOF or reset; anything it
    /// still sends is read and dropped).
    pub async fn ends_within(&mut self, wait: Duration) -> bool {
        let drain = async {
            let mut buffer = [0u8; 4096];
            loop {
                match self.stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        };
        tokio::time::timeout(wait, drain).await.is_ok()
    }

    /// The first text frame the server sends (as JSON), or the close code it sends instead.
    pub async fn first_text(&mut self, wait: Duration) -> Result<serde_json::Value, Option<u16>> {
        match tokio::time::timeout(wait, self.read_frame()).await.ok().flatten() {
            Some((0x1, text)) => Ok(serde_json::from_slice(&text).unwrap_or_default()),
            Some((0x8, payload)) => Err(close_code_of(&payload)),
            _ => Err(None),
        }
    }

    /// Reads server frames until a close frame (its code) or the end of the connection
    /// (`None`), within `wait`.
    pub async fn close_code(&mut self, wait: Duration) -> Option<u16> {
        let read = async {
            loop {
                let (opcode, payload) = self.read_frame().await?;
                if opcode == 0x8 {
                    return close_code_of(&payload);
                }
            }
        };
        tokio::time::timeout(wait, read).await.ok().flatten()
    }

    /// One unmasked server frame: its opcode and payload; `None` when the connection ends.
    async fn read_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut head = [0u8; 2];
        self.stream.read_exact(&mut head).await.ok()?;
        let len = match head[1] & 0x7F {
            126 => u64::from(self.stream.read_u16().await.ok()?),
            127 => self.stream.read_u64().await.ok()?,
            len => u64::from(len),
        };
        let mut payload = vec![0u8; usize::try_from(len).ok()?];
        self.stream.read_exact(&mut payload).await.ok()?;
        Some((head[0] & 0x0F, payload))
    }
}

/// The status code a close frame's payload starts with, if it has one.
fn close_code_of(payload: &[u8]) -> Option<u16> {
    payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]))
}
