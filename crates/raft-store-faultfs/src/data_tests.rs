use std::fs::File;
use std::io::Write;

use super::{FileData, PAGE};

fn backing(contents: &[u8]) -> (tempfile::TempDir, File) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    File::create(&path).unwrap().write_all(contents).unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    (dir, file)
}

fn on_disk(file: &File) -> Vec<u8> {
    let mut out = vec![0; file.metadata().unwrap().len() as usize];
    super::read_at_most(file, &mut out, 0).unwrap();
    out
}

#[test]
fn writes_are_read_back_but_reach_the_backing_file_only_at_flush() {
    let (_dir, file) = backing(b"hello world");
    let mut data = FileData::new(11);
    data.write(&file, 6, b"there, friend", 1).unwrap();
    assert_eq!(data.read(&file, 0, 100).unwrap(), b"hello there, friend");
    assert_eq!(on_disk(&file), b"hello world");
    assert_eq!(data.volatile_bytes(), PAGE);
    data.flush(&file).unwrap();
    assert_eq!(on_disk(&file), b"hello there, friend");
    assert!(!data.is_dirty());
}

#[test]
fn a_truncation_hides_the_old_tail_even_when_the_file_grows_again() {
    let (_dir, file) = backing(&[7; 10_000]);
    let mut data = FileData::new(10_000);
    data.set_size(100);
    data.set_size(9_000);
    let read = data.read(&file, 0, 10_000).unwrap();
    assert_eq!(read.len(), 9_000);
    assert!(read[..100].iter().all(|&b| b == 7));
    assert!(read[100..].iter().all(|&b| b == 0));
    assert_eq!(on_disk(&file), vec![7; 10_000]);
    data.flush(&file).unwrap();
    assert_eq!(on_disk(&file), read);
}

#[test]
fn a_truncation_inside_a_dirty_page_zeros_its_tail() {
    let (_dir, file) = backing(b"");
    let mut data = FileData::new(0);
    data.write(&file, 0, &[1; 5000], 1).unwrap();
    data.set_size(10);
    data.set_size(5000);
    let read = data.read(&file, 0, 5000).unwrap();
    assert_eq!(&read[..10], &[1; 10]);
    assert!(read[10..].iter().all(|&b| b == 0));
}

#[test]
fn discard_goes_back_to_the_durable_contents() {
    let (_dir, file) = backing(b"durable");
    let mut data = FileData::new(7);
    data.write(&file, 0, b"volatile and longer", 1).unwrap();
    data.set_size(3);
    data.discard();
    assert_eq!(data.read(&file, 0, 100).unwrap(), b"durable");
}

#[test]
fn torn_pages_are_written_whole_and_grow_the_file() {
    let (_dir, file) = backing(b"");
    let mut data = FileData::new(0);
    data.write(&file, 0, &vec![1; 3 * PAGE as usize + 10], 1).unwrap();
    data.write_torn(&file, &[1, 3]).unwrap();
    let disk = on_disk(&file);
    assert_eq!(disk.len(), 3 * PAGE as usize + 10);
    assert!(disk[..PAGE as usize].iter().all(|&b| b == 0));
    assert!(disk[PAGE as usize..2 * PAGE as usize].iter().all(|&b| b == 1));
    assert!(disk[2 * PAGE as usize..3 * PAGE as usize].iter().all(|&b| b == 0));
    assert!(disk[3 * PAGE as usize..].iter().all(|&b| b == 1));
}
