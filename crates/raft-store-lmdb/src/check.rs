//! A check of `data.mdb` before LMDB maps it.
//!
//! LMDB reads its pages through the memory map and trusts them: it keeps no checksums, follows
//! page numbers and node offsets as it finds them, and a file cut short makes the first read of
//! a page past its end fault (`SIGBUS`). One flipped bit in a page header or a node offset
//! sends a read outside the page or the map (`SIGSEGV`), and the process dies instead of
//! getting an error. So before LMDB sees the file, this module reads it with plain reads and
//! refuses it, naming the page and what is wrong, when:
//!
//! - its two meta pages do not hold transaction ids LMDB writes (consecutive, the greater one
//!   on the page of its parity): LMDB would open the wrong one (always checked);
//! - the root page of the free-page tree or of the main tree lies past the end of the file
//!   (always checked; costs two reads);
//! - (when [`LmdbOptions::verify_on_open`](crate::LmdbOptions::verify_on_open) is on, the
//!   default) any page reachable from the current meta page is not what LMDB will take it for:
//!   every page of the free-page tree, the main tree and each named database's tree is read
//!   once; its own page number, its kind (branch, leaf or overflow, matching its depth), its
//!   bounds, every node's offset and size, child and overflow page numbers (inside the file,
//!   each page reached once), node flags (no duplicate-sorted data: raft-store creates none),
//!   free-page lists, and the tree's page and entry counts against its database record; the
//!   main tree must hold only the databases the engine creates, under their names (a damaged
//!   name would make the engine create an empty database in its place), and every page past
//!   the end of the file must be listed as free (see below).
//!
//! The file may be shorter than the pages the meta page counts as used (`mm_last_pg`), and that
//! is no damage: a page a write transaction allocates and frees again before it commits (a
//! "loose" page) is never written, only listed as free, so when it was the last page the file
//! ends before it. A crash test found this (a truncate freeing pages it had just copied).
//! What must lie inside the file is every page LMDB can read: the reachable ones. And every
//! page between the end of the file and `mm_last_pg` must be listed as free, which also refuses
//! a damaged `mm_last_pg` before LMDB sizes its map by it.
//!
//! One damage no check can see: flipping bit 1 of the lowest byte of a meta page's transaction
//! id can turn the pair into another one LMDB writes, with the previous transaction's page the
//! newer; LMDB then serves the state one commit earlier. Nothing in the file tells the two
//! apart (LMDB's meta pages carry no checksum).
//!
//! Damage to the bytes of a key or a value is not this module's business: a value carries the
//! core's checksum, and a damaged key makes a read fail or miss, never fault.
//!
//! Layout read here (LMDB's on-disk format, 64-bit, native byte order, as built by heed):
//! page header 16 bytes (`mp_pgno` u64, `mp_pad` u16, `mp_flags` u16, `mp_lower` u16,
//! `mp_upper` u16, the last two one `mp_pages` u32 on overflow pages), then `mp_ptrs` u16 node
//! offsets. Node header 8 bytes (`mn_lo` u16, `mn_hi` u16, `mn_flags` u16, `mn_ksize` u16),
//! then key, then data; on branch pages `lo | hi << 16 | flags << 32` is the child page. Meta
//! page: `mm_magic` u32 at 16, `mm_dbs[0]` (free pages) at 40, `mm_dbs[1]` (main) at 88, each
//! 48 bytes (`md_pad` u32 = page size in `mm_dbs[0]`, `md_flags` u16, `md_depth` u16, then u64
//! branch, leaf and overflow page counts, entries, root), `mm_last_pg` u64 at 136, `mm_txnid`
//! u64 at 144. Meta page 0 is at offset 0, meta page 1 at one page size; LMDB uses the one with
//! the greater transaction id.

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::Path;

const MAGIC: u32 = 0xBEEF_C0DE;
const META_LEN: usize = 152;
const PAGE_HEADER: usize = 16;
const NODE_HEADER: usize = 8;
const DB_RECORD: usize = 48;
/// `md_root` of an empty tree.
const NO_PAGE: u64 = u64::MAX;

