//! Helpers the table tests share, so that no table's tests copy another's.

use oxquery_table::{Generator, Host, Op, QueryContext, Rows, TableSpec, Value};
use std::path::Path;
use std::process::Command;

/// Every row `generate` gives under `ctx`, as owned cells.
pub fn rows_of(ctx: &QueryContext, generate: Generator) -> Vec<Vec<Value>> {
    let rows = Rows::collect(ctx, generate).unwrap();
    rows.iter().map(<[Value]>::to_vec).collect()
}

/// A scan with no constraints that reads every column.
pub fn scan_everything(spec: &TableSpec, generate: Generator) -> Rows<'static> {
    let host = Host::default();
    let ctx = QueryContext::everything(spec, &host);
    Rows::collect(&ctx, generate).unwrap()
}

/// The standard output of a tool a test compares with; the tool must succeed.
pub fn tool_stdout(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Writes the first `len` bytes of `source` to `dir/cut<i>` for each `len` of `lengths`
/// (truncated copies of a real file, for robustness tests).
pub fn write_cut_copies(dir: &Path, source: &[u8], lengths: &[usize]) {
    for (i, &len) in lengths.iter().enumerate() {
        std::fs::write(dir.join(format!("cut{i}")), &source[..len]).unwrap();
    }
}

/// Every row for the files directly in `dir`: a `path LIKE '<dir>/%'` scan of every column.
pub fn rows_in_dir(
    spec: &TableSpec,
    path: impl Into<usize>,
    dir: &Path,
    generate: Generator,
) -> Vec<Vec<Value>> {
    let host = Host::default();
    let ctx = QueryContext::everything(spec, &host).with_constraint(
        path,
        Op::Like,
        format!("{}/%", dir.display()),
    );
    rows_of(&ctx, generate)
}

/// `/bin/ls` with its links resolved: a real ELF file on every host.
pub fn real_elf() -> String {
    let path = std::fs::canonicalize("/bin/ls").unwrap();
    path.to_str().unwrap().to_owned()
}

/// `readelf <option> --wide <path>`, the independent source of the `elf_*` tests.
pub fn readelf(option: &str, path: &str) -> String {
    tool_stdout("readelf", &[option, "--wide", path])
}

/// The fields of the first line `getent <database> <key>` prints (NSS, the independent
/// source of the `etc_*` tests), or `None` when it knows no such key. getent ships with
/// the C library, so a host without it fails the test.
pub fn getent_fields(database: &str, key: &str) -> Option<Vec<String>> {
    let out = Command::new("getent")
        .args([database, key])
        .output()
        .unwrap_or_else(|e| panic!("getent {database} {key}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next()?;
    Some(line.split_whitespace().map(str::to_owned).collect())
}

/// A cell that must be text.
pub fn text(v: &Value) -> String {
    match v {
        Value::Text(t) => t.clone(),
        v => panic!("not text: {v:?}"),
    }
}

/// An engine serving just `tables`, for tests that go through SQL (joins, constraints
/// as SQLite hands them over, LIMIT).
pub fn engine(tables: &[&'static oxquery_table::TableDef]) -> oxquery_engine::Engine {
    oxquery_engine::Engine::new(
        tables,
        &oxquery_engine::TableFilter::default(),
        oxquery_engine::instance::current(None),
    )
    .unwrap()
}

/// Makes one file for each of `names` (bytes, UTF-8 or not) in `dir`, the n-th holding
/// n + 1 bytes, and returns each file's full path as bytes.
pub fn files_named(dir: &Path, names: &[&[u8]]) -> Vec<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let path = dir.join(std::ffi::OsStr::from_bytes(name));
            std::fs::write(&path, vec![b'x'; i + 1]).unwrap();
            path.as_os_str().as_bytes().to_vec()
        })
        .collect()
}
