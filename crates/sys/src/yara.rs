//! YARA scanning with yara-x, for the `yara` (`yara_file`) and `yara_process` tables and
//! `yara_events` ([`compile_files`]: a signature group's rule files as one rule set).
//!
//! Rules come from rule files or from rule text; a [`RuleCache`] compiles each distinct
//! source once and is meant to live for one table scan. A scan's outcome is summarised as
//! osquery reports it: the matching rules' names, their number, the matched pattern
//! identifiers with hexadecimal offsets (`$a:1f`), and the rules' tags, each list joined
//! with commas. Scans run in fast mode (the first match of each pattern is enough).
//!
//! Rule files and scanned files are read through [`crate::safe_read`] under the caller's
//! policy (`--read_max`): a FIFO cannot block a scan, and a file truncated while it is
//! scanned cannot fault a memory map (the whole file is read, never mapped).
//!
//! Processes are scanned through `/proc/<pid>/mem` ([`crate::procmem`]) with yara-x's
//! block scanner: offsets are virtual addresses, and, as with any block scan, modules,
//! `filesize` and the `uintNN()` functions are undefined there.

use crate::procmem::ProcessMemory;
use crate::safe_read::{self, Policy, Root};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use yara_x::{Compiler, ScanResults, Scanner, SourceCode, blocks};

/// A compiled rule set (yara-x's), for callers that keep one.
pub use yara_x::Rules;

/// Where a rule set comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RuleSource {
    /// A rule file (YARA source text).
    File(PathBuf),
    /// Several rule files compiled as one rule set: a config signature group, whose files
    /// are always the host's (the config is), whatever root a query scans.
    Files(Vec<PathBuf>),
    /// Rule text given inline.
    Text(String),
}

/// Where osquery keeps rule files named relatively.
pub const YARA_HOME: &str = "/etc/osquery/yara/";

/// A rule set as a query names it: `sigfile = F` (a rule file; a relative name is under
/// [`YARA_HOME`]) or `sigrule = R` (rule text). Rows repeat the name as given.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum NamedRules {
    SigFile(String),
    SigRule(String),
    /// `sigurl = U`: the URL and the rule text fetched from it.
    SigUrl {
        url: String,
        text: String,
    },
    /// `sig_group = G`: the config's `yara.signatures` group G and its rule files (as
    /// written; relative names are under [`YARA_HOME`]).
    SigGroup {
        group: String,
        files: Vec<String>,
    },
}

impl NamedRules {
    /// The distinct rule sets of a query's `sigfile` and `sigrule` values, files first.
    pub fn from_query(sigfiles: Vec<String>, sigrules: Vec<String>) -> Vec<NamedRules> {
        let mut named: Vec<NamedRules> = sigfiles
            .into_iter()
            .map(NamedRules::SigFile)
            .chain(sigrules.into_iter().map(NamedRules::SigRule))
            .collect();
        named.sort();
        named.dedup();
        named
    }

    /// What to compile.
    pub fn source(&self) -> RuleSource {
        match self {
            NamedRules::SigFile(f) => RuleSource::File(rule_file(f)),
            NamedRules::SigRule(r) => RuleSource::Text(r.clone()),
            NamedRules::SigUrl { text, .. } => RuleSource::Text(text.clone()),
            NamedRules::SigGroup { files, .. } => {
                RuleSource::Files(files.iter().map(|f| rule_file(f)).collect())
            }
        }
    }

    /// The `sigfile` column of a row scanned with these rules (empty for rule text).
    pub fn sigfile(&self) -> &str {
        match self {
            NamedRules::SigFile(f) => f,
            _ => "",
        }
    }

    /// The `sigrule` column of a row scanned with these rules (empty for a file).
    pub fn sigrule(&self) -> &str {
        match self {
            NamedRules::SigRule(r) => r,
            _ => "",
        }
    }

    /// The `sig_group` column of a row scanned with these rules (empty but for a group).
    pub fn sig_group(&self) -> &str {
        match self {
            NamedRules::SigGroup { group, .. } => group,
            _ => "",
        }
    }

    /// The `sigurl` column of a row scanned with these rules (empty unless fetched).
    pub fn sigurl(&self) -> &str {
        match self {
            NamedRules::SigUrl { url, .. } => url,
            _ => "",
        }
    }
}

/// Where a rule file named `name` is: as written when absolute, else under [`YARA_HOME`].
pub fn rule_file(name: &str) -> PathBuf {
    if name.starts_with('/') {
        PathBuf::from(name)
    } else {
        Path::new(YARA_HOME).join(name)
    }
}

