//! The contents of one regular file: the durable bytes in its backing file plus the volatile
//! pages written since its last fsync, as a page cache would hold them.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// The sector and page size the model works in: torn writes keep or lose whole pages.
pub const PAGE: u64 = 4096;

/// One dirty page: its full current image, and when it was last written (for torn prefixes).
struct Page {
    bytes: Box<[u8]>,
    seq: u64,
}

/// A file's volatile state over its backing file, which holds exactly the durable bytes.
pub(crate) struct FileData {
    /// Length of the backing file, which is what a cut leaves.
    durable_len: u64,
    /// Bytes of the backing file that reads still see: a truncation hides the rest (it reads as
    /// zeros if the file grows again) until the next fsync makes the truncation durable.
    visible_base: u64,
    /// The size reads and stat see.
    size: u64,
    /// Dirty pages by page index. Bytes of a page past `size` are always zero.
    pages: BTreeMap<u64, Page>,
}

impl FileData {
    /// A clean file whose backing file is `len` bytes long.
    pub(crate) fn new(len: u64) -> Self {
        FileData {
            durable_len: len,
            visible_base: len,
            size: len,
            pages: BTreeMap::new(),
        }
    }

    /// The size that reads and stat see.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Bytes held only in memory: a cut loses them.
    pub(crate) fn volatile_bytes(&self) -> u64 {
        self.pages.len() as u64 * PAGE
    }

    /// Whether an fsync has anything to make durable.
    pub(crate) fn is_dirty(&self) -> bool {
        !self.pages.is_empty() || self.size != self.durable_len || self.visible_base != self.durable_len
    }

    /// Reads `len` bytes at `offset` of the current (volatile) contents, short at end of file.
    pub(crate) fn read(&self, backing: &File, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        let end = offset.saturating_add(len).min(self.size);
        if offset >= end {
            return Ok(Vec::new());
        }
        let mut out = vec![0; (end - offset) as usize];
        let from_base = end.min(self.visible_base);
        if offset < from_base {
            read_at_most(backing, &mut out[..(from_base - offset) as usize], offset)?;
        }
        for (&index, page) in self.pages.range(offset / PAGE..=(end - 1) / PAGE) {
            copy_overlap(&mut out, offset, &page.bytes, index * PAGE);
        }
        Ok(out)
    }

    /// Writes `data` at `offset` into volatile pages; `seq` orders writes for torn cuts.
    pub(crate) fn write(&mut self, backing: &File, offset: u64, data: &[u8], seq: u64) -> io::Result<()> {
        let end = offset.saturating_add(data.len() as u64);
        if data.is_empty() {
            return Ok(());
        }
        for index in offset / PAGE..=(end - 1) / PAGE {
            let start = index * PAGE;
            if !self.pages.contains_key(&index) {
                // A partly written page keeps the rest of its current contents, as in a page cache.
                let covers = offset <= start && end >= start + PAGE;
                let bytes = if covers {
                    vec![0; PAGE as usize]
                } else {
                    let mut bytes = self.read(backing, start, PAGE)?;
                    bytes.resize(PAGE as usize, 0);
                    bytes
                };
                self.pages.insert(
                    index,
                    Page {
                        bytes: bytes.into_boxed_slice(),
                        seq,
                    },
                );
            }
            if let Some(page) = self.pages.get_mut(&index) {
                copy_overlap(&mut page.bytes, start, data, offset);
                page.seq = seq;
            }
        }
        self.size = self.size.max(end);
        Ok(())
    }

    /// Truncates or extends the file; the new bytes of an extension read as zeros.
    pub(crate) fn set_size(&mut self, size: u64) {
        if size < self.size {
            self.pages.retain(|&index, _| index * PAGE < size);
            let tail = (size % PAGE) as usize;
            if tail != 0
                && let Some(page) = self.pages.get_mut(&(size / PAGE))
            {
                page.bytes[tail..].fill(0);
            }
            self.visible_base = self.visible_base.min(size);
        }
        self.size = size;
    }

    /// Writes the current contents into `backing` (the fsync of this file; the caller syncs).
    pub(crate) fn flush(&mut self, backing: &File) -> io::Result<()> {
        if self.visible_base < self.durable_len {
            // Cut off what a truncation hid first, so the bytes of a later extension are zeros.
            backing.set_len(self.visible_base)?;
        }
        let mut run: Vec<u8> = Vec::new();
        let mut run_start = 0;
        for (&index, page) in &self.pages {
            let start = index * PAGE;
            if run_start + run.len() as u64 != start {
                backing.write_all_at(&run, run_start)?;
                run.clear();
                run_start = start;
            }
            let len = (self.size - start).min(PAGE) as usize;
            run.extend_from_slice(&page.bytes[..len]);
        }
        backing.write_all_at(&run, run_start)?;
        if backing.metadata()?.len() != self.size {
            backing.set_len(self.size)?;
        }
        self.pages.clear();
        self.durable_len = self.size;
        self.visible_base = self.size;
        Ok(())
    }

    /// Drops every volatile change: the file reads as its durable contents again.
    pub(crate) fn discard(&mut self) {
        self.pages.clear();
        self.size = self.durable_len;
        self.visible_base = self.durable_len;
    }

    /// The dirty pages as (page index, sequence number of their last write).
    pub(crate) fn dirty_pages(&self) -> Vec<(u64, u64)> {
        self.pages
            .iter()
            .map(|(&index, page)| (index, page.seq))
            .collect()
    }

    /// Writes the chosen dirty pages whole into `backing`, as a disk that got some of them
    /// before the power went; the file grows to cover a kept page past its end.
    pub(crate) fn write_torn(&self, backing: &File, keep: &[u64]) -> io::Result<()> {
        for index in keep {
            let Some(page) = self.pages.get(index) else {
                continue;
            };
            let start = index * PAGE;
            if start >= self.size {
                continue;
            }
            let len = (self.size - start).min(PAGE) as usize;
            backing.write_all_at(&page.bytes[..len], start)?;
        }
        Ok(())
    }
}

/// Reads into `buf` at `offset` until it is full or the file ends; the rest stays zero.
fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Copies the overlap of `src` (which starts at file offset `src_at`) into `dst` (at `dst_at`).
fn copy_overlap(dst: &mut [u8], dst_at: u64, src: &[u8], src_at: u64) {
    let start = dst_at.max(src_at);
    let end = (dst_at + dst.len() as u64).min(src_at + src.len() as u64);
    if start >= end {
        return;
    }
    let len = (end - start) as usize;
    let d = (start - dst_at) as usize;
    let s = (start - src_at) as usize;
    dst[d..d + len].copy_from_slice(&src[s..s + len]);
}

#[cfg(test)]
#[path = "data_tests.rs"]
mod tests;
