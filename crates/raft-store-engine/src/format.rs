//! The format record: written on a store's first open, checked on every open.
//!
//! Its encoding is fixed forever so any later release can read the version before anything else:
//!
//! ```text
//! "raft-store" | version: u32 BE | crc32c of the rest: u32 BE | len: u8, backend | len: u8, codec
//!              | len: u8, openraft line (version 2 and later)
//!              | len: u8, layout (version 3 and later)
//! ```
//!
//! Version 1 records (written before raft-store had a glue for more than one openraft line)
//! name no line: every one of them was written by the openraft 0.10 glue, so that is what they
//! are read as. Records before version 3 name no layout: they are all single-group stores.
//!
//! A single-group store (and each group of a multi-group store, under its key prefix) is still
//! written as version 2, so a store this build writes opens with the builds before it. A
//! multi-group store's own record is version 3, with layout [`layout::GROUPS`]: builds before
//! it refuse it as too new instead of reading its prefixed keys as one group's.

use crate::engine::Batch;
use crate::engine::Durability;
use crate::engine::Engine;
use crate::engine::KeyRange;
use crate::engine::Space;
use crate::error::FormatError;

/// The newest store format this build reads; a multi-group store's record is written with it.
pub const STORE_FORMAT_VERSION: u32 = 3;

/// The format version a single-group store (and each group of a multi-group store) is written
/// with: its layout is the same as before layouts were named, so older builds open it.
pub const SINGLE_GROUP_FORMAT_VERSION: u32 = 2;

/// How a store lays out its keys, as its format record names it (version 3 and later; earlier
/// records are [`SINGLE`](layout::SINGLE)).
pub mod layout {
    /// One raft group: log keys are the log index, meta keys their names.
    pub const SINGLE: &str = "single";
    /// Many raft groups: every key of a group is the byte `g`, the group id (8 bytes
    /// big-endian) and then the key a single-group store would use; `G` and the id name a
    /// group that exists.
    pub const GROUPS: &str = "groups";
}

/// The openraft release line whose types a store's entries, vote and log ids are encoded with.
///
/// The two lines' types differ (0.10's are generic over the type config, 0.9's over the node
/// id), and whether one line's bytes decode as the other's depends on the application's own
/// type config, so a store is opened only by the glue of the line that wrote it; a 0.9 store
/// moves to 0.10 with `raft_store_core::migrate::openraft_0_9_to_0_10`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OpenraftLine {
    /// openraft 0.9, the stable line.
    V0_9,
    /// openraft 0.10, the pre-release line.
    V0_10,
}

impl OpenraftLine {
    /// How the format record names the line: `"0.9"` or `"0.10"`.
    pub fn name(self) -> &'static str {
        match self {
            OpenraftLine::V0_9 => "0.9",
            OpenraftLine::V0_10 => "0.10",
        }
    }
}

impl std::fmt::Display for OpenraftLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "openraft {}", self.name())
    }
}

/// Meta keys of the raft state. Each value is an envelope (see [`crate::codec`]).
pub mod meta_key {
    /// The last saved vote.
    pub const VOTE: &[u8] = b"vote";
    /// The last saved committed log id.
    pub const COMMITTED: &[u8] = b"committed";
    /// The last purged log id.
    pub const PURGED: &[u8] = b"purged";
    /// The format record.
    pub const FORMAT: &[u8] = b"format";
}

const MAGIC: &[u8] = b"raft-store";

/// What the format record says about a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatRecord {
    /// The store format version.
    pub version: u32,
    /// The backend that created the store.
    pub backend: String,
    /// The codec of its values.
    pub codec: String,
    /// The openraft line of its entries ([`OpenraftLine::name`]); `"0.10"` for a version 1
    /// record, which names none. Empty for a multi-group store, whose groups each name their own.
    pub openraft: String,
    /// How the store lays out its keys ([`layout`]); [`layout::SINGLE`] for a record before
    /// version 3, which names none.
    pub layout: String,
}

impl FormatRecord {
    /// Encode the record.
    pub fn encode(&self) -> Vec<u8> {
        let mut rest = Vec::new();
        let names: &[&String] = if self.version >= 3 {
            &[&self.backend, &self.codec, &self.openraft, &self.layout]
        } else if self.version >= 2 {
            &[&self.backend, &self.codec, &self.openraft]
        } else {
            &[&self.backend, &self.codec]
        };
        for name in names {
            // Names are short constants; cut defensively so the length always fits a byte.
            let bytes = &name.as_bytes()[..name.len().min(255)];
            rest.push(bytes.len() as u8);
            rest.extend_from_slice(bytes);
        }
        let mut out = Vec::with_capacity(MAGIC.len() + 8 + rest.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&crc32c::crc32c(&rest).to_be_bytes());
        out.extend_from_slice(&rest);
        out
    }

