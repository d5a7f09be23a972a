//! The durability rules, each shown by a cut on a real mount.

mod common;

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

use common::{durable_file, mount, open_rw, sync_dir};

#[test]
fn a_write_without_fsync_is_lost() {
    let Some(m) = mount("a_write_without_fsync_is_lost") else {
        return;
    };
    durable_file(&m.path("f"), b"");
    let mut f = open_rw(&m.path("f"));
    f.write_all(b"volatile").unwrap();
    assert_eq!(
        fs::read(m.path("f")).unwrap(),
        b"volatile",
        "reads see the page cache"
    );
    assert_eq!(
        fs::read(m.backing("f")).unwrap(),
        b"",
        "the backing file holds only what is durable"
    );
    m.cut();
    assert_eq!(fs::read(m.path("f")).unwrap(), b"");
    assert_eq!(fs::read(m.backing("f")).unwrap(), b"");
}

#[test]
fn a_write_with_fsync_is_kept() {
    let Some(m) = mount("a_write_with_fsync_is_kept") else {
        return;
    };
    durable_file(&m.path("f"), b"");
    let mut f = open_rw(&m.path("f"));
    f.write_all(b"durable").unwrap();
    f.sync_data().unwrap();
    m.cut();
    assert_eq!(fs::read(m.path("f")).unwrap(), b"durable");
    assert_eq!(fs::read(m.backing("f")).unwrap(), b"durable");
}

#[test]
fn a_new_file_synced_without_its_directory_is_gone() {
    let Some(m) = mount("a_new_file_synced_without_its_directory_is_gone") else {
        return;
    };
    let mut f = File::create(m.path("new")).unwrap();
    f.write_all(b"data").unwrap();
    f.sync_all().unwrap();
    assert!(m.path("new").exists());
    assert!(!m.backing("new").exists(), "the name is not durable yet");
    m.cut();
    assert!(!m.path("new").exists());
    assert!(!m.backing("new").exists());
    let names: Vec<_> = fs::read_dir(&m.backing)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        names.is_empty(),
        "nothing of ours is left in the backing directory: {names:?}"
    );
}

#[test]
fn a_new_file_synced_with_its_directory_is_kept() {
    let Some(m) = mount("a_new_file_synced_with_its_directory_is_kept") else {
        return;
    };
    let mut f = File::create(m.path("new")).unwrap();
    f.write_all(b"data").unwrap();
    f.sync_all().unwrap();
    sync_dir(&m.mnt);
    m.cut();
    assert_eq!(fs::read(m.path("new")).unwrap(), b"data");
    assert_eq!(fs::read(m.backing("new")).unwrap(), b"data");
}

#[test]
fn a_directory_synced_before_its_data_keeps_the_name_but_not_the_data() {
    let Some(m) = mount("a_directory_synced_before_its_data_keeps_the_name_but_not_the_data") else {
        return;
    };
    let mut f = File::create(m.path("new")).unwrap();
    sync_dir(&m.mnt);
    f.write_all(b"data").unwrap();
    m.cut();
    assert_eq!(fs::read(m.path("new")).unwrap(), b"");
}

#[test]
fn the_fsync_of_another_handle_on_the_same_file_counts() {
    let Some(m) = mount("the_fsync_of_another_handle_on_the_same_file_counts") else {
        return;
    };
    durable_file(&m.path("f"), b"");
    open_rw(&m.path("f")).write_all(b"written by one").unwrap();
    File::open(m.path("f")).unwrap().sync_all().unwrap();
    m.cut();
    assert_eq!(fs::read(m.path("f")).unwrap(), b"written by one");
}

#[test]
fn rename_over_a_file_becomes_durable_with_the_directory() {
    let Some(m) = mount("rename_over_a_file_becomes_durable_with_the_directory") else {
        return;
    };
    durable_file(&m.path("final"), b"old");
    durable_file(&m.path("tmp"), b"new");
    fs::rename(m.path("tmp"), m.path("final")).unwrap();
    m.cut();
    assert_eq!(
        fs::read(m.path("final")).unwrap(),
        b"old",
        "rename without a directory sync is lost"
    );
    assert_eq!(fs::read(m.path("tmp")).unwrap(), b"new");

    fs::rename(m.path("tmp"), m.path("final")).unwrap();
    sync_dir(&m.mnt);
    m.cut();
    assert_eq!(fs::read(m.path("final")).unwrap(), b"new");
    assert!(!m.path("tmp").exists(), "the old name is gone");
    assert_eq!(fs::read(m.backing("final")).unwrap(), b"new");
    assert!(!m.backing("tmp").exists());
}