const P_BRANCH: u16 = 0x01;
const P_LEAF: u16 = 0x02;
const P_OVERFLOW: u16 = 0x04;
const F_BIGDATA: u16 = 0x01;
const F_SUBDATA: u16 = 0x02;
/// A B-tree deeper than this would need more pages than a 64-bit file can hold.
const MAX_DEPTH: u16 = 64;

// LMDB writes its pages in the machine's byte order; this crate builds for little-endian
// targets only (see the compile_error below), so little-endian reads are the native ones.
#[cfg(not(target_endian = "little"))]
compile_error!("the data.mdb check reads LMDB pages as little-endian");

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// One `MDB_db` record: a tree's root, depth and counts.
#[derive(Debug, Clone, Copy)]
struct DbRecord {
    depth: u16,
    branch_pages: u64,
    leaf_pages: u64,
    overflow_pages: u64,
    entries: u64,
    root: u64,
}

impl DbRecord {
    fn parse(b: &[u8]) -> Option<Self> {
        Some(Self {
            depth: u16_at(b, 6)?,
            branch_pages: u64_at(b, 8)?,
            leaf_pages: u64_at(b, 16)?,
            overflow_pages: u64_at(b, 24)?,
            entries: u64_at(b, 32)?,
            root: u64_at(b, 40)?,
        })
    }
}

struct Meta {
    page_size: u64,
    last_page: u64,
    txn_id: u64,
    free: DbRecord,
    main: DbRecord,
}

fn parse_meta(b: &[u8]) -> Option<Meta> {
    (u32_at(b, 16)? == MAGIC).then_some(())?;
    Some(Meta {
        page_size: u64::from(u32_at(b, 40)?),
        last_page: u64_at(b, 136)?,
        txn_id: u64_at(b, 144)?,
        free: DbRecord::parse(b.get(40..40 + DB_RECORD)?)?,
        main: DbRecord::parse(b.get(88..88 + DB_RECORD)?)?,
    })
}

/// Refuse a `data.mdb` that LMDB could fault on (see the module docs); `walk` also reads every
/// page reachable from the current meta page. A missing or empty file (a new store) and meta
/// pages LMDB itself will reject are left to LMDB, which refuses them with an error.
pub(crate) fn check(path: &Path, walk: bool, databases: &[&str]) -> Result<(), Refusal> {
    let io = |what: String| move |e: std::io::Error| Refusal::Io(what, e);
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Refusal::Io(format!("opening {}", path.display()), e)),
    };
    let len = file
        .metadata()
        .map_err(io(format!("reading the size of {}", path.display())))?
        .len();
    if len == 0 {
        return Ok(());
    }
    let mut first = vec![0u8; META_LEN];
    match file.read_exact_at(&mut first, 0) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
            return Err(Refusal::Damaged(format!(
                "{} is {len} bytes, shorter than its first meta page",
                path.display()
            )));
        }
        Err(e) => {
            return Err(Refusal::Io(
                format!("reading the first meta page of {}", path.display()),
                e,
            ));
        }
    }
    let Some(meta0) = parse_meta(&first) else {
        return Ok(());
    };
    let page_size = meta0.page_size;
    if !(512..=32_768).contains(&page_size) || !page_size.is_power_of_two() {
        return Ok(());
    }
    let mut second = vec![0u8; META_LEN];
    let meta1 = match file.read_exact_at(&mut second, page_size) {
        Ok(()) => parse_meta(&second),
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => None,
        Err(e) => {
            let what = format!("reading the second meta page of {}", path.display());
            return Err(Refusal::Io(what, e));
        }
    };
    let Some(meta1) = meta1 else {
        return Err(Refusal::Damaged(format!(
            "{} is {len} bytes: its second meta page (at {page_size}) is missing or damaged",
            path.display()
        )));
    };
    meta_pair(meta0.txn_id, meta1.txn_id)
        .map_err(|e| Refusal::Damaged(format!("{}: {e}", path.display())))?;
    let current = if meta1.txn_id > meta0.txn_id { meta1 } else { meta0 };
    let file_pages = len / page_size;
    for (name, root) in [
        ("the free-page tree", current.free.root),
        ("the main tree", current.main.root),
    ] {
        if root != NO_PAGE && root >= file_pages {
            return Err(Refusal::Damaged(format!(
                "{}: the root of {name} is page {root}, past the end of the file ({len} bytes, \
                 {file_pages} pages of {page_size} bytes): the file was cut short",
                path.display()
            )));
        }
    }
    if !walk {
        return Ok(());
    }
    let mut walker = Walker::new(&file, &current, file_pages, databases)
        .map_err(|e| Refusal::Damaged(format!("{}: {e}", path.display())))?;
    walker
        .tree("the free-page tree", &current.free, Kind::Free)
        .and_then(|()| walker.tree("the main tree", &current.main, Kind::Main))
        .and_then(|()| walker.unwritten_pages_are_free())
        .map_err(|e| {
            let what = format!("{}: {e}", path.display());
            // A page that could not be read is the disk's failure, not damage to the file.
            match walker.read_error.take() {
                Some(io) => Refusal::Io(what, io),
                None => Refusal::Damaged(what),
            }
        })
}

