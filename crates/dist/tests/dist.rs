//! The committed man pages and completions under `dist/` are what the generator renders
//! today (`UPDATE_DIST=1` rewrites them), and each is valid for the tool that reads it:
//! groff and mandoc without a warning, `bash -n`, `zsh -n`, `fish -n`.

use oxquery_test_support::require_tool;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The committed files, each with what the generator renders now. A man page keeps the
/// date it has while its text is unchanged.
fn rendered() -> Vec<(PathBuf, String, Option<String>)> {
    let committed_date = |path: &str| {
        std::fs::read_to_string(root().join(path))
            .ok()
            .and_then(|page| oxquery_dist::man_date(&page).map(str::to_owned))
    };
    let date = committed_date("dist/man/osqueryi.1").unwrap_or_else(oxquery_dist::today);
    oxquery_dist::render(&date)
        .into_iter()
        .map(|file| {
            let path = root().join(file.path);
            let committed = std::fs::read_to_string(&path).ok();
            (path, file.text, committed)
        })
        .collect()
}

#[test]
fn committed_files_are_current() {
    let files = rendered();
    let stale: Vec<&PathBuf> = files
        .iter()
        .filter(|(_, text, committed)| committed.as_deref() != Some(text.as_str()))
        .map(|(path, _, _)| path)
        .collect();
    if stale.is_empty() {
        return;
    }
    if std::env::var_os("UPDATE_DIST").is_some() {
        // The text changed: the pages carry today's date.
        for file in oxquery_dist::render(&oxquery_dist::today()) {
            let path = root().join(file.path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, file.text).unwrap();
        }
        return;
    }
    panic!("stale: {stale:?}; run `UPDATE_DIST=1 cargo test -p oxquery-dist` and commit dist/");
}

/// Runs `command`, returning its stderr; fails on a non-zero exit.
fn stderr_of(command: &mut Command) -> String {
    let out = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{command:?}: {stderr}");
    stderr
}

fn pages() -> Vec<(PathBuf, String)> {
    rendered()
        .into_iter()
        .filter(|(path, _, _)| path.to_string_lossy().contains("/man/"))
        .map(|(path, text, _)| (path, text))
        .collect()
}

/// Each page written to a temp dir (the test checks what is rendered, not only what is
/// committed).
fn written(dir: &Path, path: &Path, text: &str) -> PathBuf {
    let file = dir.join(path.file_name().unwrap());
    std::fs::write(&file, text).unwrap();
    file
}

#[test]
fn groff_formats_the_pages_without_a_warning() {
    let Some(groff) = require_tool("groff") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in pages() {
        let file = written(dir.path(), &path, &text);
        let out = Command::new(&groff)
            // Plain text (no bold or underline) to look into.
            .args(["-man", "-Tutf8", "-ww", "-rLL=80n", "-P-cbou"])
            .arg(&file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.is_empty(),
            "{path:?}: {stderr}"
        );
        let shown = String::from_utf8_lossy(&out.stdout);
        // The facts --help gives reach the page.
        assert!(shown.contains("--config_path VALUE"), "{shown}");
        assert!(shown.contains("default: \"/etc/osquery/osquery.conf\""));
        assert!(shown.contains("/usr/share/osquery/packs/"));
        assert!(shown.contains("EXIT STATUS"));
    }
}

#[test]
fn mandoc_finds_nothing_to_say() {
    let Some(mandoc) = require_tool("mandoc") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in pages() {
        let file = written(dir.path(), &path, &text);
        let out = Command::new(&mandoc)
            .args(["-Tlint", "-Wwarning"])
            .arg(&file)
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success() && said.is_empty(), "{path:?}: {said}");
    }
}

fn completion(name: &str) -> (PathBuf, String) {
    rendered()
        .into_iter()
        .find(|(path, _, _)| path.ends_with(name))
        .map(|(path, text, _)| (path, text))
        .unwrap()
}

#[test]
fn completion_scripts_parse() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, args, files) in [
        ("bash", &["-n"][..], ["osqueryi.bash", "osqueryd.bash"]),
        ("zsh", &["-n"][..], ["_osqueryi", "_osqueryd"]),
        (
            "fish",
            &["--no-execute"][..],
            ["osqueryi.fish", "osqueryd.fish"],
        ),
    ] {
        let Some(program) = require_tool(shell) else {
            continue;
        };
        for name in files {
            let (path, text) = completion(name);
            let file = written(dir.path(), &path, &text);
            stderr_of(Command::new(&program).args(args).arg(&file));
        }
    }
}
