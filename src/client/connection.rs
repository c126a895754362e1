//! One broker connection: pipelined requests, responses matched by correlation id.
//!
//! ```text
//!  callers ──encode──► mpsc ──► writer task ──frames──► socket
//!     ▲                            │ registers Pending (in send order)
//!     │                            ▼
//!     └──── oneshot ◄──── reader task ◄──frames── socket
//! ```
//!
//! Ownership: the **writer task** owns the write half and is the only code that appends to the
//! in-flight queue, right before writing the frame, so the queue's order is the wire order.
//! The **reader task** owns the read half and pops the queue's head for every response frame;
//! Kafka answers in order on a connection, so a head whose correlation id differs from the
//! frame's is a protocol error. Both tasks belong to the [`Connection`] and are aborted when it
//! is dropped.
//!
//! Callers encode and decode on their own task, so a slow decode of one large response does not
//! hold up the socket. A request future that is dropped (cancelled) leaves its frame with the
//! writer task, which always writes whole frames: the wire never sees half a request, and the
//! late response is read and discarded.
//!
//! Poisoning: a read error, an oversized or short frame, a correlation mismatch, an undecodable
//! body, or a write error makes the connection unusable. The first cause is stored once and
//! every waiter, present and future, gets `Error::Disconnected` sharing that cause; the pool
//! then replaces the connection.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, FetchRequest, FetchResponse,
};
use kafka_protocol::protocol::{Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, warn, Instrument};

use crate::codes::KafkaCode;
use crate::error::{Error, Result};
use crate::protocol::{self, fetch_split, ApiVersionTable, Frame, API_VERSIONS_MAX};

/// A byte stream to a broker (TCP today; TLS wraps the same trait).
pub(crate) trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// What a connection needs to know, fixed for its life.
#[derive(Clone, Debug)]
pub(crate) struct ConnectionConfig {
    /// Broker id (negative for bootstrap connections) and address, for errors and tracing.
    pub(crate) label: Arc<str>,
    pub(crate) client_id: StrBytes,
    pub(crate) request_timeout: Duration,
    pub(crate) max_response_size: usize,
    /// The broker's request and connection counters (metrics/client.rs), shared by every
    /// connection to that broker.
    pub(crate) stats: Arc<crate::metrics::client::BrokerStats>,
}

/// The feature levels the cluster finalized (KIP-584), e.g. `transaction.version`, with the
/// epoch of that state: brokers learn of a change one by one, so the highest epoch is the
/// newest view.
#[derive(Clone, Debug, Default)]
pub(crate) struct FinalizedFeatures {
    pub(crate) epoch: i64,
    pub(crate) levels: Vec<(String, i16)>,
}

impl FinalizedFeatures {
    /// The finalized level of `name`; 0 (the feature is off) when not listed.
    pub(crate) fn level(&self, name: &str) -> i16 {
        self.levels
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, l)| *l)
    }
}

/// A request in flight: who waits for its response and until when.
struct Pending {
    correlation_id: i32,
    deadline: Instant,
    /// `Some(version)` for a Fetch at that version: its response is read with each record
    /// set in a buffer of its own (`protocol/fetch_split.rs`).
    split_fetch: Option<i16>,
    reply: oneshot::Sender<Result<Reply>>,
}

/// A response as the reader task hands it over: the frame from the correlation id on and, for
/// a split Fetch, its record sets (null in `frame`), in wire order.
struct Reply {
    frame: Bytes,
    record_sets: Vec<Option<Bytes>>,
}

/// A frame on its way to the writer task.
struct Outgoing {
    frame: Frame,
    /// `None` for requests the broker does not answer (Produce with acks=0).
    pending: Option<Pending>,
}

/// What the writer task receives.
enum Msg {
    /// A frame to write. `bypass` frames are written even while the connection is held.
    Send { out: Outgoing, bypass: bool },
    /// Hold back every later non-`bypass` frame (re-authentication has begun).
    Hold,
    /// Write the held frames, in order, and stop holding.
    Release,
}

