//! The floor: what no durable log on this disk can beat.

use std::fs::File;
use std::fs::OpenOptions;
use std::io;
use std::io::Write;
use std::path::Path;
use std::path::PathBuf;

use crate::Target;

/// Bytes a store writes per entry beyond the payload: an 8-byte key, the 5-byte envelope
/// (version and CRC) and about 16 bytes of log id and entry framing. The floor writes the same.
const PER_ENTRY_OVERHEAD: usize = 8 + 5 + 16;

/// The same bytes appended to a plain file, one `write` then one `fdatasync` per append.
pub struct Floor {
    path: PathBuf,
    file: File,
    appended: u64,
}

impl Floor {
    /// A floor file in `dir` (created if missing).
    pub fn new(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("floor.log");
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(Self {
            path,
            file,
            appended: 0,
        })
    }
}

impl Target for Floor {
    fn name(&self) -> &'static str {
        "floor"
    }

    fn supports(&self, op: &crate::Op) -> bool {
        // A plain file can only append: no reads, truncates, purges or reopens of a log.
        match op {
            crate::Op::Append { .. } | crate::Op::Pipelined { .. } => true,
            crate::Op::GetLog { .. }
            | crate::Op::TruncateLast { .. }
            | crate::Op::Purge { .. }
            | crate::Op::Reopen { .. } => false,
        }
    }

    fn append(&mut self, n: u64, size: usize) -> io::Result<()> {
        let count = usize::try_from(n).map_err(io::Error::other)?;
        self.file
            .write_all(&vec![b'x'; (size + PER_ENTRY_OVERHEAD) * count])?;
        self.file.sync_data()?;
        self.appended += n;
        Ok(())
    }

    fn append_pipelined(&mut self, n: u64, size: usize) -> io::Result<()> {
        // A plain file has no group commit: every append pays its own sync.
        for _ in 0..n {
            self.append(1, size)?;
        }
        Ok(())
    }

    fn last_index(&self) -> u64 {
        self.appended
    }

    fn disk_bytes(&self) -> io::Result<Option<u64>> {
        crate::allocated_bytes(&self.path).map(Some)
    }
}
