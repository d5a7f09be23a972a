//! The connections of one listener: admitted up to a cap, the longest-idle one evicted for a
//! newcomer, idle ones closed after the idle timeout, and every closing logged (rate-limited).

use std::collections::HashMap;
use std::fmt;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::task::Context;
use std::task::Poll;
use std::time::Duration;
use std::time::Instant;

use futures::task::AtomicWaker;
use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use super::ConnLimits;
use super::Timeout;

/// How a listener refuses a connection when every admitted one is busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refuse {
    /// Answer `503` with a JSON `{"error": ...}` body, then close.
    Http,
    /// Close at once (gRPC: an HTTP/2 client takes a closed connection as `UNAVAILABLE`).
    Close,
}

/// At most this many refused connections are answered at once; beyond that they are closed
/// unanswered, so a flood of refusals cannot take the files the cap saves.
const REFUSAL_ANSWERS: usize = 32;
/// How long answering one refused connection may take, draining included.
const REFUSAL_TIME: Duration = Duration::from_secs(2);
/// After `accept` failed (out of files, a connection reset while queued), the pause before the
/// next try, so the loop never spins.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// Log lines per second a listener prints about its connections; the rest are counted.
const LOG_LINES_PER_SEC: u32 = 5;

/// The connections of one listener (see the module docs). Shared by its accept loop and by
/// every [`Conn`].
pub struct Tracker {
    what: String,
    limits: ConnLimits,
    max: usize,
    /// The setting `max` comes from, for messages.
    setting: &'static str,
    refuse: Refuse,
    sweep_every: Duration,
    table: Mutex<Table>,
    answers: Arc<Semaphore>,
    log: RateLog,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    conns: HashMap<u64, Entry>,
    last_sweep: Option<Instant>,
}

struct Entry {
    peer: SocketAddr,
    /// Requests in progress (HTTP/1 has one at most, HTTP/2 any number).
    busy: usize,
    idle_since: Instant,
    closer: Arc<Closer>,
}