/// State shared by the handle and both tasks.
struct Shared {
    label: Arc<str>,
    /// In-flight requests in wire order. Appended only by the writer task, popped by the reader.
    in_flight: Mutex<VecDeque<Pending>>,
    /// The first fatal error; set once, never cleared.
    poison: OnceLock<Error>,
    /// Wakes the writer task so it stops once the connection is poisoned.
    stop_writer: Notify,
    stats: Arc<crate::metrics::client::BrokerStats>,
}

impl Shared {
    /// Marks the connection unusable and fails every request in flight with the shared cause.
    /// Returns the stored error (the first cause wins if two tasks race).
    fn poison(&self, cause: Error) -> Error {
        let err = self
            .poison
            .get_or_init(|| {
                warn!(broker = %self.label, error = %cause, "connection poisoned");
                self.stats.disconnected();
                Error::Disconnected {
                    broker: self.label.clone(),
                    cause: Arc::new(cause),
                }
            })
            .clone();
        // The poison is set before draining, and the writer checks it under the same lock
        // before appending, so no request can slip in after the drain and wait forever.
        let drained: Vec<Pending> = self.in_flight.lock().unwrap().drain(..).collect();
        for p in drained {
            let _ = p.reply.send(Err(err.clone()));
        }
        self.stop_writer.notify_one();
        err
    }

    fn poisoned(&self) -> Option<Error> {
        self.poison.get().cloned()
    }
}

/// A handle to one broker connection. Cheap to share behind an `Arc`; requests from many tasks
/// are pipelined on it.
pub(crate) struct Connection {
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<Msg>,
    next_correlation_id: AtomicI32,
    versions: OnceLock<ApiVersionTable>,
    /// The cluster's finalized features as this broker reported them (ApiVersions v3+).
    features: OnceLock<FinalizedFeatures>,
    cfg: ConnectionConfig,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
    /// The re-authentication timer (`security/reauth.rs`), when the broker set a session
    /// lifetime.
    reauth: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        // The tasks are owned by this handle: nothing else may keep a socket open.
        self.reader.abort();
        self.writer.abort();
        if let Some(t) = self.reauth.get_mut().unwrap().take() {
            t.abort();
        }
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("broker", &self.cfg.label)
            .finish()
    }
}

impl Connection {
    /// Starts the reader and writer tasks on `stream`. No handshake: see [`Connection::connect`].
    pub(crate) fn start(stream: impl Stream, cfg: ConnectionConfig) -> Connection {
        let (read, write) = tokio::io::split(stream);
        let shared = Arc::new(Shared {
            label: cfg.label.clone(),
            in_flight: Mutex::new(VecDeque::new()),
            poison: OnceLock::new(),
            stop_writer: Notify::new(),
            stats: cfg.stats.clone(),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_loop(read, shared.clone(), cfg.max_response_size));
        let writer = tokio::spawn(write_loop(write, rx, shared.clone()));
        Connection {
            shared,
            tx,
            next_correlation_id: AtomicI32::new(1),
            versions: OnceLock::new(),
            features: OnceLock::new(),
            cfg,
            reader,
            writer,
            reauth: Mutex::new(None),
        }
    }

    /// Starts the connection and negotiates API versions within `timeout`.
    pub(crate) async fn connect(
        stream: impl Stream,
        cfg: ConnectionConfig,
        timeout: Duration,
    ) -> Result<Connection> {
        let conn = Connection::start(stream, cfg);
        let label = conn.cfg.label.clone();
        match tokio::time::timeout(timeout, conn.negotiate()).await {
            Ok(Ok(())) => Ok(conn),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Timeout {
                operation: format!("ApiVersions handshake with {label}").into(),
                after: timeout,
                last: None,
            }),
        }
    }

    pub(crate) fn label(&self) -> &Arc<str> {
        &self.cfg.label
    }

    /// Whether the connection can still carry requests.
    pub(crate) fn is_usable(&self) -> bool {
        self.shared.poison.get().is_none() && !self.reader.is_finished()
    }

    /// The highest version of `api` both sides support.
    pub(crate) fn version(&self, api: ApiKey) -> Result<i16> {
        match self.versions.get() {
            Some(t) => t.pick(api, &self.cfg.label),
            None => Err(Error::protocol("API versions not negotiated yet")),
        }
    }

