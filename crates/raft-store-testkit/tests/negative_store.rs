//! Proof that the store-level cases that look at the store's files can fail: a log store that
//! keeps its state in a plain file without checksums must fail `flipped_byte_under_the_store`,
//! while it passes the cases that do not damage anything (so the checksum is what it lacks).

use std::io;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;

use openraft::OptionalSend;
use openraft::RaftLogReader;
use openraft::storage::IOFlushed;
use openraft::storage::LogState;
use openraft::storage::RaftLogStorage;
use openraft::type_config::TypeConfigExt;
use openraft::type_config::alias::EntryOf;
use openraft::type_config::alias::LogIdOf;
use openraft::type_config::alias::VoteOf;
use raft_store_core::Bincode;
use raft_store_core::Codec;
use raft_store_core::LogStore;
use raft_store_core::MemEngine;
use raft_store_testkit::CaseResult;
use raft_store_testkit::EngineStores;
use raft_store_testkit::MemHarness;
use raft_store_testkit::StoreOpener;
use raft_store_testkit::TestConfig;
use raft_store_testkit::log_cases;
use raft_store_testkit::openraft_suite;
use raft_store_testkit::run;

type Inner = LogStore<TestConfig, MemEngine>;

/// Everything the store keeps, written whole to `log.bin` after every change.
#[derive(serde::Serialize, serde::Deserialize)]
struct Image {
    purged: Option<LogIdOf<TestConfig>>,
    vote: Option<VoteOf<TestConfig>>,
    committed: Option<LogIdOf<TestConfig>>,
    entries: Vec<EntryOf<TestConfig>>,
}

/// A sound log store in memory (a [`LogStore`] over a [`MemEngine`]) persisted as a plain
/// bincode image without a checksum: its one defect is that it cannot tell a damaged file.
struct PlainFileStore {
    inner: Inner,
    path: PathBuf,
    /// A second defect, for openraft's suite: the log state never reports a purge.
    forgets_purged: bool,
}

impl PlainFileStore {
    fn open(dir: &Path, forgets_purged: bool) -> io::Result<Self> {
        let mut inner = Inner::open(MemEngine::new())?;
        let path = dir.join("log.bin");
        match std::fs::read(&path) {
            Ok(bytes) => {
                let image: Image =
                    Bincode::decode(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                // Replayed through the inner store's own API, which the image came from.
                run_inline(async {
                    if let Some(purged) = image.purged {
                        inner.purge(purged).await?;
                    }
                    if !image.entries.is_empty() {
                        let (tx, rx) = TestConfig::oneshot();
                        inner.append(image.entries, IOFlushed::signal(tx)).await?;
                        rx.await
                            .map_err(|_| io::Error::other("flush callback dropped"))??;
                    }
                    if let Some(vote) = image.vote {
                        inner.save_vote(&vote).await?;
                    }
                    inner.save_committed(image.committed).await
                })?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(Self {
            inner,
            path,
            forgets_purged,
        })
    }

    /// Write the whole state to the file (no fsync: this store is never power-cut).
    async fn save(&mut self) -> io::Result<()> {
        let state = self.inner.get_log_state().await?;
        let mut reader = self.inner.get_log_reader().await;
        let image = Image {
            purged: state.last_purged_log_id,
            vote: reader.read_vote().await?,
            committed: self.inner.read_committed().await?,
            entries: reader.try_get_log_entries(0..u64::MAX).await?,
        };
        let mut bytes = Vec::new();
        Bincode::encode_into(&image, &mut bytes).map_err(io::Error::other)?;
        std::fs::write(&self.path, bytes)
    }
}

/// Runs the replay on open, which the synchronous `StoreOpener::open` cannot await; the case
/// calls `open` from inside its own runtime, so this runs on a thread of its own.
fn run_inline<F: Future<Output = io::Result<()>> + Send>(fut: F) -> io::Result<()> {
    std::thread::scope(|s| {
        s.spawn(|| run(fut))
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("replay panicked")))
    })
}

impl RaftLogStorage<TestConfig> for PlainFileStore {
    type LogReader = <Inner as RaftLogStorage<TestConfig>>::LogReader;

    async fn get_log_state(&mut self) -> io::Result<LogState<TestConfig>> {
        let mut state = self.inner.get_log_state().await?;
        if self.forgets_purged {
            state.last_purged_log_id = None;
        }
        Ok(state)
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.inner.get_log_reader().await
    }