impl Tracker {
    /// The tracker of a listener named `what` in logs (e.g. `API 127.0.0.1:8080`), admitting
    /// `max` connections (the value of `setting`).
    pub fn new(
        what: impl Into<String>,
        limits: ConnLimits,
        (max, setting): (usize, &'static str),
        refuse: Refuse,
    ) -> Arc<Tracker> {
        Arc::new(Tracker {
            what: what.into(),
            limits,
            max: max.max(1),
            setting,
            refuse,
            // Idle connections are closed within a tenth of their timeout of it.
            sweep_every: (limits.idle_timeout / 10).clamp(Duration::from_millis(20), Duration::from_secs(1)),
            table: Mutex::new(Table::default()),
            answers: Arc::new(Semaphore::new(REFUSAL_ANSWERS)),
            log: RateLog::default(),
        })
    }

    /// The limits this listener applies.
    pub fn limits(&self) -> &ConnLimits {
        &self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // A panic while holding the table leaves it consistent (every update is one statement).
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Print one line about a connection, unless this listener printed too many this second.
    pub fn log(&self, message: fmt::Arguments<'_>) {
        self.log.line(&self.what, message);
    }

    /// Accept the next connection `listener` admits. Meanwhile close idle connections past
    /// their timeout, and refuse (or answer with 503) connections over the cap when none is
    /// idle. Never returns an error: a failed `accept` is logged and tried again.
    pub async fn accept(self: &Arc<Self>, listener: &TcpListener) -> (TcpStream, Conn) {
        loop {
            let next_sweep = {
                let table = self.lock();
                table
                    .last_sweep
                    .map_or_else(Instant::now, |at| at + self.sweep_every)
            };
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        match self.admit(peer) {
                            Some(conn) => return (stream, conn),
                            None => self.refuse(stream, peer),
                        }
                    }
                    Err(e) => {
                        // Out of files (EMFILE, ENFILE): an idle connection gives one back.
                        let out_of_files = [nix::errno::Errno::EMFILE, nix::errno::Errno::ENFILE]
                            .iter()
                            .any(|&errno| e.raw_os_error() == Some(errno as i32));
                        let freed = if out_of_files {
                            self.evict_longest_idle("the process is out of open files")
                        } else {
                            false
                        };
                        self.log(format_args!(
                            "accepting a connection: {e}{}",
                            if freed { "; closed the longest-idle connection" } else { "" }
                        ));
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
                () = tokio::time::sleep_until(next_sweep.into()) => self.sweep(),
            }
        }
    }

    /// Admit a connection from `peer`, evicting the longest-idle one at the cap; `None` if every
    /// admitted connection is busy.
    fn admit(self: &Arc<Self>, peer: SocketAddr) -> Option<Conn> {
        let mut table = self.lock();
        let mut evicted = None;
        if table.conns.len() >= self.max {
            let victim = longest_idle(&table)?;
            evicted = table.conns.remove(&victim);
        }
        let id = table.next_id;
        table.next_id += 1;
        let closer = Arc::new(Closer::default());
        table.conns.insert(
            id,
            Entry {
                peer,
                busy: 0,
                idle_since: Instant::now(),
                closer: closer.clone(),
            },
        );
        drop(table);
        if let Some(entry) = evicted {
            entry.closer.close();
            self.log(format_args!(
                "closed the connection from {} (idle {:.1?}) to admit one from {peer}: at the cap of {} \
                 connections ({})",
                entry.peer,
                entry.idle_since.elapsed(),
                self.max,
                self.setting
            ));
        }
        Some(Conn(Arc::new(ConnShared {
            id,
            peer,
            tracker: self.clone(),
            closer,
        })))
    }

    /// Close the longest-idle connection, if any is idle.
    fn evict_longest_idle(&self, why: &str) -> bool {
        let mut table = self.lock();
        let Some(entry) = longest_idle(&table).and_then(|id| table.conns.remove(&id)) else {
            return false;
        };
        drop(table);
        entry.closer.close();
        self.log(format_args!(
            "closed the idle connection from {}: {why}",
            entry.peer
        ));
        true
    }

    fn refuse(&self, mut stream: TcpStream, peer: SocketAddr) {
        let message = format!(
            "too many connections: all {} connections of this listener are busy ({}); try again later",
            self.max, self.setting
        );
        self.log(format_args!("refused the connection from {peer}: {message}"));
        if self.refuse == Refuse::Close {
            return;
        }
        let Ok(permit) = self.answers.clone().try_acquire_owned() else {
            return;
        };
        tokio::spawn(async move {
            let _permit = permit;
            let body = serde_json::json!({ "error": message }).to_string();
            let answer = format!(
                "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 retry-after: 1\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tokio::time::timeout(REFUSAL_TIME, async {
                if stream.write_all(answer.as_bytes()).await.is_ok() {
                    let _ = stream.shutdown().await;
                    // Read what the client sent, so closing does not reset the connection
                    // before the client read the answer.
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = stream.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                }
            })
            .await;
        });
    }

    /// Close the idle connections past their timeout.
    fn sweep(&self) {
        let now = Instant::now();
        let mut closed = Vec::new();
        {
            let mut table = self.lock();
            table.last_sweep = Some(now);
            let limit = self.limits.idle_timeout;
            table.conns.retain(|_, entry| {
                let expired = entry.busy == 0 && now.duration_since(entry.idle_since) >= limit;
                if expired {
                    entry.closer.close();
                    closed.push(entry.peer);
                }
                !expired
            });
        }
        for peer in closed {
            self.log(format_args!(
                "closed the connection from {peer}: idle for {} (idle_timeout)",
                Timeout(self.limits.idle_timeout)
            ));
        }
        self.log.flush(&self.what);
    }
}

/// The idle entry idle for longest.
fn longest_idle(table: &Table) -> Option<u64> {
    table
        .conns
        .iter()
        .filter(|(_, e)| e.busy == 0)
        .min_by_key(|(_, e)| e.idle_since)
        .map(|(&id, _)| id)
}