    /// The broker's own version range for `api` from its ApiVersions answer (`None` before
    /// the handshake or when it does not list the API): for requests the client speaks
    /// beyond kafka-protocol's range (`protocol/share_v2.rs`), which [`version`](Self::version)
    /// would cap.
    pub(crate) fn broker_range(&self, api: ApiKey) -> Option<(i16, i16)> {
        self.versions.get()?.broker_range(api)
    }

    /// The cluster's finalized features as this broker reported them in ApiVersions (v3+;
    /// `None` before the handshake or from older brokers).
    pub(crate) fn finalized_features(&self) -> Option<&FinalizedFeatures> {
        self.features.get()
    }

    /// Sends `req` at the negotiated version and waits for its response.
    pub(crate) async fn send<R: Request>(&self, req: &R) -> Result<R::Response> {
        let api = api_key::<R>()?;
        let version = self.version(api)?;
        self.call(req, version, self.cfg.request_timeout).await
    }

    /// Sends `req` at `version`, waits up to `timeout` for the response, and decodes it.
    /// A response that does not decode poisons the connection.
    pub(crate) async fn call<R: Request>(
        &self,
        req: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response> {
        self.call_encoded::<R>(version, timeout, |correlation_id, client_id| {
            protocol::encode_request(req, version, correlation_id, client_id).map(Frame::Whole)
        })
        .await
    }

    /// Like [`call`](Self::call) for a request of type `R` that `encode` writes itself
    /// (given the correlation id and client id): the producer's Produce frames, whose record
    /// batches are spliced in rather than copied.
    pub(crate) async fn call_encoded<R: Request>(
        &self,
        version: i16,
        timeout: Duration,
        encode: impl FnOnce(i32, &StrBytes) -> Result<Frame>,
    ) -> Result<R::Response> {
        let api = api_key::<R>()?;
        let frame = self
            .roundtrip(api, version, timeout, (false, None), encode)
            .await?
            .frame;
        protocol::decode_response::<R>(frame, version).map_err(|e| self.shared.poison(e))
    }

    /// Sends a Fetch at `version` and waits up to `timeout` for its response, which is read
    /// off the socket with each partition's record set in a buffer of its own (see
    /// `protocol/fetch_split.rs` for why), so each is freed as soon as the application has
    /// its records.
    pub(crate) async fn fetch(
        &self,
        req: &FetchRequest,
        version: i16,
        timeout: Duration,
    ) -> Result<FetchResponse> {
        let reply = self
            .roundtrip(
                ApiKey::Fetch,
                version,
                timeout,
                (false, Some(version)),
                |correlation_id, client_id| {
                    protocol::encode_request(req, version, correlation_id, client_id)
                        .map(Frame::Whole)
                },
            )
            .await?;
        let mut resp = protocol::decode_response::<FetchRequest>(reply.frame, version)
            .map_err(|e| self.shared.poison(e))?;
        fetch_split::attach(&mut resp, reply.record_sets).map_err(|e| self.shared.poison(e))?;
        Ok(resp)
    }

    /// Sends a frame `encode` writes for `api` at `version` and decodes the answer (the frame
    /// from the correlation id on) with `decode`: for versions kafka-protocol cannot encode
    /// or decode itself (`protocol/share_v2.rs`). A response that does not decode poisons
    /// the connection, as in [`call`](Self::call).
    pub(crate) async fn call_raw<T>(
        &self,
        api: ApiKey,
        version: i16,
        timeout: Duration,
        encode: impl FnOnce(i32, &StrBytes) -> Result<Frame>,
        decode: impl FnOnce(Bytes) -> Result<T>,
    ) -> Result<T> {
        let frame = self
            .roundtrip(api, version, timeout, (false, None), encode)
            .await?
            .frame;
        decode(frame).map_err(|e| self.shared.poison(e))
    }

    /// Like [`call`](Self::call), for the SASL exchange: the frame is written even while the
    /// connection is held for re-authentication ([`Connection::hold`]).
    pub(crate) async fn call_auth<R: Request>(
        &self,
        req: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response> {
        let api = api_key::<R>()?;
        let frame = self
            .roundtrip(
                api,
                version,
                timeout,
                (true, None),
                |correlation_id, client_id| {
                    protocol::encode_request(req, version, correlation_id, client_id)
                        .map(Frame::Whole)
                },
            )
            .await?
            .frame;
        protocol::decode_response::<R>(frame, version).map_err(|e| self.shared.poison(e))
    }

    /// Starts holding back requests: every frame queued from now on, except the SASL
    /// exchange's own ([`call_auth`](Self::call_auth)), waits in the writer task until
    /// [`release`](Self::release). Frames queued before are written first, so they keep their
    /// place. Kafka needs this for re-authentication (KIP-368): once it has read a
    /// SaslHandshake on an authenticated connection, it reads the next frames as
    /// SaslAuthenticate and closes the connection on anything else. Requests already in
    /// flight are safe: the broker answers them before it reads the handshake.
    pub(crate) fn hold(&self) {
        let _ = self.tx.send(Msg::Hold);
    }

    /// Ends [`hold`](Self::hold): the held frames are written in the order they were queued.
    pub(crate) fn release(&self) {
        let _ = self.tx.send(Msg::Release);
    }

    /// Closes the connection with `cause`: every request in flight or held fails with it.
    pub(crate) fn close_with(&self, cause: Error) {
        self.shared.poison(cause);
    }

    /// Gives the connection its re-authentication timer, aborted when the connection drops.
    pub(crate) fn set_reauth_task(&self, task: JoinHandle<()>) {
        if let Some(old) = self.reauth.lock().unwrap().replace(task) {
            old.abort();
        }
    }

    /// Sends a frame that `encode` writes (given the correlation id and client id) without
    /// waiting for an answer: for requests the broker never answers (Produce with acks=0).
    /// Resolves once the frame is queued for the writer.
    pub(crate) fn send_unanswered(
        &self,
        encode: impl FnOnce(i32, &StrBytes) -> Result<Frame>,
    ) -> Result<()> {
        if let Some(e) = self.shared.poisoned() {
            return Err(e);
        }
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::Relaxed);
        let frame = encode(correlation_id, &self.cfg.client_id)?;
        self.cfg.stats.unanswered_request();
        self.tx
            .send(Msg::Send {
                out: Outgoing {
                    frame,
                    pending: None,
                },
                bypass: false,
            })
            .map_err(|_| self.closed_error())
    }

    /// Encodes, queues and awaits one request; returns the raw response (the frame from the
    /// correlation id on). `(bypass, split_fetch)`: written while the connection is held
    /// ([`hold`](Self::hold)); the Fetch version whose response is read split
    /// ([`fetch`](Self::fetch)).
    async fn roundtrip(
        &self,
        api: ApiKey,
        version: i16,
        timeout: Duration,
        (bypass, split_fetch): (bool, Option<i16>),
        encode: impl FnOnce(i32, &StrBytes) -> Result<Frame>,
    ) -> Result<Reply> {
        if let Some(e) = self.shared.poisoned() {
            return Err(e);
        }
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::Relaxed);
        let span = tracing::debug_span!(
            "kafka_request",
            api = protocol::api_name(api),
            version,
            broker = %self.cfg.label,
            correlation_id
        );
        async move {
            let frame = encode(correlation_id, &self.cfg.client_id)?;
            let (reply, rx) = oneshot::channel();
            let timer = self.cfg.stats.request();
            let deadline = Instant::now() + timeout;
            let pending = Pending {
                correlation_id,
                deadline,
                split_fetch,
                reply,
            };
            self.tx
                .send(Msg::Send {
                    out: Outgoing {
                        frame,
                        pending: Some(pending),
                    },
                    bypass,
                })
                .map_err(|_| self.closed_error())?;
            match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(result)) => result.inspect(|_| timer.answered()),
                // The writer or reader dropped the sender: the connection went away.
                Ok(Err(_)) => Err(self.closed_error()),
                Err(_) => Err(self.on_timeout(api, version, timeout)),
            }
        }
        .instrument(span)
        .await
    }

    /// A request timed out. Kafka answers in order, so if the *oldest* request on the
    /// connection is past its deadline, nothing more will come back in time: the connection is
    /// stuck (a half-open socket, a hung broker) and is poisoned so the pool reconnects. A
    /// request that timed out behind a slower, still-valid one only fails itself; its late
    /// response will be read and discarded.
    fn on_timeout(&self, api: ApiKey, version: i16, timeout: Duration) -> Error {
        let err = Error::Timeout {
            operation: format!(
                "{} v{version} to {}",
                protocol::api_name(api),
                self.cfg.label
            )
            .into(),
            after: timeout,
            last: None,
        };
        let head_expired = self
            .shared
            .in_flight
            .lock()
            .unwrap()
            .front()
            .is_some_and(|p| p.deadline <= Instant::now());
        if head_expired {
            self.shared.poison(err.clone());
        }
        err
    }

    #[cfg(test)]
    pub(crate) fn poison_for_tests(&self, cause: Error) {
        self.shared.poison(cause);
    }

    fn closed_error(&self) -> Error {
        self.shared
            .poisoned()
            .unwrap_or_else(|| Error::Disconnected {
                broker: self.cfg.label.clone(),
                cause: Arc::new(Error::Closed),
            })
    }

    /// ApiVersions negotiation. Starts at the highest version this crate speaks; on
    /// UNSUPPORTED_VERSION it retries lower: at the broker's own maximum when the error body
    /// decodes (Kafka answers with a v0 body listing its range), otherwise one step down
    /// (librdkafka's mock cluster answers v3 with a body that fits no version).
    pub(crate) async fn negotiate(&self) -> Result<()> {
        let mut version = API_VERSIONS_MAX;
        loop {
            let req = ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str(protocol::SOFTWARE_NAME))
                .with_client_software_version(StrBytes::from_static_str(
                    protocol::SOFTWARE_VERSION,
                ));
            let mut frame = self
                .roundtrip(
                    ApiKey::ApiVersions,
                    version,
                    self.cfg.request_timeout,
                    (false, None),
                    |correlation_id, client_id| {
                        protocol::encode_request(&req, version, correlation_id, client_id)
                            .map(Frame::Whole)
                    },
                )
                .await?
                .frame;
            // ApiVersions responses always use header v0: just the correlation id.
            frame.advance(4);
            if frame.len() < 2 {
                return Err(self
                    .shared
                    .poison(Error::protocol("empty ApiVersions response")));
            }
            let code = i16::from_be_bytes([frame[0], frame[1]]);
            if code == KafkaCode::UnsupportedVersion.code() {
                // Kafka answers with a v0 body listing its range; the mock cluster's body is
                // not v0 at all (read as v0 it claims ~90 M entries, which the bounds pre-pass
                // refuses instead of reserving 537 MB).
                let next = protocol::decode_body::<ApiVersionsResponse>(
                    ApiKey::ApiVersions,
                    &mut frame.clone(),
                    0,
                )
                .ok()
                .and_then(|r| {
                    r.api_keys
                        .iter()
                        .find(|k| k.api_key == ApiKey::ApiVersions as i16)
                        .map(|k| k.max_version)
                })
                .filter(|&max| (0..version).contains(&max))
                .unwrap_or(version - 1);
                debug!(broker = %self.cfg.label, tried = version, next, "ApiVersions stepping down");
                if next < 0 {
                    return Err(Error::UnsupportedApi {
                        api: "ApiVersions",
                        broker: self.cfg.label.clone(),
                    });
                }
                version = next;
                continue;
            }
            let resp = protocol::decode_body::<ApiVersionsResponse>(
                ApiKey::ApiVersions,
                &mut frame,
                version,
            )
            .map_err(|e| self.shared.poison(e))?;
            Error::check_code(resp.error_code, None, || {
                format!("ApiVersions v{version} to {}", self.cfg.label)
            })?;
            let table = ApiVersionTable::from_ranges(
                resp.api_keys
                    .iter()
                    .map(|k| (k.api_key, k.min_version, k.max_version)),
            );
            // Once per connection: the version chosen for every API the client uses.
            debug!(
                broker = %self.cfg.label,
                version,
                apis = %protocol::negotiated_summary(&table, version),
                "API versions negotiated"
            );
            let _ = self.versions.set(table);
            if version >= 3 {
                let _ = self.features.set(FinalizedFeatures {
                    epoch: resp.finalized_features_epoch,
                    levels: resp
                        .finalized_features
                        .iter()
                        .map(|f| (f.name.to_string(), f.max_version_level))
                        .collect(),
                });
            }
            return Ok(());
        }
    }
}