/// Compiled rule sets by source; failed compilations are remembered as `None` (and logged
/// once).
pub struct RuleCache {
    compiled: HashMap<RuleSource, Option<Rules>>,
    /// Where rule files are found, and how they are opened.
    root: Root,
    rule_files: Policy,
}

impl std::fmt::Debug for RuleCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleCache")
            .field("sources", &self.compiled.len())
            .finish()
    }
}

impl RuleCache {
    /// A cache reading rule files under `rule_files`.
    pub fn new(rule_files: Policy) -> Self {
        RuleCache::in_root(Root::host(), rule_files)
    }

    /// A cache reading rule files inside `root` (another process's, for a query's
    /// `pid_with_namespace`) under `rule_files`.
    pub fn in_root(root: Root, rule_files: Policy) -> Self {
        RuleCache {
            compiled: HashMap::new(),
            root,
            rule_files,
        }
    }

    /// The compiled rules of `source`, compiling them on first use.
    pub fn get(&mut self, source: &RuleSource) -> Option<&Rules> {
        self.compiled
            .entry(source.clone())
            .or_insert_with(|| match compile_in(&self.root, source, &self.rule_files) {
                Ok(rules) => Some(rules),
                Err(e) => {
                    log::warn!("YARA compile error: {e}");
                    None
                }
            })
            .as_ref()
    }

    /// How many sources were compiled (or tried) so far.
    pub fn len(&self) -> usize {
        self.compiled.len()
    }
    pub fn is_empty(&self) -> bool {
        self.compiled.is_empty()
    }
}

/// Compiles one rule source; a rule file is read under `rule_files`.
pub fn compile(source: &RuleSource, rule_files: &Policy) -> Result<Rules, String> {
    compile_in(&Root::host(), source, rule_files)
}

/// [`compile`] with a rule file ([`RuleSource::File`]) found inside `root`.
pub fn compile_in(root: &Root, source: &RuleSource, rule_files: &Policy) -> Result<Rules, String> {
    let mut compiler = Compiler::new();
    match source {
        RuleSource::Text(text) => {
            compiler
                .add_source(text.as_str())
                .map_err(|e| format!("inline rule: {e}"))?;
        }
        RuleSource::File(path) => add_file(&mut compiler, root, path, rule_files)?,
        RuleSource::Files(paths) => {
            for path in paths {
                add_file(&mut compiler, &Root::host(), path, rule_files)?;
            }
        }
    }
    Ok(compiler.build())
}

/// Compiles several rule files into one rule set (a `yara_events` signature group),
/// each read under `rule_files`; fails on the first file that does not compile.
pub fn compile_files(paths: &[PathBuf], rule_files: &Policy) -> Result<Rules, String> {
    compile(&RuleSource::Files(paths.to_vec()), rule_files)
}

fn add_file(
    compiler: &mut Compiler<'_>,
    root: &Root,
    path: &Path,
    rule_files: &Policy,
) -> Result<(), String> {
    let shown = root.display(path);
    let bytes = safe_read::read_bounded_in(root, path, rule_files)
        .map_err(|e| format!("cannot read {}: {e}", shown.display()))?;
    let text =
        String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8 text", shown.display()))?;
    let origin = shown.to_string_lossy().into_owned();
    compiler
        .add_source(SourceCode::from(text.as_str()).with_origin(origin))
        .map_err(|e| format!("{}: {e}", shown.display()))?;
    Ok(())
}

/// One scan's outcome, in osquery's column formats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Matching rule identifiers, comma-separated.
    pub matches: String,
    /// Number of matching rules.
    pub count: i64,
    /// `$pattern:hexoffset` for each reported match, comma-separated.
    pub strings: String,
    /// Tags of the matching rules, comma-separated.
    pub tags: String,
}

fn push(list: &mut String, item: &str) {
    if !list.is_empty() {
        list.push(',');
    }
    list.push_str(item);
}

fn summarize(results: &ScanResults) -> Summary {
    let mut s = Summary::default();
    for rule in results.matching_rules() {
        push(&mut s.matches, rule.identifier());
        s.count += 1;
        for pattern in rule.patterns() {
            for m in pattern.matches() {
                push(
                    &mut s.strings,
                    &format!("{}:{:x}", pattern.identifier(), m.range().start),
                );
            }
        }
        for tag in rule.tags() {
            push(&mut s.tags, tag.identifier());
        }
    }
    s
}

