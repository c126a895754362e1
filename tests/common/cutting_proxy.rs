//! A loopback TCP proxy in front of one broker that understands Kafka framing, for faults the
//! brokers cannot inject themselves: a connection closed by the broker in the middle of a
//! response, and answers slower than the client's request timeout on a broker that
//! deduplicates idempotent retries (Tansu; the librdkafka mock appends every retry).
//!
//! It reads whole frames both ways. Requests are forwarded untouched, remembering each one's
//! API key by correlation id, so a response can be matched to the API it answers (Kafka
//! answers in order on a connection). Responses are forwarded whole, unless a cut is armed for
//! their API: then only the first bytes go out and both sockets are closed, which is what a
//! client sees when a broker dies mid-write.
//!
//! The librdkafka mock advertises its own ports in Metadata, FindCoordinator and the
//! NodeEndpoints of Produce/Fetch responses, so a client would bypass a proxy after
//! bootstrap. [`CuttingProxy::rewrite_port`] replaces `127.0.0.1` followed by the broker's
//! big-endian port with the proxy's port: same length, so frames stay valid, and the 13-byte
//! pattern (host string then port) does not occur by chance in the small test values.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Kafka API keys the tests arm cuts for.
pub mod api {
    pub const PRODUCE: i16 = 0;
    pub const FETCH: i16 = 1;
    pub const METADATA: i16 = 3;
    pub const OFFSET_COMMIT: i16 = 8;
    pub const FIND_COORDINATOR: i16 = 10;
    pub const JOIN_GROUP: i16 = 11;
    pub const HEARTBEAT: i16 = 12;
    pub const SYNC_GROUP: i16 = 14;
}

/// Which responses to cut, and where.
#[derive(Debug, Clone, Copy)]
struct Cut {
    /// Only responses to this API (`None`: any).
    api_key: Option<i16>,
    /// Bytes of the frame (length prefix included) that still reach the client; always less
    /// than the whole frame, so the client never gets a complete response.
    after_bytes: usize,
    /// How many more responses to cut.
    remaining: usize,
}

#[derive(Default)]
struct Shared {
    rewrites: Mutex<Vec<(Vec<u8>, Vec<u8>)>>,
    cut: Mutex<Option<Cut>>,
    cuts_done: AtomicUsize,
    delay: Mutex<Duration>,
    /// Connection tasks, aborted with the proxy so no socket outlives the test.
    conns: Mutex<Vec<JoinHandle<()>>>,
}

/// A proxy on `port()` forwarding to one broker port.
pub struct CuttingProxy {
    port: u16,
    target: u16,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl CuttingProxy {
    /// Binds a free loopback port and forwards every connection to `target_port`.
    pub async fn start(target_port: u16) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        CuttingProxy::with_listener(listener, target_port)
    }

    /// Like `start`, with a listener bound beforehand (e.g. so a broker can be told to
    /// advertise the proxy's port before it starts).
    pub fn with_listener(listener: TcpListener, target_port: u16) -> CuttingProxy {
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let conn = tokio::spawn(serve(client, target_port, s.clone()));
                let mut conns = s.conns.lock().unwrap();
                conns.retain(|c| !c.is_finished());
                conns.push(conn);
            }
        });
        CuttingProxy {
            port,
            target: target_port,
            shared,
            task,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn target(&self) -> u16 {
        self.target
    }

    /// In every response, `127.0.0.1` followed by port `from` becomes port `to`.
    pub fn rewrite_port(&self, from: u16, to: u16) {
        let host = b"127.0.0.1";
        let mut pattern = host.to_vec();
        pattern.extend_from_slice(&i32::from(from).to_be_bytes());
        let mut replacement = host.to_vec();
        replacement.extend_from_slice(&i32::from(to).to_be_bytes());
        self.shared
            .rewrites
            .lock()
            .unwrap()
            .push((pattern, replacement));
    }

    /// Cuts the next `count` responses to `api_key` (any API when `None`) after `after_bytes`
    /// bytes of the frame, closing the connection both ways.
    pub fn cut_responses(&self, api_key: Option<i16>, after_bytes: usize, count: usize) {
        *self.shared.cut.lock().unwrap() = Some(Cut {
            api_key,
            after_bytes,
            remaining: count,
        });
    }

    /// Disarms any cut still pending.
    pub fn stop_cutting(&self) {
        *self.shared.cut.lock().unwrap() = None;
    }

    /// How many responses were cut so far.
    pub fn cuts_done(&self) -> usize {
        self.shared.cuts_done.load(Ordering::Relaxed)
    }

    /// Waits until at least `n` responses were cut; false if that did not happen within
    /// `limit` (the fault never met its target).
    pub async fn wait_for_cuts(&self, n: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.cuts_done() < n {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Holds every response for `d` after it arrived from the broker (order kept): an RTT.
    pub fn set_delay(&self, d: Duration) {
        *self.shared.delay.lock().unwrap() = d;
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.task.abort();
        for c in self.shared.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }
}

/// Reads one frame (4-byte length prefix included); `None` on EOF or error.
async fn read_frame(from: &mut OwnedReadHalf) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    from.read_exact(&mut len).await.ok()?;
    let n = i32::from_be_bytes(len);
    if n < 0 {
        return None;
    }
    let mut frame = Vec::with_capacity(4 + n as usize);
    frame.extend_from_slice(&len);
    frame.resize(4 + n as usize, 0);
    from.read_exact(&mut frame[4..]).await.ok()?;
    Some(frame)
}

type Pending = Arc<Mutex<VecDeque<(i32, i16)>>>;

async fn serve(client: TcpStream, target: u16, shared: Arc<Shared>) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let pending: Pending = Arc::default();
    let up = tokio::spawn(forward_requests(cr, sw, pending.clone()));
    let (tx, rx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write_responses(rx, cw));
    read_responses(sr, pending, &shared, tx).await;
    // The writer ends after the last queued frame (or a cut); then both sockets close.
    let _ = writer.await;
    up.abort();
}

