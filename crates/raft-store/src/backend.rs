//! [`Backend`]: the engines compiled into this build, chosen by name.

use std::fmt;
use std::str::FromStr;

/// Every backend raft-store knows, with its cargo feature (the same word as its name).
pub const ALL_BACKENDS: [&str; 5] = ["redb", "lmdb", "rocksdb", "sled", "mem"];

/// A storage engine compiled into this build. Only the variants whose cargo feature is on exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// redb (feature `redb`, the default).
    #[cfg(feature = "redb")]
    Redb,
    /// LMDB through heed (feature `lmdb`).
    #[cfg(feature = "lmdb")]
    Lmdb,
    /// RocksDB (feature `rocksdb`).
    #[cfg(feature = "rocksdb")]
    Rocksdb,
    /// sled 0.34, experimental (feature `sled`).
    #[cfg(feature = "sled")]
    Sled,
    /// The in-memory engine: nothing survives the process (feature `mem`).
    #[cfg(feature = "mem")]
    Mem,
    /// No backend is compiled in: the crate's `compile_error!` says which features to turn on,
    /// and this keeps that the only error.
    #[doc(hidden)]
    #[cfg(not(any(
        feature = "redb",
        feature = "lmdb",
        feature = "rocksdb",
        feature = "sled",
        feature = "mem"
    )))]
    NoBackend(std::convert::Infallible),
}

impl Backend {
    /// Every backend compiled into this build.
    pub fn compiled() -> Vec<Backend> {
        vec![
            #[cfg(feature = "redb")]
            Backend::Redb,
            #[cfg(feature = "lmdb")]
            Backend::Lmdb,
            #[cfg(feature = "rocksdb")]
            Backend::Rocksdb,
            #[cfg(feature = "sled")]
            Backend::Sled,
            #[cfg(feature = "mem")]
            Backend::Mem,
        ]
    }

    /// The backend's name, which is also its cargo feature.
    pub fn name(self) -> &'static str {
        match self {
            #[cfg(feature = "redb")]
            Backend::Redb => "redb",
            #[cfg(feature = "lmdb")]
            Backend::Lmdb => "lmdb",
            #[cfg(feature = "rocksdb")]
            Backend::Rocksdb => "rocksdb",
            #[cfg(feature = "sled")]
            Backend::Sled => "sled",
            #[cfg(feature = "mem")]
            Backend::Mem => "mem",
            #[cfg(not(any(
                feature = "redb",
                feature = "lmdb",
                feature = "rocksdb",
                feature = "sled",
                feature = "mem"
            )))]
            Backend::NoBackend(never) => match never {},
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A backend name that is unknown, or known but not compiled into this build.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The name is one of raft-store's backends, but its cargo feature is off.
    #[error("backend `{name}` is not compiled in: enable the cargo feature `{name}` of raft-store")]
    NotCompiled {
        /// The backend asked for (also the feature to enable).
        name: String,
    },
    /// No backend has this name.
    #[error("unknown backend `{name}`: the backends are {}", ALL_BACKENDS.join(", "))]
    Unknown {
        /// The name asked for.
        name: String,
    },
}

impl FromStr for Backend {
    type Err = BackendError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut name = s.trim().to_ascii_lowercase();
        if name == "rocks" {
            name = "rocksdb".into();
        }
        if let Some(b) = Backend::compiled().into_iter().find(|b| b.name() == name) {
            return Ok(b);
        }
        if ALL_BACKENDS.contains(&name.as_str()) {
            Err(BackendError::NotCompiled { name })
        } else {
            Err(BackendError::Unknown { name: s.to_string() })
        }
    }
}

/// A backend is written by its name, as in [`ALL_BACKENDS`].
#[cfg(feature = "serde")]
impl serde::Serialize for Backend {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// A backend is read by its name; a name this build left out is an error naming its feature.
#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Backend {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}