/// The signal that closes a connection: whoever serves it waits for [`Conn::closed`].
#[derive(Default)]
struct Closer {
    closed: AtomicBool,
    waker: AtomicWaker,
}

impl Closer {
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.waker.wake();
    }

    fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.closed.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        if self.closed.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// One admitted connection. Clones share it; when the last is dropped the connection leaves
/// its listener's count.
#[derive(Clone)]
pub struct Conn(Arc<ConnShared>);

struct ConnShared {
    id: u64,
    peer: SocketAddr,
    tracker: Arc<Tracker>,
    closer: Arc<Closer>,
}

impl Drop for ConnShared {
    fn drop(&mut self) {
        self.tracker.lock().conns.remove(&self.id);
    }
}

impl Conn {
    /// The limits of the connection's listener.
    pub fn limits(&self) -> &ConnLimits {
        self.0.tracker.limits()
    }

    /// Mark a request in progress until the returned guard is dropped: the connection is then
    /// neither evicted nor closed as idle.
    pub fn busy(&self) -> Busy {
        if let Some(entry) = self.0.tracker.lock().conns.get_mut(&self.0.id) {
            entry.busy += 1;
        }
        Busy(self.clone())
    }

    /// Close the connection now (whoever serves it sees [`Conn::closed`] complete), logging
    /// why.
    pub fn close(&self, why: fmt::Arguments<'_>) {
        self.0.tracker.lock().conns.remove(&self.0.id);
        self.0.closer.close();
        self.0
            .tracker
            .log(format_args!("closed the connection from {}: {why}", self.0.peer));
    }

    /// Completes once the connection is to be closed: evicted, idle too long, or closed by
    /// [`Conn::close`].
    pub async fn closed(&self) {
        poll_fn(|cx| self.poll_closed(cx)).await;
    }

    /// [`Conn::closed`] as a poll, for I/O types.
    pub fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.closer.poll_closed(cx)
    }

    /// Print one line about this connection through its listener's rate-limited log.
    pub fn log(&self, message: fmt::Arguments<'_>) {
        self.0
            .tracker
            .log(format_args!("connection from {}: {message}", self.0.peer));
    }
}

/// A request in progress on a connection (see [`Conn::busy`]).
pub struct Busy(Conn);

impl Drop for Busy {
    fn drop(&mut self) {
        let shared = &self.0.0;
        if let Some(entry) = shared.tracker.lock().conns.get_mut(&shared.id) {
            entry.busy = entry.busy.saturating_sub(1);
            if entry.busy == 0 {
                entry.idle_since = Instant::now();
            }
        }
    }
}

/// At most [`LOG_LINES_PER_SEC`] lines a second; what is left out is counted and reported with
/// the next line or sweep.
#[derive(Default)]
struct RateLog {
    state: Mutex<RateState>,
}

#[derive(Default)]
struct RateState {
    window: Option<Instant>,
    printed: u32,
    suppressed: u64,
}

impl RateLog {
    fn line(&self, what: &str, message: fmt::Arguments<'_>) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Self::roll(&mut state, what);
        if state.printed < LOG_LINES_PER_SEC {
            state.printed += 1;
            tracing::warn!(target: "raft_kv::connections", listener = what, "{message}");
        } else {
            state.suppressed += 1;
        }
    }

    fn flush(&self, what: &str) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Self::roll(&mut state, what);
    }

    /// Start a new window if a second has passed, reporting what the last one left out.
    fn roll(state: &mut RateState, what: &str) {
        let now = Instant::now();
        if state
            .window
            .is_some_and(|start| now.duration_since(start) < Duration::from_secs(1))
        {
            return;
        }
        if state.suppressed > 0 {
            tracing::warn!(
                target: "raft_kv::connections",
                listener = what,
                "{} more connection messages in the last second (rate-limited)",
                state.suppressed
            );
        }
        *state = RateState {
            window: Some(now),
            printed: 0,
            suppressed: 0,
        };
    }
}