#[test]
fn a_new_tmp_file_renamed_and_synced_is_kept_with_its_data() {
    let Some(m) = mount("a_new_tmp_file_renamed_and_synced_is_kept_with_its_data") else {
        return;
    };
    let mut f = File::create(m.path("tmp")).unwrap();
    f.write_all(b"contents").unwrap();
    f.sync_all().unwrap();
    fs::rename(m.path("tmp"), m.path("final")).unwrap();
    sync_dir(&m.mnt);
    m.cut();
    assert_eq!(fs::read(m.path("final")).unwrap(), b"contents");
    assert!(!m.path("tmp").exists());
}

#[test]
fn a_rename_across_directories_is_durable_when_the_destination_is_synced() {
    let Some(m) = mount("a_rename_across_directories_is_durable_when_the_destination_is_synced") else {
        return;
    };
    for d in ["a", "b"] {
        fs::create_dir(m.path(d)).unwrap();
    }
    sync_dir(&m.mnt);
    durable_file(&m.path("a/x"), b"x");
    fs::rename(m.path("a/x"), m.path("b/x")).unwrap();
    sync_dir(&m.path("a"));
    m.cut();
    assert!(
        m.path("a/x").exists(),
        "a sync of the source alone keeps the old name"
    );
    assert!(!m.path("b/x").exists());

    fs::rename(m.path("a/x"), m.path("b/x")).unwrap();
    sync_dir(&m.path("b"));
    m.cut();
    assert!(!m.path("a/x").exists(), "the move is atomic at its destination");
    assert_eq!(fs::read(m.path("b/x")).unwrap(), b"x");
}

#[test]
fn an_unlink_without_a_directory_sync_comes_back() {
    let Some(m) = mount("an_unlink_without_a_directory_sync_comes_back") else {
        return;
    };
    durable_file(&m.path("f"), b"still here");
    fs::remove_file(m.path("f")).unwrap();
    assert!(!m.path("f").exists());
    m.cut();
    assert_eq!(fs::read(m.path("f")).unwrap(), b"still here");

    fs::remove_file(m.path("f")).unwrap();
    sync_dir(&m.mnt);
    m.cut();
    assert!(!m.path("f").exists());
    assert!(!m.backing("f").exists());
}

#[test]
fn a_file_unlinked_while_open_can_still_be_used_and_is_gone_after_the_sync() {
    let Some(m) = mount("a_file_unlinked_while_open_can_still_be_used_and_is_gone_after_the_sync") else {
        return;
    };
    durable_file(&m.path("f"), b"abc");
    let mut f = open_rw(&m.path("f"));
    fs::remove_file(m.path("f")).unwrap();
    sync_dir(&m.mnt);
    f.write_all(b"xyz").unwrap();
    f.sync_all().unwrap();
    let mut back = String::new();
    f.seek(SeekFrom::Start(0)).unwrap();
    f.read_to_string(&mut back).unwrap();
    assert_eq!(back, "xyz");
    m.cut();
    assert!(!m.path("f").exists());
}

#[test]
fn truncation_is_volatile_until_fsync() {
    let Some(m) = mount("truncation_is_volatile_until_fsync") else {
        return;
    };
    durable_file(&m.path("f"), &[9; 10_000]);
    let f = open_rw(&m.path("f"));
    f.set_len(100).unwrap();
    f.set_len(8_000).unwrap();
    let seen = fs::read(m.path("f")).unwrap();
    assert_eq!(seen.len(), 8_000);
    assert!(
        seen[100..].iter().all(|&b| b == 0),
        "a truncated tail reads as zeros when the file grows"
    );
    m.cut();
    assert_eq!(fs::read(m.path("f")).unwrap(), vec![9; 10_000]);

    let f = open_rw(&m.path("f"));
    f.set_len(100).unwrap();
    f.sync_all().unwrap();
    m.cut();
    assert_eq!(fs::read(m.path("f")).unwrap(), vec![9; 100]);
}

