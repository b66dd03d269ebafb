//! ARCHITECTURE.md's invariants that a search can check: SQLite stays inside the engine,
//! the store and sys's read-only reader of host SQLite files, the engine reads nothing
//! from the host, and process-wide mutable statics are caches or locks with their reason
//! written beside them.

use std::path::{Path, PathBuf};

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn crate_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(crates_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn only_the_engine_the_store_and_sys_use_rusqlite() {
    let names = crate_names();
    assert!(names.len() > 8, "found the crates: {names:?}");
    let mut offenders = Vec::new();
    // sys: read-only reads of host SQLite files another program owns (rpm's rpmdb.sqlite).
    let allowed = ["engine", "store", "sys"];
    for name in names.iter().filter(|n| !allowed.contains(&n.as_str())) {
        let dir = crates_dir().join(name);
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        if manifest.contains("rusqlite") {
            offenders.push(format!("{name}/Cargo.toml"));
        }
        let mut files = Vec::new();
        rust_files(&dir, &mut files);
        // This file names what it looks for.
        files.retain(|f| !f.ends_with("tests/architecture.rs"));
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            if text.contains("rusqlite") {
                offenders.push(file.display().to_string());
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "rusqlite outside engine, store and sys: {offenders:?}"
    );
    let engine_lib = std::fs::read_to_string(crates_dir().join("engine/src/lib.rs")).unwrap();
    assert!(
        !engine_lib.contains("pub use rusqlite"),
        "the engine re-exports rusqlite"
    );
}

#[test]
fn the_engine_does_not_read_the_host() {
    let manifest = std::fs::read_to_string(crates_dir().join("engine/Cargo.toml")).unwrap();
    assert!(!manifest.contains("oxquery-sys"), "{manifest}");
}

#[test]
fn process_wide_mutable_statics_say_why() {
    let mut unexplained = Vec::new();
    for name in crate_names() {
        let mut files = Vec::new();
        rust_files(&crates_dir().join(name).join("src"), &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                let trimmed = line.trim_start();
                let mutable_static = trimmed.starts_with("static ")
                    && ["Mutex", "RwLock", "OnceLock", "Atomic", "Cell"]
                        .iter()
                        .any(|t| trimmed.contains(t));
                if !(mutable_static || trimmed.starts_with("thread_local!")) {
                    continue;
                }
                // A comment within the three lines above (or the item's doc) gives the
                // reason: a cache, a lock around a non-reentrant C API, ...
                let explained = lines[i.saturating_sub(3)..i]
                    .iter()
                    .chain(lines.get(i + 1))
                    .any(|l| l.trim_start().starts_with("//"));
                if !explained {
                    unexplained.push(format!("{}:{}", file.display(), i + 1));
                }
            }
        }
    }
    assert!(
        unexplained.is_empty(),
        "statics without a reason: {unexplained:?}"
    );
}
