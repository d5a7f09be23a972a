//! [`SledOptions`]: sled's knobs, with the flush interval off so durability is ours.

/// How sled lays out its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum SledMode {
    /// sled's `LowSpace`: rewrite fragmented segments sooner, for less disk use.
    LowSpace,
    /// sled's `HighThroughput`: fewer rewrites, more disk use.
    HighThroughput,
}

/// Options of a [`SledEngine`](crate::SledEngine).
///
/// sled's own periodic flush (`flush_every_ms`) is always off: the core's flusher decides when
/// data becomes durable, and [`SledEngine`](crate::SledEngine) completes each sync with a real
/// `fsync` (see its docs for why sled's flush alone is not enough).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
#[non_exhaustive]
pub struct SledOptions {
    /// sled's page cache capacity in bytes. Default 64 MiB (sled's own default is 1 GiB, which
    /// a raft log read near its tail does not need; sled's memory use grows past this figure).
    pub cache_capacity: u64,
    /// Space or throughput. Default [`SledMode::LowSpace`], against sled 0.34's known disk growth.
    pub mode: SledMode,
}

impl Default for SledOptions {
    fn default() -> Self {
        Self {
            cache_capacity: 64 << 20,
            mode: SledMode::LowSpace,
        }
    }
}

impl SledOptions {
    /// Set the cache capacity in bytes.
    #[must_use]
    pub fn cache_capacity(mut self, bytes: u64) -> Self {
        self.cache_capacity = bytes;
        self
    }

    /// Set the mode.
    #[must_use]
    pub fn mode(mut self, mode: SledMode) -> Self {
        self.mode = mode;
        self
    }
}
