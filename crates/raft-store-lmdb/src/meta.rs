//! A length check of `data.mdb` before LMDB maps it.
//!
//! LMDB reads its pages through the memory map and trusts the file: a file cut shorter than the
//! database it holds makes the first read past its end fault (`SIGBUS`) and kills the process.
//! The meta pages at the start of the file say how many pages the database uses; a file shorter
//! than that is refused with an error instead.
//!
//! Layout read here (LMDB's `MDB_page` header then `MDB_meta`, native byte order, 64-bit):
//! page header 16 bytes; `mm_magic` u32 at 16; `mm_dbs[0].md_pad` (the page size) u32 at 40;
//! `mm_last_pg` u64 at 136; `mm_txnid` u64 at 144. Meta page 0 is at offset 0, meta page 1 at
//! one page size. LMDB uses the meta with the greater transaction id.

use std::io::Read;
use std::path::Path;

const MAGIC: u32 = 0xBEEF_C0DE;
const META_LEN: usize = 152;

struct Meta {
    page_size: u64,
    last_page: u64,
    txn_id: u64,
}

// LMDB writes its meta pages in the machine's byte order; this crate builds for little-endian
// targets only (see the compile_error below), so little-endian reads are the native ones.
#[cfg(not(target_endian = "little"))]
compile_error!("the data.mdb length check reads LMDB meta pages as little-endian");

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn parse(b: &[u8]) -> Option<Meta> {
    (u32_at(b, 16)? == MAGIC).then_some(())?;
    Some(Meta {
        page_size: u64::from(u32_at(b, 40)?),
        last_page: u64_at(b, 136)?,
        txn_id: u64_at(b, 144)?,
    })
}

/// Refuse a `data.mdb` shorter than the database its meta pages describe. A missing or empty
/// file (a new store) and meta pages LMDB itself will reject are left to LMDB.
pub(crate) fn check_length(path: &Path) -> Result<(), String> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    let len = file
        .metadata()
        .map_err(|e| format!("reading the size of {}: {e}", path.display()))?
        .len();
    if len == 0 {
        return Ok(());
    }
    let mut first = vec![0u8; META_LEN];
    if file.read_exact(&mut first).is_err() {
        return Err(format!(
            "{} is {len} bytes, shorter than its first meta page",
            path.display()
        ));
    }
    let Some(meta0) = parse(&first) else { return Ok(()) };
    let page_size = meta0.page_size;
    if !(512..=65_536).contains(&page_size) || !page_size.is_power_of_two() {
        return Ok(());
    }
    let mut second = vec![0u8; META_LEN];
    let meta1 = std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(page_size))
        .ok()
        .and_then(|_| file.read_exact(&mut second).ok())
        .and_then(|()| parse(&second));
    let Some(meta1) = meta1 else {
        return Err(format!(
            "{} is {len} bytes: its second meta page (at {page_size}) is missing or damaged",
            path.display()
        ));
    };
    let current = if meta1.txn_id > meta0.txn_id { meta1 } else { meta0 };
    let needed = current.last_page.saturating_add(1).saturating_mul(page_size);
    if len < needed {
        return Err(format!(
            "{} is {len} bytes but its database uses {} pages of {page_size} bytes ({needed} bytes): the file was cut short",
            path.display(),
            current.last_page + 1
        ));
    }
    Ok(())
}