fn api_key<R: Request>() -> Result<ApiKey> {
    ApiKey::try_from(R::KEY).map_err(|_| Error::protocol(format!("unknown API key {}", R::KEY)))
}

/// Writer task: writes queued frames to the socket, all frames waiting at a wakeup at once.
/// Registers each frame's pending entry right before writing it, so the in-flight queue is in
/// wire order. Between [`Msg::Hold`] and [`Msg::Release`] only `bypass` frames are written;
/// the others wait here, and since their pending entries are registered only when they are
/// written, the in-flight queue stays in wire order.
async fn write_loop<W: AsyncWrite + Unpin>(
    mut write: W,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    shared: Arc<Shared>,
) {
    let mut gather = Vec::new();
    let mut batch = Vec::with_capacity(64);
    let mut ready: Vec<Outgoing> = Vec::with_capacity(64);
    let mut held: VecDeque<Outgoing> = VecDeque::new();
    let mut holding = false;
    loop {
        tokio::select! {
            n = rx.recv_many(&mut batch, 64) => if n == 0 { return },
            _ = shared.stop_writer.notified() => return,
        }
        for msg in batch.drain(..) {
            match msg {
                Msg::Send { out, bypass } if holding && !bypass => held.push_back(out),
                Msg::Send { out, .. } => ready.push(out),
                Msg::Hold => holding = true,
                Msg::Release => {
                    holding = false;
                    ready.extend(held.drain(..));
                }
            }
        }
        if ready.is_empty() {
            continue;
        }
        {
            let mut in_flight = shared.in_flight.lock().unwrap();
            for o in ready.iter_mut() {
                if let Some(p) = o.pending.take() {
                    if let Some(e) = shared.poison.get() {
                        let _ = p.reply.send(Err(e.clone()));
                        continue;
                    }
                    in_flight.push_back(p);
                }
            }
        }
        if shared.poison.get().is_some() {
            return;
        }
        let result = write_frames(&mut write, &ready, &mut gather).await;
        ready.clear();
        if let Err(e) = result {
            shared.poison(Error::from(e));
            return;
        }
    }
}

