//! Control of a mount, in this process or from another one through its control socket.
//!
//! The socket speaks one command per line and answers one line: `ok[ payload]` or
//! `err message`. Commands: `cut`, `cut prefix SEED`, `cut subset SEED`, `fail-fsync N`,
//! `tear-fsync N`,
//! `space BYTES|none`, `fail-read START END PATH`, `clear`, `sync`, `stats`.

use std::io::{BufRead, BufReader, Write};
use std::ops::Range;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::error::Error;
use crate::faults::{CutMode, Stats};
use crate::fs::lock;
use crate::state::State;

/// One control command.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Command {
    Cut(CutMode),
    FailFsync(u64),
    TearFsync(u64),
    Space(Option<u64>),
    FailRead(PathBuf, Range<u64>),
    Clear,
    SyncAll,
    Stats,
}

impl Command {
    fn encode(&self) -> Result<String, Error> {
        Ok(match self {
            Command::Cut(CutMode::DropAll) => "cut".to_string(),
            Command::Cut(CutMode::TornPrefix { seed }) => format!("cut prefix {seed}"),
            Command::Cut(CutMode::TornSubset { seed }) => format!("cut subset {seed}"),
            Command::FailFsync(n) => format!("fail-fsync {n}"),
            Command::TearFsync(n) => format!("tear-fsync {n}"),
            Command::Space(Some(n)) => format!("space {n}"),
            Command::Space(None) => "space none".to_string(),
            Command::FailRead(path, range) => {
                let path = path
                    .to_str()
                    .filter(|p| !p.contains('\n'))
                    .ok_or_else(|| Error::BadPath {
                        path: path.clone(),
                        reason: "not sendable: not UTF-8 or has a newline",
                    })?;
                format!("fail-read {} {} {path}", range.start, range.end)
            }
            Command::Clear => "clear".to_string(),
            Command::SyncAll => "sync".to_string(),
            Command::Stats => "stats".to_string(),
        })
    }

    fn parse(line: &str) -> Option<Command> {
        let mut words = line.splitn(4, ' ');
        let word = words.next()?;
        let mut num = || words.next().and_then(|w| w.parse::<u64>().ok());
        Some(match word {
            "cut" => match line.split(' ').nth(1) {
                None => Command::Cut(CutMode::DropAll),
                Some("prefix") => Command::Cut(CutMode::TornPrefix {
                    seed: line.split(' ').nth(2)?.parse().ok()?,
                }),
                Some("subset") => Command::Cut(CutMode::TornSubset {
                    seed: line.split(' ').nth(2)?.parse().ok()?,
                }),
                Some(_) => return None,
            },
            "fail-fsync" => Command::FailFsync(num()?),
            "tear-fsync" => Command::TearFsync(num()?),
            "space" if line == "space none" => Command::Space(None),
            "space" => Command::Space(Some(num()?)),
            "fail-read" => {
                let start = num()?;
                let end = num()?;
                Command::FailRead(PathBuf::from(words.next()?), start..end)
            }
            "clear" => Command::Clear,
            "sync" => Command::SyncAll,
            "stats" => Command::Stats,
            _ => return None,
        })
    }

    /// Runs the command on the state; the reply's payload, or why it failed.
    fn run(self, state: &Mutex<State>) -> Result<String, String> {
        let mut state = lock(state);
        match self {
            Command::Cut(mode) => state.cut(mode).map_err(|e| format!("cut failed: {e}"))?,
            Command::FailFsync(n) => state.faults.fail_fsync_in = (n > 0).then_some(n),
            Command::TearFsync(n) => state.faults.tear_at_fsync = (n > 0).then_some(n),
            Command::Space(budget) => state.faults.space_left = budget,
            Command::FailRead(path, range) => state.faults.bad_reads.push((path, range)),
            Command::Clear => state.faults = crate::faults::Faults::default(),
            Command::SyncAll => state
                .tree
                .sync_all()
                .map_err(|e| format!("sync failed: errno {}", e.code()))?,
            Command::Stats => return Ok(encode_stats(&state.stats())),
        }
        Ok(String::new())
    }
}

fn encode_stats(s: &Stats) -> String {
    format!(
        "fsyncs={} dir_syncs={} failed_fsyncs={} bytes_written={} volatile_bytes={} cuts={} \
         torn_fsyncs={}",
        s.fsyncs, s.dir_syncs, s.failed_fsyncs, s.bytes_written, s.volatile_bytes, s.cuts, s.torn_fsyncs
    )
}

