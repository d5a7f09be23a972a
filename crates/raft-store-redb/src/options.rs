//! [`RedbOptions`]: what a user of redb tunes, with defaults for a raft log.

/// Options of a [`RedbEngine`](crate::RedbEngine).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
#[non_exhaustive]
pub struct RedbOptions {
    /// redb's page cache, in bytes. Default 64 MiB: a raft log is read mostly near its tail,
    /// so a small cache serves it; raise it for a large state machine in the same store.
    pub cache_size: usize,
    /// Verify every page checksum when the store opens. Default `true`: a file damaged while the
    /// store was closed is then refused at open with an error instead of being trusted (an
    /// unverified open of a damaged redb file may panic). The check reads the whole file, so a
    /// very large store opens more slowly.
    pub verify_on_open: bool,
    /// redb's quick repair: save the allocator state with every commit so reopening after a
    /// crash is instant, at the price of slower commits. Default `false` (a crash then costs a
    /// full repair on the next open, the same walk as `verify_on_open`).
    pub quick_repair: bool,
    /// redb's two-phase commit: two fsyncs per durable commit instead of one, which also guards
    /// against a crafted crash pattern (see redb's docs). Default `false`: one fsync per group,
    /// and a torn commit is still detected by redb's checksums.
    pub two_phase_commit: bool,
}

impl Default for RedbOptions {
    fn default() -> Self {
        Self {
            cache_size: 64 << 20,
            verify_on_open: true,
            quick_repair: false,
            two_phase_commit: false,
        }
    }
}

impl RedbOptions {
    /// Set the cache size in bytes.
    #[must_use]
    pub fn cache_size(mut self, bytes: usize) -> Self {
        self.cache_size = bytes;
        self
    }

    /// Verify page checksums at open (or not).
    #[must_use]
    pub fn verify_on_open(mut self, on: bool) -> Self {
        self.verify_on_open = on;
        self
    }

    /// Enable or disable quick repair.
    #[must_use]
    pub fn quick_repair(mut self, on: bool) -> Self {
        self.quick_repair = on;
        self
    }

    /// Enable or disable two-phase commit.
    #[must_use]
    pub fn two_phase_commit(mut self, on: bool) -> Self {
        self.two_phase_commit = on;
        self
    }
}