/// Chunks shorter than this are gathered into one buffer on streams without vectored writes.
const GATHER_LIMIT: usize = 64 * 1024;

/// Writes every chunk of `frames` in order and flushes.
///
/// On a stream with vectored writes (TCP) the chunks go to the kernel as they are, in as few
/// `writev` calls as it takes: a Produce request's record batches are never copied in user
/// space after encoding. Other streams (the tests' in-memory pipes; TLS, which copies to
/// encrypt anyway) get small chunks gathered into `gather` and large ones written directly, as
/// a 64 KiB `BufWriter` would.
async fn write_frames<W: AsyncWrite + Unpin>(
    write: &mut W,
    frames: &[Outgoing],
    gather: &mut Vec<u8>,
) -> std::io::Result<()> {
    let chunks = frames
        .iter()
        .flat_map(|o| o.frame.chunks())
        .filter(|c| !c.is_empty());
    if write.is_write_vectored() {
        let mut slices: Vec<IoSlice<'_>> = chunks.map(|c| IoSlice::new(c)).collect();
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            let n = write.write_vectored(rest).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut rest, n);
        }
    } else {
        for chunk in chunks {
            if chunk.len() >= GATHER_LIMIT {
                if !gather.is_empty() {
                    write.write_all(gather).await?;
                    gather.clear();
                }
                write.write_all(chunk).await?;
                continue;
            }
            gather.extend_from_slice(chunk);
            if gather.len() >= GATHER_LIMIT {
                write.write_all(gather).await?;
                gather.clear();
            }
        }
        if !gather.is_empty() {
            write.write_all(gather).await?;
            gather.clear();
        }
    }
    write.flush().await
}