    /// Decode a record. A version newer than `STORE_FORMAT_VERSION` is reported before anything
    /// else is checked, since a newer format may lay out the rest differently.
    pub fn decode(backend: &'static str, bytes: &[u8]) -> Result<Self, FormatError> {
        let corrupt = |reason: String| FormatError::Corrupt {
            backend,
            space: Space::Meta,
            reason,
        };
        let rest = bytes
            .strip_prefix(MAGIC)
            .ok_or_else(|| corrupt("format record does not start with the raft-store magic".into()))?;
        let Some((version, rest)) = rest.split_first_chunk::<4>() else {
            return Err(corrupt("format record is truncated before its version".into()));
        };
        let version = u32::from_be_bytes(*version);
        if version > STORE_FORMAT_VERSION {
            return Err(FormatError::FormatTooNew {
                backend,
                found: version,
                supported: STORE_FORMAT_VERSION,
            });
        }
        let Some((crc, rest)) = rest.split_first_chunk::<4>() else {
            return Err(corrupt("format record is truncated before its checksum".into()));
        };
        if u32::from_be_bytes(*crc) != crc32c::crc32c(rest) {
            return Err(corrupt("format record checksum mismatch".into()));
        }
        let (name_a, rest) = take_name(rest).ok_or_else(|| corrupt("format record backend name".into()))?;
        let (name_b, rest) = take_name(rest).ok_or_else(|| corrupt("format record codec name".into()))?;
        let (line, rest) = if version >= 2 {
            take_name(rest).ok_or_else(|| corrupt("format record openraft line".into()))?
        } else {
            (OpenraftLine::V0_10.name().to_string(), rest)
        };
        let (layout, rest) = if version >= 3 {
            take_name(rest).ok_or_else(|| corrupt("format record layout".into()))?
        } else {
            (layout::SINGLE.to_string(), rest)
        };
        if !rest.is_empty() {
            return Err(corrupt("format record has trailing bytes".into()));
        }
        Ok(FormatRecord {
            version,
            backend: name_a,
            codec: name_b,
            openraft: line,
            layout,
        })
    }
}

fn take_name(bytes: &[u8]) -> Option<(String, &[u8])> {
    let (&len, rest) = bytes.split_first()?;
    let len = usize::from(len);
    if rest.len() < len {
        return None;
    }
    let (name, rest) = rest.split_at(len);
    Some((String::from_utf8(name.to_vec()).ok()?, rest))
}

/// Check the format record of the store in `engine`, or write one if the store is new.
///
/// A store that holds raft data but no record was not written by this crate and is refused; so
/// is a store whose directory says it was initialized but whose record is gone (lost files),
/// and one whose meta keyspace holds a key this crate never writes (a damaged key).
///
/// A store written by the glue of another openraft line than `line` is refused
/// ([`FormatError::WrongOpenraftLine`]).
pub fn check_or_init<E: Engine>(
    engine: &E,
    codec: &'static str,
    line: OpenraftLine,
) -> Result<FormatRecord, FormatError> {
    let record = check_or_write(engine, codec, line)?;
    refuse_unknown_keys(
        engine,
        Space::Meta,
        &[
            meta_key::VOTE,
            meta_key::COMMITTED,
            meta_key::PURGED,
            meta_key::FORMAT,
        ],
    )?;
    if let Some(dir) = engine.store_dir() {
        dir.mark_initialized()?;
    }
    Ok(record)
}

fn check_or_write<E: Engine>(
    engine: &E,
    codec: &'static str,
    line: OpenraftLine,
) -> Result<FormatRecord, FormatError> {
    let backend = engine.backend();
    if let Some(record) = read_record(engine, layout::SINGLE)? {
        if record.codec != codec {
            return Err(FormatError::WrongCodec {
                backend,
                found: record.codec,
                expected: codec,
            });
        }
        if record.openraft != line.name() {
            return Err(FormatError::WrongOpenraftLine {
                backend,
                found: record.openraft,
                expected: line,
            });
        }
        return Ok(record);
    }
    write_new_record(
        engine,
        FormatRecord {
            version: SINGLE_GROUP_FORMAT_VERSION,
            backend: backend.to_string(),
            codec: codec.to_string(),
            openraft: line.name().to_string(),
            layout: layout::SINGLE.to_string(),
        },
    )
}

