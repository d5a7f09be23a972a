//! The snapshot file: a header with the snapshot's meta, the key-value records in key order and
//! a trailer with the record count and a CRC32C of everything before it.
//!
//! ```text
//! "RSKVSNP1"                         8 bytes magic
//! meta length (u32 LE), meta         the SnapshotMeta in a checksummed envelope
//! { key length (u32 LE), value length (u32 LE), key, value }*
//! 0xFFFF_FFFF, record count (u64 LE), CRC32C of all bytes before it (u32 LE)
//! ```
//!
//! Writing and reading stream through a small buffer, so a snapshot of any size costs a few
//! kilobytes of memory; lengths read from a file are checked against the bytes left in it
//! before anything is allocated.

use std::fs::File;
use std::io;
use std::io::BufReader;
use std::io::BufWriter;
use std::io::Read;
use std::io::Seek;
use std::io::SeekFrom;
use std::io::Write;
use std::path::Path;
use std::path::PathBuf;

const MAGIC: &[u8; 8] = b"RSKVSNP1";
const END: u32 = u32::MAX;
/// Largest meta record accepted; a real one is a few hundred bytes per member.
const MAX_META: u32 = 16 << 20;

/// The data of a snapshot: an open file plus its path. This is the state machine's
/// `SnapshotData`: the network layer streams it to a follower with [`Read`] and [`Seek`], and a
/// follower receives one into a file made by
/// [`KvStateMachine::receive_snapshot`](super::KvStateMachine::receive_snapshot) with [`Write`].
#[derive(Debug)]
pub struct SnapshotFile {
    file: File,
    path: PathBuf,
}

impl SnapshotFile {
    /// Create (or truncate) a file at `path` to receive a snapshot into.
    pub fn create(path: impl Into<PathBuf>) -> io::Result<Self> {
        let path = path.into();
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        Ok(Self { file, path })
    }

    /// Open an existing snapshot file for reading.
    pub fn open(path: impl Into<PathBuf>) -> io::Result<Self> {
        let path = path.into();
        let file = File::open(&path)?;
        Ok(Self { file, path })
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's length in bytes.
    pub fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// Whether the file holds no byte (a receive that has not started).
    pub fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Make what was written durable (`fsync`).
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_all()
    }

    pub(super) fn into_parts(self) -> (File, PathBuf) {
        (self.file, self.path)
    }
}

impl Read for SnapshotFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read(buf)
    }
}

impl Write for SnapshotFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Seek for SnapshotFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.file.seek(pos)
    }
}

/// openraft 0.9 moves snapshot data through tokio's I/O traits (its `SnapshotData` must be
/// `AsyncRead + AsyncWrite + AsyncSeek`). The file is local and each call moves at most the
/// caller's buffer, so each runs the file operation in place and is ready at once, as tokio's
/// own `std::fs` wrappers would after a hop to a blocking thread.
#[cfg(feature = "openraft-0-9")]
mod tokio_io {
    use std::io;
    use std::io::Read;
    use std::io::Seek;
    use std::io::SeekFrom;
    use std::io::Write;
    use std::pin::Pin;
    use std::task::Context;
    use std::task::Poll;

    use tokio::io::ReadBuf;

    use super::SnapshotFile;

    impl tokio::io::AsyncRead for SnapshotFile {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            let n = this.file.read(buf.initialize_unfilled())?;
            buf.advance(n);
            Poll::Ready(Ok(()))
        }
    }

    impl tokio::io::AsyncWrite for SnapshotFile {
        fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            Poll::Ready(self.get_mut().file.write(buf))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(self.get_mut().file.flush())
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(self.get_mut().file.flush())
        }
    }

    impl tokio::io::AsyncSeek for SnapshotFile {
        fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
            self.get_mut().file.seek(position).map(|_| ())
        }

        fn poll_complete(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<u64>> {
            Poll::Ready(self.get_mut().file.stream_position())
        }
    }
}

/// Why a snapshot file could not be read: its bytes (`Format`) or the file system (`Io`).
#[derive(Debug)]
pub(super) enum ReadError {
    Io(io::Error),
    Format(String),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            ReadError::Format("the file ends early (it was cut short or not fully received)".into())
        } else {
            ReadError::Io(e)
        }
    }
}

/// Streams records into a snapshot file, keeping the running checksum.
pub(super) struct SnapshotWriter {
    out: BufWriter<File>,
    crc: u32,
    records: u64,
    bytes: u64,
}