#[test]
fn a_new_directory_needs_its_parent_synced() {
    let Some(m) = mount("a_new_directory_needs_its_parent_synced") else {
        return;
    };
    fs::create_dir(m.path("d")).unwrap();
    durable_file(&m.path("d/f"), b"inside");
    m.cut();
    assert!(!m.path("d").exists(), "d/f was synced, d itself never was");

    fs::create_dir(m.path("d")).unwrap();
    durable_file(&m.path("d/f"), b"inside");
    sync_dir(&m.mnt);
    m.cut();
    assert_eq!(fs::read(m.path("d/f")).unwrap(), b"inside");
    assert_eq!(fs::read(m.backing("d/f")).unwrap(), b"inside");

    fs::remove_file(m.path("d/f")).unwrap();
    fs::remove_dir(m.path("d")).unwrap();
    sync_dir(&m.mnt);
    m.cut();
    assert!(
        !m.backing("d").exists(),
        "rmdir of a directory that still held a durable file"
    );
}

#[test]
fn symlinks_and_hard_links_follow_their_directories() {
    let Some(m) = mount("symlinks_and_hard_links_follow_their_directories") else {
        return;
    };
    durable_file(&m.path("f"), b"target");
    std::os::unix::fs::symlink("f", m.path("s")).unwrap();
    fs::hard_link(m.path("f"), m.path("h")).unwrap();
    assert_eq!(fs::read(m.path("s")).unwrap(), b"target");
    m.cut();
    assert!(!m.path("s").exists() && !m.path("h").exists());

    std::os::unix::fs::symlink("f", m.path("s")).unwrap();
    fs::hard_link(m.path("f"), m.path("h")).unwrap();
    sync_dir(&m.mnt);
    m.cut();
    assert_eq!(fs::read_link(m.path("s")).unwrap().to_str(), Some("f"));
    assert_eq!(fs::read(m.path("h")).unwrap(), b"target");
    assert_eq!(fs::read_link(m.backing("s")).unwrap().to_str(), Some("f"));
}

#[test]
fn handles_from_before_a_cut_fail_with_eio() {
    let Some(m) = mount("handles_from_before_a_cut_fail_with_eio") else {
        return;
    };
    durable_file(&m.path("f"), b"abc");
    let f = open_rw(&m.path("f"));
    m.cut();
    let err = f.write_at(b"late", 0).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(5), "{err}");
    assert_eq!(fs::read(m.path("f")).unwrap(), b"abc");
}

#[test]
fn readdir_and_stat_show_the_volatile_state() {
    let Some(m) = mount("readdir_and_stat_show_the_volatile_state") else {
        return;
    };
    durable_file(&m.path("old"), b"");
    File::create(m.path("new"))
        .unwrap()
        .write_all(&[1; 5000])
        .unwrap();
    fs::remove_file(m.path("old")).unwrap();
    let mut names: Vec<_> = fs::read_dir(&m.mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["new"], "the staging area never shows");
    assert_eq!(fs::metadata(m.path("new")).unwrap().len(), 5000);
}

#[test]
fn a_database_file_pattern_is_byte_exact_after_a_cut() {
    // As SQLite in rollback mode: pages rewritten in place and appended, one fsync per commit.
    let Some(m) = mount("a_database_file_pattern_is_byte_exact_after_a_cut") else {
        return;
    };
    let page = |n: u8| vec![n; 4096];
    let mut db = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(m.path("db"))
        .unwrap();
    db.write_all(&page(1)).unwrap();
    db.write_all(&page(2)).unwrap();
    db.write_all(b"an unaligned tail").unwrap();
    db.sync_all().unwrap();
    sync_dir(&m.mnt);
    let committed = fs::read(m.path("db")).unwrap();

    db.write_at(&page(3), 0).unwrap();
    db.write_at(b"torn?", 4096 + 100).unwrap();
    db.write_at(&page(4), 3 * 4096).unwrap();
    assert_ne!(fs::read(m.path("db")).unwrap(), committed);
    m.cut();
    assert_eq!(fs::read(m.path("db")).unwrap(), committed);
    assert_eq!(fs::read(m.backing("db")).unwrap(), committed);
}

#[test]
fn unmount_is_a_clean_shutdown() {
    let Some(m) = mount("unmount_is_a_clean_shutdown") else {
        return;
    };
    fs::create_dir(m.path("d")).unwrap();
    fs::write(m.path("d/f"), b"never synced").unwrap();
    let common::Mount {
        fs, backing, dirs, ..
    } = m;
    fs.unmount().unwrap();
    assert_eq!(std::fs::read(backing.join("d/f")).unwrap(), b"never synced");
    let names: Vec<_> = fs::read_dir(&backing)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["d"], "the staging area is gone");
    drop(dirs);
}