fn decode_stats(line: &str) -> Option<Stats> {
    let mut s = Stats::default();
    for pair in line.split(' ') {
        let (key, value) = pair.split_once('=')?;
        let value: u64 = value.parse().ok()?;
        match key {
            "fsyncs" => s.fsyncs = value,
            "dir_syncs" => s.dir_syncs = value,
            "failed_fsyncs" => s.failed_fsyncs = value,
            "bytes_written" => s.bytes_written = value,
            "volatile_bytes" => s.volatile_bytes = value,
            "cuts" => s.cuts = value,
            "torn_fsyncs" => s.torn_fsyncs = value,
            _ => {} // a newer server's counter
        }
    }
    Some(s)
}

/// Where a [`Control`] sends its commands.
#[derive(Clone)]
enum Target {
    Local(Arc<Mutex<State>>),
    Socket(PathBuf),
}

/// Arms faults and cuts the power of one mount: in this process (from
/// [`FaultFs::control`](crate::FaultFs::control)) or from any process through the mount's
/// control socket ([`Control::connect`]). Every call takes effect before it returns.
#[derive(Clone)]
pub struct Control {
    target: Target,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.target {
            Target::Local(_) => f.write_str("Control(local)"),
            Target::Socket(path) => write!(f, "Control({})", path.display()),
        }
    }
}

impl Control {
    pub(crate) fn local(state: Arc<Mutex<State>>) -> Self {
        Control {
            target: Target::Local(state),
        }
    }

    /// A client of the mount whose control socket is at `socket` (see
    /// [`FaultFs::control_socket`](crate::FaultFs::control_socket)). Connects on each call.
    pub fn connect(socket: impl Into<PathBuf>) -> Self {
        Control {
            target: Target::Socket(socket.into()),
        }
    }

    /// Cuts the power: every change not yet durable is dropped, the backing directory holds
    /// exactly what a power cut leaves, and the mount goes on showing that state. Handles open
    /// before the cut fail with EIO from then on.
    pub fn cut_power(&self) -> Result<(), Error> {
        self.cut(CutMode::DropAll)
    }

    /// Cuts the power, keeping what `mode` says of the dirty data pages.
    pub fn cut(&self, mode: CutMode) -> Result<(), Error> {
        self.run(Command::Cut(mode)).map(drop)
    }

    /// Fails the `n`-th file fsync or fdatasync from now (1 = the next) with EIO, dropping
    /// that file's dirty data as Linux does; a later fsync of it succeeds. 0 disarms.
    pub fn fail_fsync(&self, n: u64) -> Result<(), Error> {
        self.run(Command::FailFsync(n)).map(drop)
    }

    /// The power goes at the `n`-th fsync or fdatasync from now (1 = the next) of a file with
    /// two dirty pages or more, before it syncs anything: in write order, the dirty pages
    /// written before that file's last one reach the disk, that page and any written after it
    /// do not, so the write the fsync was for is torn off at its end (a record spanning the
    /// page boundary is left half on disk). The fsync fails with EIO, and from then on so do
    /// opens and creates, so nothing the process does after the cut reaches the disk, until
    /// [`clear_faults`](Self::clear_faults). [`Stats::torn_fsyncs`] counts these cuts. 0
    /// disarms.
    pub fn tear_at_fsync(&self, n: u64) -> Result<(), Error> {
        self.run(Command::TearFsync(n)).map(drop)
    }

    /// Writes may add `bytes` more bytes (a write is cut short at the limit), then fail with
    /// ENOSPC; `None` lifts the limit.
    pub fn space_budget(&self, bytes: Option<u64>) -> Result<(), Error> {
        self.run(Command::Space(bytes)).map(drop)
    }

    /// Reads of `file` (relative to the mount root) that touch `range` fail with EIO.
    pub fn fail_reads(&self, file: impl AsRef<Path>, range: Range<u64>) -> Result<(), Error> {
        self.run(Command::FailRead(file.as_ref().to_path_buf(), range))
            .map(drop)
    }

    /// Disarms every fault, and lets opens through again after the power went at an fsync
    /// ([`tear_at_fsync`](Self::tear_at_fsync)).
    pub fn clear_faults(&self) -> Result<(), Error> {
        self.run(Command::Clear).map(drop)
    }