impl SnapshotWriter {
    /// Start a snapshot file at `path` with an encoded meta record.
    pub(super) fn create(path: &Path, meta: &[u8]) -> io::Result<Self> {
        let file = File::options().write(true).create_new(true).open(path)?;
        let mut w = Self {
            out: BufWriter::with_capacity(256 << 10, file),
            crc: 0,
            records: 0,
            bytes: 0,
        };
        let meta_len = u32::try_from(meta.len())
            .ok()
            .filter(|len| *len <= MAX_META)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "snapshot meta too large"))?;
        w.put(MAGIC)?;
        w.put(&meta_len.to_le_bytes())?;
        w.put(meta)?;
        Ok(w)
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.crc = crc32c::crc32c_append(self.crc, bytes);
        self.bytes += bytes.len() as u64;
        self.out.write_all(bytes)
    }

    /// Append one record. Keys and values must each be shorter than 4 GiB.
    pub(super) fn record(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        let too_long = || io::Error::new(io::ErrorKind::InvalidInput, "key or value of 4 GiB or more");
        let key_len = u32::try_from(key.len())
            .ok()
            .filter(|l| *l != END)
            .ok_or_else(too_long)?;
        let value_len = u32::try_from(value.len()).map_err(|_| too_long())?;
        self.put(&key_len.to_le_bytes())?;
        self.put(&value_len.to_le_bytes())?;
        self.put(key)?;
        self.put(value)?;
        self.records += 1;
        Ok(())
    }

    /// Write the trailer and make the file durable. Returns (records, bytes).
    pub(super) fn finish(mut self) -> io::Result<(u64, u64)> {
        self.put(&END.to_le_bytes())?;
        let records = self.records;
        self.put(&records.to_le_bytes())?;
        let crc = self.crc;
        self.out.write_all(&crc.to_le_bytes())?;
        let file = self.out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        Ok((records, self.bytes + 4))
    }
}

/// One key and its value.
pub(super) type Record = (Vec<u8>, Vec<u8>);

/// Streams records out of a snapshot file, checking lengths against the file and the checksum
/// at the end.
pub(super) struct SnapshotReader {
    inp: BufReader<File>,
    crc: u32,
    /// Bytes of the file not read yet.
    left: u64,
    records: u64,
    done: bool,
}

impl SnapshotReader {
    /// Open the snapshot held by `file` from its first byte; returns the reader and the encoded
    /// meta record.
    pub(super) fn new(mut file: File) -> Result<(Self, Vec<u8>), ReadError> {
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(0))?;
        let mut r = Self {
            inp: BufReader::with_capacity(256 << 10, file),
            crc: 0,
            left: len,
            records: 0,
            done: false,
        };
        let mut magic = [0u8; 8];
        r.take(&mut magic)?;
        if &magic != MAGIC {
            return Err(ReadError::Format(format!(
                "it does not start with the snapshot magic {:?}",
                String::from_utf8_lossy(MAGIC)
            )));
        }
        let meta_len = r.u32()?;
        if meta_len > MAX_META {
            return Err(ReadError::Format(format!(
                "meta record length {meta_len} is above the limit of {MAX_META} bytes"
            )));
        }
        let meta = r.bytes(meta_len)?;
        Ok((r, meta))
    }

    fn take(&mut self, buf: &mut [u8]) -> Result<(), ReadError> {
        if (buf.len() as u64) > self.left {
            return Err(ReadError::Format(format!(
                "the file ends early: {} more bytes needed, {} left",
                buf.len(),
                self.left
            )));
        }
        self.inp.read_exact(buf)?;
        self.left -= buf.len() as u64;
        self.crc = crc32c::crc32c_append(self.crc, buf);
        Ok(())
    }

    fn u32(&mut self) -> Result<u32, ReadError> {
        let mut b = [0u8; 4];
        self.take(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Read `len` bytes; the length was checked against the bytes left before allocating.
    fn bytes(&mut self, len: u32) -> Result<Vec<u8>, ReadError> {
        if u64::from(len) > self.left {
            return Err(ReadError::Format(format!(
                "a length field says {len} bytes follow, but only {} are left in the file",
                self.left
            )));
        }
        let mut v = vec![0u8; len as usize];
        self.take(&mut v)?;
        Ok(v)
    }

    /// The file being read (its position is wherever reading stopped).
    pub(super) fn into_file(self) -> File {
        self.inp.into_inner()
    }

    /// The next record, or `None` after the trailer was read and checked.
    pub(super) fn next_record(&mut self) -> Result<Option<Record>, ReadError> {
        if self.done {
            return Ok(None);
        }
        let key_len = self.u32()?;
        if key_len == END {
            let mut count = [0u8; 8];
            self.take(&mut count)?;
            let count = u64::from_le_bytes(count);
            let expected = self.crc;
            let mut stored = [0u8; 4];
            if self.left < 4 {
                return Err(ReadError::Format("the file ends inside its trailer".into()));
            }
            self.inp.read_exact(&mut stored)?;
            self.left -= 4;
            let stored = u32::from_le_bytes(stored);
            if stored != expected {
                return Err(ReadError::Format(format!(
                    "checksum mismatch: stored {stored:#010x}, computed {expected:#010x}"
                )));
            }
            if count != self.records {
                return Err(ReadError::Format(format!(
                    "the trailer counts {count} records, the file holds {}",
                    self.records
                )));
            }
            if self.left != 0 {
                return Err(ReadError::Format(format!(
                    "{} bytes follow the trailer",
                    self.left
                )));
            }
            self.done = true;
            return Ok(None);
        }
        let value_len = self.u32()?;
        if u64::from(key_len) + u64::from(value_len) > self.left {
            return Err(ReadError::Format(format!(
                "record {} says it holds {} bytes, but only {} are left in the file",
                self.records,
                u64::from(key_len) + u64::from(value_len),
                self.left
            )));
        }
        let key = self.bytes(key_len)?;
        let value = self.bytes(value_len)?;
        self.records += 1;
        Ok(Some((key, value)))
    }
}

#[cfg(test)]
mod tests;