/// Why [`check`] refused a file.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The file is not an LMDB file LMDB can open safely (cut short, a damaged page structure).
    Damaged(String),
    /// Reading it failed: the disk's error, not a verdict on the file.
    Io(String, std::io::Error),
}

/// The transaction ids of the two meta pages must be a pair LMDB writes. LMDB keeps no checksum
/// on its meta pages and opens the one with the greater transaction id, so a flipped bit there
/// would silently serve the previous transaction (or refuse nothing at all). Each commit writes
/// meta page `id % 2`, so the ids are consecutive and the greater one sits on the page of its
/// parity (a new environment has 0 on both). A flip that keeps that true is one of bit 1 of
/// either id's lowest byte; it turns the pair into another valid one and cannot be told apart.
fn meta_pair(id0: u64, id1: u64) -> Result<(), String> {
    let fresh = id0 == 0 && id1 == 0;
    let alternating = if id1 > id0 {
        id1 - id0 == 1 && id1 % 2 == 1
    } else {
        id0.checked_sub(id1) == Some(1) && id0.is_multiple_of(2)
    };
    if fresh || alternating {
        Ok(())
    } else {
        Err(format!(
            "its meta pages hold transaction ids {id0} (page 0) and {id1} (page 1), not a pair \
             LMDB writes (consecutive, the greater on the page of its parity): one is damaged"
        ))
    }
}

/// What the leaves of a tree hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Free-page lists keyed by transaction id.
    Free,
    /// Named database records (and possibly plain values).
    Main,
    /// Plain keys and values of a named database.
    Plain,
}

#[derive(Debug, Default)]
struct Counts {
    branch: u64,
    leaf: u64,
    overflow: u64,
    entries: u64,
}

struct Walker<'f> {
    file: &'f File,
    page_size: usize,
    last_page: u64,
    /// Whole pages in the file: every page LMDB reads must lie below this.
    file_pages: u64,
    /// The names the main tree may hold: the databases the engine creates.
    databases: &'f [&'f str],
    /// Pages listed as free that lie past the end of the file (never written).
    free_past_end: Vec<u64>,
    /// One bit per page: reached already (the meta pages count as reached).
    seen: Vec<u64>,
    /// The first read that failed for another reason than the end of the file.
    read_error: Option<std::io::Error>,
}

