//! The built `switchboard` binary as a child process, for tests that must see the process from
//! outside: its exit, its signals, its memory (RSS from `/proc`).

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `switchboard serve` child process on a free port, killed when dropped.
pub struct ServerProcess {
    pub child: Child,
    pub address: String,
    /// Every line the server has logged so far.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts a server on `db` with the test secret and `extra` flags.
    pub fn start(db: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["serve", "--bind", "127.0.0.1:0", "--database-url", db])
            .args(["--jwt-secret", crate::helpers::TEST_SECRET])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start switchboard");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let lines = std::sync::Arc::clone(&log);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some((_, rest)) = line.split_once("listening on http://") {
                    // Text or JSON logs: the address ends where its characters do.
                    let end = rest
                        .find(|c: char| !(c.is_ascii_alphanumeric() || ".:[]".contains(c)))
                        .unwrap_or(rest.len());
                    let _ = tx.send(rest[..end].to_owned());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let address =
            rx.recv_timeout(Duration::from_secs(20)).expect("the log says where it listens");
        Self { child, address, log }
    }

    /// The server's resident memory, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