async fn forward_requests(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, pending: Pending) {
    while let Some(frame) = read_frame(&mut from).await {
        // Request header: length, api_key (i16), api_version (i16), correlation_id (i32).
        if frame.len() >= 12 {
            let api = i16::from_be_bytes([frame[4], frame[5]]);
            let corr = i32::from_be_bytes([frame[8], frame[9], frame[10], frame[11]]);
            pending.lock().unwrap().push_back((corr, api));
        }
        if to.write_all(&frame).await.is_err() {
            return;
        }
    }
}

/// What the writer does with one response.
enum Out {
    Whole(Instant, Vec<u8>),
    Cut(Instant, Vec<u8>),
}

async fn read_responses(
    mut from: OwnedReadHalf,
    pending: Pending,
    shared: &Shared,
    tx: mpsc::UnboundedSender<Out>,
) {
    while let Some(mut frame) = read_frame(&mut from).await {
        let release = Instant::now() + *shared.delay.lock().unwrap();
        // Response header starts with the correlation id; requests without a response
        // (acks=0) are skipped over.
        let api = if frame.len() >= 8 {
            let corr = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
            let mut q = pending.lock().unwrap();
            let mut api = None;
            while let Some((c, a)) = q.pop_front() {
                if c == corr {
                    api = Some(a);
                    break;
                }
            }
            api
        } else {
            None
        };
        let cut = {
            let mut guard = shared.cut.lock().unwrap();
            match guard.as_mut() {
                Some(c) if c.api_key.is_none() || c.api_key == api => {
                    c.remaining -= 1;
                    let at = c.after_bytes.min(frame.len() - 1);
                    if c.remaining == 0 {
                        *guard = None;
                    }
                    Some(at)
                }
                _ => None,
            }
        };
        if let Some(at) = cut {
            shared.cuts_done.fetch_add(1, Ordering::Relaxed);
            frame.truncate(at);
            let _ = tx.send(Out::Cut(release, frame));
            return;
        }
        for (pattern, replacement) in shared.rewrites.lock().unwrap().iter() {
            replace_all(&mut frame, pattern, replacement);
        }
        if tx.send(Out::Whole(release, frame)).is_err() {
            return;
        }
    }
}

async fn write_responses(mut rx: mpsc::UnboundedReceiver<Out>, mut to: OwnedWriteHalf) {
    while let Some(out) = rx.recv().await {
        match out {
            Out::Whole(at, frame) => {
                tokio::time::sleep_until(at).await;
                if to.write_all(&frame).await.is_err() {
                    return;
                }
            }
            Out::Cut(at, part) => {
                tokio::time::sleep_until(at).await;
                let _ = to.write_all(&part).await;
                let _ = to.flush().await;
                // Dropping the write half sends FIN mid-frame; the caller drops the rest.
                return;
            }
        }
    }
}

/// Replaces every occurrence of `pattern` with the same-length `replacement`.
fn replace_all(buf: &mut [u8], pattern: &[u8], replacement: &[u8]) {
    debug_assert_eq!(pattern.len(), replacement.len());
    if buf.len() < pattern.len() {
        return;
    }
    let mut i = 0;
    while i + pattern.len() <= buf.len() {
        if &buf[i..i + pattern.len()] == pattern {
            buf[i..i + pattern.len()].copy_from_slice(replacement);
            i += pattern.len();
        } else {
            i += 1;
        }
    }
}