    async fn save_vote(&mut self, vote: &VoteOf<TestConfig>) -> io::Result<()> {
        self.inner.save_vote(vote).await?;
        self.save().await
    }

    async fn save_committed(&mut self, committed: Option<LogIdOf<TestConfig>>) -> io::Result<()> {
        self.inner.save_committed(committed).await?;
        self.save().await
    }

    async fn read_committed(&mut self) -> io::Result<Option<LogIdOf<TestConfig>>> {
        self.inner.read_committed().await
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TestConfig>) -> io::Result<()>
    where
        I: IntoIterator<Item = EntryOf<TestConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let (tx, rx) = TestConfig::oneshot();
        self.inner.append(entries, IOFlushed::signal(tx)).await?;
        let flushed = match rx.await {
            Ok(result) => result,
            Err(_) => Err(io::Error::other("the inner store dropped its flush callback")),
        };
        // Durable only once the file holds the entries.
        let result = match flushed {
            Ok(()) => self.save().await,
            Err(e) => Err(e),
        };
        callback.io_completed(result);
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogIdOf<TestConfig>>) -> io::Result<()> {
        self.inner.truncate_after(last_log_id).await?;
        self.save().await
    }

    async fn purge(&mut self, log_id: LogIdOf<TestConfig>) -> io::Result<()> {
        self.inner.purge(log_id).await?;
        self.save().await
    }
}

/// Opens [`PlainFileStore`]s; `forgets_purged` adds its second defect.
struct PlainFileStores {
    forgets_purged: bool,
}

const PLAIN: PlainFileStores = PlainFileStores {
    forgets_purged: false,
};

impl StoreOpener for PlainFileStores {
    type Store = PlainFileStore;

    fn open(&self, dir: &Path) -> io::Result<PlainFileStore> {
        PlainFileStore::open(dir, self.forgets_purged)
    }
}

fn assert_passes(name: &str, result: CaseResult) {
    if let Err(e) = result {
        panic!("{name} fails on the plain-file store, which should pass it: {e}");
    }
}

#[test]
fn store_without_checksums_returns_a_changed_entry() {
    // Sound apart from the checksum: it keeps everything across reopens.
    assert_passes(
        "reopen_keeps_entries",
        run(log_cases::reopen_keeps_entries(&PLAIN)),
    );
    assert_passes(
        "reopen_keeps_vote_and_committed",
        run(log_cases::reopen_keeps_vote_and_committed(&PLAIN)),
    );
    assert_passes("purge_then_reopen", run(log_cases::purge_then_reopen(&PLAIN)));
    match run(log_cases::flipped_byte_under_the_store(&PLAIN)) {
        Ok(()) => panic!("flipped_byte_under_the_store did not catch a store without checksums"),
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains("read without an error but"),
                "flipped_byte_under_the_store failed for another reason: {msg}"
            );
            eprintln!("flipped_byte_under_the_store caught it: {msg}");
        }
    }
}

#[test]
fn store_whose_files_hold_no_payload_fails_saying_so() {
    // In-memory stores that survive reopen (one engine per directory) but write no file: the
    // case cannot damage anything and must fail, not pass unchecked.
    let result = run(log_cases::flipped_byte_under_the_store(&EngineStores(
        MemHarness::new(),
    )));
    let msg = result.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        msg.contains("in none of the 0 files") && msg.contains("cannot damage"),
        "expected the case to fail saying it found no payload on disk, got: {msg:?}"
    );
}

/// Whether openraft's `Suite::test_all` passes on the stores of `opener`.
fn passes_test_all<O: StoreOpener>(opener: O) -> bool {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| openraft_suite::run_all(opener))).is_ok()
}

#[test]
fn openraft_test_all_fails_on_a_broken_store() {
    // `openraft_suite::all_cases_at_once` can fail: openraft's `test_all` reaches its purge
    // cases, which check the last purged id, and passes on the same store without the defect.
    assert!(
        passes_test_all(PLAIN),
        "openraft's test_all fails on the plain-file store"
    );
    assert!(
        !passes_test_all(PlainFileStores { forgets_purged: true }),
        "openraft's test_all passed on a store whose log state forgets purges"
    );
}