/// Scans a file, read whole through [`crate::safe_read`] under `policy`.
pub fn scan_file(rules: &Rules, path: &Path, policy: &Policy) -> Result<Summary, String> {
    scan_file_in(rules, &Root::host(), path, policy)
}

/// [`scan_file`] with `path` resolved inside `root`.
pub fn scan_file_in(
    rules: &Rules,
    root: &Root,
    path: &Path,
    policy: &Policy,
) -> Result<Summary, String> {
    let data = safe_read::read_bounded_in(root, path, policy).map_err(|e| e.to_string())?;
    let mut scanner = Scanner::new(rules);
    scanner.fast_scan(true);
    let results = scanner.scan(&data).map_err(|e| e.to_string())?;
    Ok(summarize(&results))
}

/// Bytes read from a process per block, and the overlap between consecutive blocks of one
/// region (patterns longer than this can be missed on a block boundary).
const PROCESS_BLOCK: usize = 4 << 20;
const PROCESS_OVERLAP: usize = 4096;

/// Scans the readable memory of process `pid`.
pub fn scan_process(rules: &Rules, pid: u32) -> Result<Summary, String> {
    let memory = ProcessMemory::open(pid).map_err(|e| format!("process {pid}: {e}"))?;
    let mut scanner = blocks::Scanner::new(rules);
    scanner.fast_scan(true);
    let mut error = None;
    memory.for_each_chunk(PROCESS_BLOCK, PROCESS_OVERLAP, |address, data| {
        if error.is_none()
            && let Ok(base) = usize::try_from(address)
            && let Err(e) = scanner.scan(base, data)
        {
            error = Some(e.to_string());
        }
    });
    if let Some(e) = error {
        return Err(e);
    }
    let results = scanner.finish().map_err(|e| e.to_string())?;
    Ok(summarize(&results))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` on a thread and waits for its answer: a liveness check (a hang fails the
    /// test instead of stalling it), not a timing, so the bound is generous.
    fn within_10s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .expect("the scan did not return: a read blocks or never ends")
    }

    /// A FIFO as the rule file or as the scanned file fails at once instead of waiting
    /// for a writer; a file over the limit is not scanned; the rest scans as before.
    #[test]
    fn files_are_read_through_the_safe_opener() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(fifo.as_os_str()))
            .unwrap();
        // SAFETY: c is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let policy = Policy::user_file(1 << 20);
        let f = fifo.clone();
        let err =
            within_10s(move || compile(&RuleSource::File(f), &policy).map(|_| ())).unwrap_err();
        assert!(err.contains("FIFO"), "{err}");
        let rules = compile(
            &RuleSource::Text("rule evil { strings: $a = \"evil\" condition: $a }".into()),
            &policy,
        )
        .unwrap();
        let f = fifo.clone();
        let err = within_10s(move || scan_file(&rules, &f, &policy).map(|_| ())).unwrap_err();
        assert!(err.contains("FIFO"), "{err}");
        let rules = compile(
            &RuleSource::Text("rule evil { strings: $a = \"evil\" condition: $a }".into()),
            &policy,
        )
        .unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"an evil string").unwrap();
        assert_eq!(scan_file(&rules, &target, &policy).unwrap().matches, "evil");
        let err = scan_file(&rules, &target, &Policy::user_file(5)).unwrap_err();
        assert!(err.contains("read limit"), "{err}");
    }

    #[test]
    fn named_rules_are_distinct_files_first_and_resolve_relative_files() {
        let named = NamedRules::from_query(
            vec!["b.yar".into(), "/abs/a.yar".into(), "b.yar".into()],
            vec!["rule r { condition: true }".into()],
        );
        assert_eq!(
            named,
            [
                NamedRules::SigFile("/abs/a.yar".into()),
                NamedRules::SigFile("b.yar".into()),
                NamedRules::SigRule("rule r { condition: true }".into()),
            ]
        );
        assert_eq!(named[0].source(), RuleSource::File("/abs/a.yar".into()));
        assert_eq!(
            named[1].source(),
            RuleSource::File(Path::new(YARA_HOME).join("b.yar"))
        );
        assert_eq!((named[1].sigfile(), named[1].sigrule()), ("b.yar", ""));
        assert_eq!(named[2].sigfile(), "");
        assert_eq!(
            named[2].source(),
            RuleSource::Text(named[2].sigrule().into())
        );
    }
}