/// Reader task: reads length-prefixed frames and hands each to the head of the queue.
async fn read_loop<R: AsyncRead + Unpin + Send>(read: R, shared: Arc<Shared>, max_size: usize) {
    let mut input = BufReader::with_capacity(64 * 1024, read);
    loop {
        let cause = match read_reply(&mut input, &shared, max_size).await {
            Ok((correlation_id, reply)) => match deliver(&shared, correlation_id, reply) {
                Ok(()) => continue,
                Err(e) => e,
            },
            Err(e) => e,
        };
        shared.poison(cause);
        return;
    }
}

/// Reads one response: its size (checked before any allocation for the body) and correlation
/// id, then the rest, split when the head of the queue is a Fetch that asked for it.
async fn read_reply<R: AsyncRead + Unpin + Send>(
    input: &mut R,
    shared: &Shared,
    max_size: usize,
) -> Result<(i32, Reply)> {
    let size = match input.read_u32().await {
        Ok(n) => n as u64,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(Error::Io(Arc::new(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed by broker",
            ))))
        }
        Err(e) => return Err(e.into()),
    };
    if size > max_size as u64 {
        return Err(Error::FrameTooLarge {
            size,
            limit: max_size,
        });
    }
    if size < 4 {
        return Err(Error::protocol(format!(
            "response frame of {size} bytes is too short for a correlation id"
        )));
    }
    let size = size as usize;
    let mut id = [0; 4];
    if input.read_exact(&mut id).await.is_err() {
        return Err(Error::Io(Arc::new(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("connection closed mid-frame (0 of {size} bytes)"),
        ))));
    }
    let correlation_id = i32::from_be_bytes(id);
    // Only the head can match (Kafka answers in order); a mismatch fails in `deliver`.
    let split = shared
        .in_flight
        .lock()
        .unwrap()
        .front()
        .filter(|p| p.correlation_id == correlation_id)
        .and_then(|p| p.split_fetch);
    if let Some(version) = split {
        let header_version = ApiKey::Fetch.response_header_version(version);
        let split = fetch_split::read_body(input, id, size - 4, header_version, version).await?;
        return Ok((
            correlation_id,
            Reply {
                frame: split.skeleton,
                record_sets: split.record_sets,
            },
        ));
    }
    let mut buf = BytesMut::with_capacity(size);
    buf.extend_from_slice(&id);
    let mut body = input.take(size as u64 - 4);
    while buf.len() < size {
        if body.read_buf(&mut buf).await? == 0 {
            return Err(Error::Io(Arc::new(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "connection closed mid-frame ({} of {size} bytes)",
                    buf.len()
                ),
            ))));
        }
    }
    Ok((
        correlation_id,
        Reply {
            frame: buf.freeze(),
            record_sets: Vec::new(),
        },
    ))
}

/// Matches a response to the oldest in-flight request.
fn deliver(shared: &Shared, correlation_id: i32, reply: Reply) -> Result<()> {
    let head = shared.in_flight.lock().unwrap().pop_front();
    match head {
        Some(p) if p.correlation_id == correlation_id => {
            // The caller may have timed out or been cancelled; its response is dropped here.
            let _ = p.reply.send(Ok(reply));
            Ok(())
        }
        Some(p) => {
            let expected = p.correlation_id;
            // Put it back so poisoning fails it along with the others.
            shared.in_flight.lock().unwrap().push_front(p);
            Err(Error::protocol(format!(
                "response correlation id {correlation_id} does not match the oldest request ({expected})"
            )))
        }
        None => Err(Error::protocol(format!(
            "unsolicited response with correlation id {correlation_id}"
        ))),
    }
}

#[cfg(test)]
#[path = "connection_tests.rs"]
mod tests;