/// The store's format record, if it has one, checked to name this backend and `layout`.
fn read_record<E: Engine>(engine: &E, layout: &'static str) -> Result<Option<FormatRecord>, FormatError> {
    let backend = engine.backend();
    let Some(bytes) = engine.get(Space::Meta, meta_key::FORMAT)? else {
        return Ok(None);
    };
    let record = FormatRecord::decode(backend, &bytes)?;
    if record.backend != backend {
        return Err(FormatError::WrongBackend {
            backend,
            found: record.backend,
        });
    }
    if record.layout != layout {
        return Err(FormatError::WrongLayout {
            backend,
            found: record.layout,
            expected: layout,
        });
    }
    Ok(Some(record))
}

/// Write `record` as the record of a new store, durably: refused for a directory that says it
/// was initialized (its record is lost) and for an engine that already holds raft data.
fn write_new_record<E: Engine>(engine: &E, record: FormatRecord) -> Result<FormatRecord, FormatError> {
    if let Some(dir) = engine.store_dir().filter(|d| d.is_initialized()) {
        return Err(FormatError::FormatRecordLost {
            backend: engine.backend(),
            path: dir.path().to_path_buf(),
        });
    }
    refuse_data_without_record(engine)?;
    let mut batch = Batch::new();
    batch.put(Space::Meta, meta_key::FORMAT, record.encode());
    engine.write(&batch, Durability::Durable)?;
    Ok(record)
}

/// Refuse a store without a format record that holds raft data (log entries or meta records):
/// it was not written by this crate.
fn refuse_data_without_record<E: Engine>(engine: &E) -> Result<(), FormatError> {
    for space in [Space::Log, Space::Meta] {
        let mut any = false;
        engine.scan(space, KeyRange::ALL, &mut |_, _| {
            any = true;
            std::ops::ControlFlow::Break(())
        })?;
        if any {
            return Err(FormatError::NoFormatRecord {
                backend: engine.backend(),
            });
        }
    }
    Ok(())
}

/// Check the format record of the multi-group store in `engine`, or write one if the store is
/// new (version [`STORE_FORMAT_VERSION`], layout [`layout::GROUPS`]).
///
/// Refused as [`check_or_init`] refuses: another backend, data without a record, a record lost
/// from an initialized directory; and a single-group store ([`FormatError::WrongLayout`]).
/// Each group then keeps a record of its own (codec, openraft line) under its key prefix.
pub fn check_or_init_groups<E: Engine>(engine: &E) -> Result<FormatRecord, FormatError> {
    let record = match read_record(engine, layout::GROUPS)? {
        Some(record) => record,
        None => write_new_record(
            engine,
            FormatRecord {
                version: STORE_FORMAT_VERSION,
                backend: engine.backend().to_string(),
                codec: String::new(),
                openraft: String::new(),
                layout: layout::GROUPS.to_string(),
            },
        )?,
    };
    if let Some(dir) = engine.store_dir() {
        dir.mark_initialized()?;
    }
    Ok(record)
}

/// Refuse a store whose `space` holds a key outside `known`. Such a key is a known record
/// whose key bytes were damaged on disk (engines without checksums of their own, like LMDB,
/// hand it back as it is): the record itself is then missing under its name, and opening
/// would silently go on without it (a vote forgotten, a state machine emptied). Scans the
/// space, which holds a handful of records.
pub fn refuse_unknown_keys<E: Engine>(engine: &E, space: Space, known: &[&[u8]]) -> Result<(), FormatError> {
    let mut unknown = None;
    engine.scan(space, KeyRange::ALL, &mut |key, _| {
        if known.contains(&key) {
            std::ops::ControlFlow::Continue(())
        } else {
            unknown = Some(key.to_vec());
            std::ops::ControlFlow::Break(())
        }
    })?;
    match unknown {
        None => Ok(()),
        Some(key) => Err(FormatError::Corrupt {
            backend: engine.backend(),
            space,
            reason: format!(
                "unknown record key {:?} (known: {}): a damaged key hides a record, so the store is not opened without it",
                String::from_utf8_lossy(&key),
                known
                    .iter()
                    .map(|k| String::from_utf8_lossy(k).into_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

#[cfg(test)]
mod tests;