impl<'f> Walker<'f> {
    fn new(file: &'f File, meta: &Meta, file_pages: u64, databases: &'f [&'f str]) -> Result<Self, String> {
        let page_size = usize::try_from(meta.page_size).map_err(|_| "page size too large")?;
        // Only pages inside the file can be reached (`claim` refuses the others), so the map
        // is sized by the file, never by the meta page's `last_page`, which may be damaged.
        let pages = meta
            .last_page
            .checked_add(1)
            .map(|p| p.min(file_pages))
            .and_then(|p| usize::try_from(p.div_ceil(64)).ok())
            .ok_or_else(|| format!("last page {} is out of range", meta.last_page))?;
        let mut walker = Self {
            file,
            page_size,
            last_page: meta.last_page,
            file_pages,
            databases,
            free_past_end: Vec::new(),
            seen: vec![0; pages],
            read_error: None,
        };
        for meta_page in 0..2 {
            if meta_page <= walker.last_page {
                walker.mark(meta_page);
            }
        }
        Ok(walker)
    }

    /// Mark `page` reached; false if it was reached before.
    fn mark(&mut self, page: u64) -> bool {
        // `page <= last_page` is checked by the callers, so the index is in range.
        let Some(word) = usize::try_from(page / 64).ok().and_then(|w| self.seen.get_mut(w)) else {
            return false;
        };
        let bit = 1u64 << (page % 64);
        let fresh = *word & bit == 0;
        *word |= bit;
        fresh
    }

    /// A page LMDB will read must have been written: inside the file.
    fn inside_file(&self, page: u64, what: &str) -> Result<(), String> {
        if page >= self.file_pages {
            return Err(format!(
                "{what} points to page {page}, past the end of the file ({} pages of {} bytes): \
                 the file was cut short",
                self.file_pages, self.page_size
            ));
        }
        Ok(())
    }

    fn read_page(&mut self, page: u64, buf: &mut [u8]) -> Result<(), String> {
        let offset = page
            .checked_mul(self.page_size as u64)
            .ok_or_else(|| format!("page {page} lies past any file"))?;
        let read = self.file.read_exact_at(buf, offset);
        self.keep_read_error(read)
            .map_err(|e| format!("reading page {page}: {e}"))
    }

    /// Pass a read's result on, remembering an error that is not the end of the file.
    fn keep_read_error(&mut self, read: std::io::Result<()>) -> std::io::Result<()> {
        if let Err(e) = &read
            && e.kind() != ErrorKind::UnexpectedEof
            && self.read_error.is_none()
        {
            self.read_error = Some(std::io::Error::new(e.kind(), e.to_string()));
        }
        read
    }

    /// A page number found in the file: must lie inside the database and be reached once.
    fn claim(&mut self, page: u64, what: &str) -> Result<(), String> {
        if page < 2 || page > self.last_page {
            return Err(format!(
                "{what} points to page {page}, outside the database's pages 2..={}",
                self.last_page
            ));
        }
        self.inside_file(page, what)?;
        if !self.mark(page) {
            return Err(format!(
                "{what} points to page {page}, which another node points to too"
            ));
        }
        Ok(())
    }

    fn tree(&mut self, name: &str, db: &DbRecord, kind: Kind) -> Result<(), String> {
        let mut counts = Counts::default();
        if db.root == NO_PAGE {
            if db.depth != 0 || db.entries != 0 {
                return Err(format!(
                    "{name} has no root page but a depth of {} and {} entries",
                    db.depth, db.entries
                ));
            }
        } else {
            if db.depth == 0 || db.depth > MAX_DEPTH {
                return Err(format!("{name} has a depth of {}", db.depth));
            }
            self.claim(db.root, &format!("{name}'s root"))?;
            self.page(name, db.root, 1, db.depth, kind, &mut counts)?;
        }
        let expected = (db.branch_pages, db.leaf_pages, db.overflow_pages, db.entries);
        let found = (counts.branch, counts.leaf, counts.overflow, counts.entries);
        if expected != found {
            return Err(format!(
                "{name} records (branch pages, leaf pages, overflow pages, entries) = {expected:?} but holds {found:?}"
            ));
        }
        Ok(())
    }

    fn page(
        &mut self,
        name: &str,
        page: u64,
        level: u16,
        depth: u16,
        kind: Kind,
        counts: &mut Counts,
    ) -> Result<(), String> {
        let mut buf = vec![0u8; self.page_size];
        self.read_page(page, &mut buf)?;
        let at = |what: &str| format!("{name}: page {page}: {what}");
        let own = u64_at(&buf, 0).unwrap_or(NO_PAGE);
        if own != page {
            return Err(at(&format!("its header names page {own}")));
        }
        let flags = u16_at(&buf, 10).unwrap_or(0);
        let leaf = level == depth;
        let want = if leaf { P_LEAF } else { P_BRANCH };
        if flags != want {
            return Err(at(&format!(
                "flags {flags:#x} at level {level} of {depth}, expected {want:#x}"
            )));
        }
        let lower = usize::from(u16_at(&buf, 12).unwrap_or(0));
        let upper = usize::from(u16_at(&buf, 14).unwrap_or(0));
        if lower < PAGE_HEADER || lower % 2 != 0 || lower > upper || upper > self.page_size {
            return Err(at(&format!(
                "free space bounds {lower}..{upper} do not fit the page"
            )));
        }
        let keys = (lower - PAGE_HEADER) / 2;
        if keys == 0 && !(leaf && level == 1) {
            return Err(at("no nodes"));
        }
        if leaf {
            counts.leaf += 1;
        } else {
            counts.branch += 1;
        }
        for i in 0..keys {
            let node = usize::from(u16_at(&buf, PAGE_HEADER + 2 * i).unwrap_or(0));
            let node_at = |what: &str| at(&format!("node {i} at {node}: {what}"));
            let key_end = (node >= upper)
                .then(|| u16_at(&buf, node + 6))
                .flatten()
                .map(|ksize| node + NODE_HEADER + usize::from(ksize))
                .filter(|&end| end <= self.page_size)
                .ok_or_else(|| node_at("its header or key lies outside the node area"))?;
            let lo = u64::from(u16_at(&buf, node).unwrap_or(0));
            let hi = u64::from(u16_at(&buf, node + 2).unwrap_or(0));
            let node_flags = u16_at(&buf, node + 4).unwrap_or(0);
            if !leaf {
                let child = lo | hi << 16 | u64::from(node_flags) << 32;
                self.claim(child, &node_at("a branch node"))?;
                self.page(name, child, level + 1, depth, kind, counts)?;
                continue;
            }
            counts.entries += 1;
            let size = lo | hi << 16;
            if node_flags & !(F_BIGDATA | F_SUBDATA) != 0 {
                return Err(node_at(&format!("node flags {node_flags:#x}")));
            }
            let inline = if node_flags & F_BIGDATA != 0 { 8 } else { size };
            let data_end = usize::try_from(inline)
                .ok()
                .and_then(|n| key_end.checked_add(n))
                .filter(|&end| end <= self.page_size)
                .ok_or_else(|| node_at(&format!("its {inline} bytes of data run past the page")))?;
            let inline_data = &buf[key_end..data_end];
            let data = if node_flags & F_BIGDATA != 0 {
                let first = u64_at(inline_data, 0).unwrap_or(NO_PAGE);
                // The free-page lists are read whole below; other values are checksummed
                // by the core when read, so only their page headers are checked here.
                let keep = kind == Kind::Free;
                self.overflow(&node_at("an overflow node"), first, size, counts, keep)?
            } else {
                inline_data.to_vec()
            };
            if node_flags & F_SUBDATA != 0 {
                if kind != Kind::Main || node_flags & F_BIGDATA != 0 || data.len() != DB_RECORD {
                    return Err(node_at("a database record where none can be"));
                }
                let record = DbRecord::parse(&data).ok_or_else(|| node_at("a short database record"))?;
                let db_name = String::from_utf8_lossy(&buf[node + NODE_HEADER..key_end]).into_owned();
                // A damaged name would hide the database: the engine would create an empty
                // one under the right name and the store would open without its data.
                if !self.databases.contains(&db_name.as_str()) {
                    return Err(node_at(&format!(
                        "a database named {db_name:?}, which the engine never creates \
                         (it creates {:?}): a damaged name",
                        self.databases
                    )));
                }
                self.tree(&format!("database {db_name:?}"), &record, Kind::Plain)?;
            } else if kind == Kind::Main {
                return Err(node_at(
                    "a plain value in the main tree, where the engine keeps only its databases",
                ));
            } else if kind == Kind::Free {
                self.free_list(&node_at("a free-page list"), &data)?;
            }
        }
        Ok(())
    }

    /// Check the overflow pages holding `size` bytes from page `first`; return the value's
    /// bytes when `keep`.
    fn overflow(
        &mut self,
        what: &str,
        first: u64,
        size: u64,
        counts: &mut Counts,
        keep: bool,
    ) -> Result<Vec<u8>, String> {
        self.claim(first, what)?;
        let mut head = vec![0u8; PAGE_HEADER];
        self.read_page(first, &mut head)?;
        let own = u64_at(&head, 0).unwrap_or(NO_PAGE);
        let flags = u16_at(&head, 10).unwrap_or(0);
        let pages = u64::from(u32_at(&head, 12).unwrap_or(0));
        if own != first || flags != P_OVERFLOW {
            return Err(format!(
                "{what}: page {first} is not an overflow page (names page {own}, flags {flags:#x})"
            ));
        }
        let room = pages
            .checked_mul(self.page_size as u64)
            .and_then(|b| b.checked_sub(PAGE_HEADER as u64));
        let last = first.checked_add(pages).and_then(|p| p.checked_sub(1));
        match (room, last) {
            (Some(room), Some(last)) if pages > 0 && room >= size && last <= self.last_page => {
                self.inside_file(last, &format!("{what}: overflow pages from page {first}"))?;
                for page in first + 1..=last {
                    if !self.mark(page) {
                        return Err(format!(
                            "{what}: overflow pages {first}..={last} overlap page {page}, reached before"
                        ));
                    }
                }
            }
            _ => {
                return Err(format!(
                    "{what}: {pages} overflow pages from page {first} cannot hold {size} bytes inside the database's {} pages",
                    self.last_page + 1
                ));
            }
        }
        counts.overflow += pages;
        if !keep {
            return Ok(Vec::new());
        }
        let size = usize::try_from(size).map_err(|_| format!("{what}: {size} bytes"))?;
        let mut data = vec![0u8; size];
        let offset = first * self.page_size as u64 + PAGE_HEADER as u64;
        let read = self.file.read_exact_at(&mut data, offset);
        self.keep_read_error(read)
            .map_err(|e| format!("{what}: reading page {first}: {e}"))?;
        Ok(data)
    }

    /// Every page past the end of the file up to `last_page` was allocated and never written
    /// (see the module docs): LMDB lists each such page as free. A page there that is not
    /// listed means the file lost pages or `last_page` is damaged.
    fn unwritten_pages_are_free(&mut self) -> Result<(), String> {
        let unwritten = self.last_page.saturating_add(1).saturating_sub(self.file_pages);
        self.free_past_end.sort_unstable();
        self.free_past_end.dedup();
        let listed = self.free_past_end.len() as u64;
        if listed != unwritten {
            return Err(format!(
                "pages {}..={} lie past the end of the file ({} pages of {} bytes) and only \
                 {listed} of those {unwritten} are listed as free: the file was cut short or \
                 its last page number is damaged",
                self.file_pages, self.last_page, self.file_pages, self.page_size
            ));
        }
        Ok(())
    }

    /// A free-page list: a count, then that many page numbers inside the database.
    fn free_list(&mut self, what: &str, data: &[u8]) -> Result<(), String> {
        let count = u64_at(data, 0).unwrap_or(u64::MAX);
        let fits = usize::try_from(count)
            .ok()
            .and_then(|c| c.checked_add(1)?.checked_mul(8))
            .is_some_and(|need| need <= data.len());
        if !fits {
            return Err(format!("{what}: {count} pages listed in {} bytes", data.len()));
        }
        for i in 1..=count as usize {
            let page = u64_at(data, i * 8).unwrap_or(NO_PAGE);
            if page < 2 || page > self.last_page {
                return Err(format!(
                    "{what}: free page {page} is outside the database's pages 2..={}",
                    self.last_page
                ));
            }
            if page >= self.file_pages {
                self.free_past_end.push(page);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_parses_from_its_offsets() {
        let mut b = vec![0u8; DB_RECORD];
        b[6] = 3;
        b[8] = 4;
        b[16] = 5;
        b[24] = 6;
        b[32] = 7;
        b[40..48].copy_from_slice(&9u64.to_le_bytes());
        let r = DbRecord::parse(&b).expect("parse");
        assert_eq!(
            (
                r.depth,
                r.branch_pages,
                r.leaf_pages,
                r.overflow_pages,
                r.entries,
                r.root
            ),
            (3, 4, 5, 6, 7, 9)
        );
        assert!(DbRecord::parse(&b[..40]).is_none());
    }

    #[test]
    fn meta_pages_must_hold_a_pair_lmdb_writes() {
        for (id0, id1) in [(0, 0), (0, 1), (2, 1), (2, 3), (1_000_000, 999_999)] {
            assert_eq!(meta_pair(id0, id1), Ok(()), "{id0}, {id1}");
        }
        // Equal, apart, or the greater on the wrong page: one of them was damaged.
        for (id0, id1) in [(5, 5), (1, 0), (3, 2), (2, 5), (46, 45 + (1 << 49)), (0, 3)] {
            assert!(meta_pair(id0, id1).is_err(), "{id0}, {id1}");
        }
    }
}