/// How long [`SlowFlushStore`]'s flush takes after the inner store's: a disk's sync takes
/// milliseconds, long enough for openraft to read the log state in between.
const FLUSH_LATENCY: std::time::Duration = std::time::Duration::from_millis(10);

/// A log store whose flush is slow (the callback fires [`FLUSH_LATENCY`] after the inner
/// store's), with, when `lags` is set, one defect: `get_log_state` reports the last flushed
/// entry, not the last appended one. Its reader returns every appended entry either way.
struct SlowFlushStore {
    inner: Inner,
    /// The last log id whose flush callback fired.
    flushed: Arc<Mutex<Option<LogIdOf<TestConfig>>>>,
    lags: bool,
}

impl RaftLogStorage<TestConfig> for SlowFlushStore {
    type LogReader = <Inner as RaftLogStorage<TestConfig>>::LogReader;

    async fn get_log_state(&mut self) -> io::Result<LogState<TestConfig>> {
        let mut state = self.inner.get_log_state().await?;
        if self.lags {
            state.last_log_id = *lock(&self.flushed);
        }
        Ok(state)
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.inner.get_log_reader().await
    }

    async fn save_vote(&mut self, vote: &VoteOf<TestConfig>) -> io::Result<()> {
        self.inner.save_vote(vote).await
    }

    async fn save_committed(&mut self, committed: Option<LogIdOf<TestConfig>>) -> io::Result<()> {
        self.inner.save_committed(committed).await
    }

    async fn read_committed(&mut self) -> io::Result<Option<LogIdOf<TestConfig>>> {
        self.inner.read_committed().await
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TestConfig>) -> io::Result<()>
    where
        I: IntoIterator<Item = EntryOf<TestConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        let last = entries.last().map(|e| e.log_id);
        let (tx, rx) = TestConfig::oneshot();
        self.inner.append(entries, IOFlushed::signal(tx)).await?;
        let flushed = self.flushed.clone();
        tokio::spawn(async move {
            let result = match rx.await {
                Ok(result) => result,
                Err(_) => Err(io::Error::other("the inner store dropped its flush callback")),
            };
            tokio::time::sleep(FLUSH_LATENCY).await;
            if result.is_ok() {
                let mut flushed = lock(&flushed);
                *flushed = flushed.max(last);
            }
            callback.io_completed(result);
        });
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogIdOf<TestConfig>>) -> io::Result<()> {
        self.inner.truncate_after(last_log_id).await?;
        let mut flushed = lock(&self.flushed);
        *flushed = (*flushed).min(last_log_id);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogIdOf<TestConfig>) -> io::Result<()> {
        self.inner.purge(log_id).await
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Opens [`SlowFlushStore`]s, each over a fresh store in memory (the cases here do not reopen).
struct SlowFlushStores {
    lags: bool,
}

impl StoreOpener for SlowFlushStores {
    type Store = SlowFlushStore;

    fn open(&self, _dir: &Path) -> io::Result<SlowFlushStore> {
        Ok(SlowFlushStore {
            inner: Inner::open(MemEngine::new())?,
            flushed: Arc::new(Mutex::new(None)),
            lags: self.lags,
        })
    }
}

#[test]
fn log_state_leaving_out_unflushed_entries_fails() {
    let sound = SlowFlushStores { lags: false };
    let lagging = SlowFlushStores { lags: true };
    assert_passes(
        "log_state_counts_unflushed_entries",
        run(log_cases::log_state_counts_unflushed_entries(&sound)),
    );
    // The cases that read right after an append read entries, not the log state: they pass
    // on the lagging store too, which is why the case below exists.
    for (name, result) in [
        (
            "readable_when_append_returns",
            run(log_cases::readable_when_append_returns(&lagging)),
        ),
        (
            "reader_sees_contiguous_prefix_during_appends",
            run(log_cases::reader_sees_contiguous_prefix_during_appends(&lagging)),
        ),
    ] {
        assert_passes(name, result);
    }
    match run(log_cases::log_state_counts_unflushed_entries(&lagging)) {
        Ok(()) => panic!("log_state_counts_unflushed_entries passed on a store whose log state lags"),
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains("before its flush callback fired") && msg.contains("must count"),
                "log_state_counts_unflushed_entries failed for another reason: {msg}"
            );
            eprintln!("log_state_counts_unflushed_entries caught it: {msg}");
        }
    }
}