    /// Makes everything durable, as a clean shutdown would.
    pub fn sync_all(&self) -> Result<(), Error> {
        self.run(Command::SyncAll).map(drop)
    }

    /// The counters.
    pub fn stats(&self) -> Result<Stats, Error> {
        let payload = self.run(Command::Stats)?;
        decode_stats(&payload).ok_or(Error::Protocol { reply: payload })
    }

    fn run(&self, command: Command) -> Result<String, Error> {
        match &self.target {
            Target::Local(state) => {
                let name = command.encode()?;
                command.run(state).map_err(|message| Error::Command {
                    command: name,
                    message,
                })
            }
            Target::Socket(path) => {
                let control = |source| Error::Control {
                    path: path.clone(),
                    source,
                };
                let line = command.encode()?;
                let mut stream = UnixStream::connect(path).map_err(control)?;
                stream
                    .write_all(format!("{line}\n").as_bytes())
                    .map_err(control)?;
                let mut reply = String::new();
                BufReader::new(stream).read_line(&mut reply).map_err(control)?;
                let reply = reply.trim_end_matches('\n');
                if let Some(payload) = reply.strip_prefix("ok") {
                    Ok(payload.trim_start().to_string())
                } else if let Some(message) = reply.strip_prefix("err ") {
                    Err(Error::Command {
                        command: line,
                        message: message.to_string(),
                    })
                } else {
                    Err(Error::Protocol {
                        reply: reply.to_string(),
                    })
                }
            }
        }
    }
}

/// The thread that serves a mount's control socket.
pub(crate) struct Server {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Listens on `path` (replacing a stale socket file) for commands on `state`.
    pub(crate) fn start(path: PathBuf, state: Arc<Mutex<State>>) -> Result<Server, Error> {
        let control = |source| Error::Control {
            path: path.clone(),
            source,
        };
        if path.exists() {
            std::fs::remove_file(&path).map_err(control)?;
        }
        let listener = UnixListener::bind(&path).map_err(control)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("faultfs-control".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        // One thread per connection, so a client that stays connected never
                        // holds up another one or the shutdown.
                        let state = state.clone();
                        let _ = std::thread::Builder::new()
                            .name("faultfs-control-conn".into())
                            .spawn(move || serve(stream, &state));
                    }
                }
            })
            .map_err(control)?;
        Ok(Server {
            path,
            stop,
            thread: Some(thread),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// Answers every command of one connection.
fn serve(stream: UnixStream, state: &Mutex<State>) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { return };
        let reply = match Command::parse(&line) {
            None => format!("err unknown command: {line}"),
            Some(command) => match command.run(state) {
                Ok(payload) if payload.is_empty() => "ok".to_string(),
                Ok(payload) => format!("ok {payload}"),
                Err(message) => format!("err {}", message.replace('\n', " ")),
            },
        };
        if writer.write_all(format!("{reply}\n").as_bytes()).is_err() {
            return;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept; the thread sees the flag and ends.
        let woke = UnixStream::connect(&self.path).is_ok();
        if let Some(thread) = self.thread.take()
            && woke
        {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_through_their_text() {
        let commands = [
            Command::Cut(CutMode::DropAll),
            Command::Cut(CutMode::TornPrefix { seed: 7 }),
            Command::Cut(CutMode::TornSubset { seed: u64::MAX }),
            Command::FailFsync(3),
            Command::TearFsync(5),
            Command::Space(Some(4096)),
            Command::Space(None),
            Command::FailRead(PathBuf::from("dir/a file"), 10..20),
            Command::Clear,
            Command::SyncAll,
            Command::Stats,
        ];
        for command in commands {
            let line = command.encode().unwrap();
            assert_eq!(Command::parse(&line), Some(command), "{line}");
        }
        assert_eq!(Command::parse("cut sideways 1"), None);
        assert_eq!(Command::parse("space"), None);
    }

    #[test]
    fn stats_round_trip_through_their_text() {
        let stats = Stats {
            fsyncs: 1,
            dir_syncs: 2,
            failed_fsyncs: 3,
            bytes_written: 4,
            volatile_bytes: 5,
            cuts: 6,
            torn_fsyncs: 7,
        };
        assert_eq!(decode_stats(&encode_stats(&stats)), Some(stats));
    }
}
