//! The shipped bash and fish completions (`dist/completions`, rendered by oxquery-dist)
//! complete against the real programs: flags, their values, dot commands, and table
//! names the program lists (`-S -L`). bash is driven as readline drives it (the word
//! dequoted in `$2`, `--name=` split at `=`), fish through `complete -C`.

use oxquery_test_support::require_tool;
use std::path::{Path, PathBuf};
use std::process::Command;

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../dist/completions")
        .join(name)
}

/// What `_PROGRAM` puts in COMPREPLY for `words` (as bash splits the line, the last one
/// being completed) when readline hands it `cur`.
fn bash_complete(program: &str, words: &[&str], cur: &str) -> Vec<String> {
    let bash = require_tool("bash").expect("bash");
    let binary = match program {
        "osqueryi" => env!("CARGO_BIN_EXE_osqueryi"),
        _ => env!("CARGO_BIN_EXE_osqueryd"),
    };
    let mut words: Vec<&str> = words.to_vec();
    words[0] = binary;
    let out = Command::new(bash)
        .arg("-c")
        .arg(format!(
            r#"source "$1"; shift
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
prev=; ((COMP_CWORD > 0)) && prev=${{COMP_WORDS[COMP_CWORD-1]}}
_{program} "$1" "$CUR" "$prev"
printf '%s\n' "${{COMPREPLY[@]}}""#
        ))
        .arg("bash")
        .arg(script(&format!("{program}.bash")))
        .args(&words)
        .env("CUR", cur)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completes_flags_and_their_values() {
    assert_eq!(
        bash_complete("osqueryi", &["osqueryi", "--config_p"], "--config_p"),
        ["--config_path"]
    );
    // `--pretty_expand=` is split at `=`: bash hands over an empty word after `=`.
    assert_eq!(
        bash_complete("osqueryi", &["osqueryi", "--pretty_expand", "="], ""),
        ["auto", "always", "never"]
    );
    assert_eq!(
        bash_complete(
            "osqueryi",
            &["osqueryi", "--pretty_expand", "=", "al"],
            "al"
        ),
        ["always"]
    );
    // A path flag's value is a file, given as the next word too.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("osquery.conf"), "{}").unwrap();
    let prefix = format!("{}/osq", dir.path().display());
    let expected = format!("{}/osquery.conf", dir.path().display());
    assert_eq!(
        bash_complete("osqueryd", &["osqueryd", "--config_path", &prefix], &prefix),
        [expected.clone()]
    );
    assert_eq!(
        bash_complete(
            "osqueryd",
            &["osqueryd", "--config_path", "=", &prefix],
            &prefix
        ),
        [expected]
    );
    // A boolean takes no value: the next word is completed as a flag again.
    assert_eq!(
        bash_complete("osqueryi", &["osqueryi", "--json", "--csv"], "--csv"),
        ["--csv"]
    );
    // The daemon has no shell-only flags, as its --help.
    assert!(bash_complete("osqueryd", &["osqueryd", "--cs"], "--cs").is_empty());
    assert!(
        bash_complete("osqueryd", &["osqueryd", "--"], "--")
            .contains(&"--disable_watchdog".to_owned())
    );
}

#[test]
fn bash_completes_table_names_from_the_program() {
    // -A takes one table; --disable_tables a comma-separated list.
    let tables = bash_complete("osqueryi", &["osqueryi", "-A", "os_v"], "os_v");
    assert_eq!(tables, ["os_version"]);
    let list = bash_complete(
        "osqueryd",
        &["osqueryd", "--disable_tables", "=", "processes,os_v"],
        "processes,os_v",
    );
    assert_eq!(list, ["processes,os_version"]);
}

#[test]
fn bash_completes_dot_commands_and_sql_in_the_statement_argument() {
    let commands = bash_complete("osqueryi", &["osqueryi", ".sc"], ".sc");
    assert_eq!(commands, [".schema"]);
    // In one quoted word, as osqueryi takes it: readline hands the word dequoted.
    let schema = bash_complete("osqueryi", &["osqueryi", "'.schema os_v"], ".schema os_v");
    assert_eq!(schema, [".schema os_version"]);
    let mode = bash_complete("osqueryi", &["osqueryi", "'.mode c"], ".mode c");
    assert_eq!(mode, [".mode csv", ".mode column"]);
    let sql = bash_complete(
        "osqueryi",
        &["osqueryi", "\"select * from os_v"],
        "select * from os_v",
    );
    assert_eq!(sql, ["select * from os_version"]);
    let join = bash_complete(
        "osqueryi",
        &["osqueryi", "\"SELECT * FROM users JOIN os_v"],
        "SELECT * FROM users JOIN os_v",
    );
    assert_eq!(join, ["SELECT * FROM users JOIN os_version"]);
    // Not after FROM/JOIN: nothing.
    assert!(bash_complete("osqueryi", &["osqueryi", "\"select os_v"], "select os_v").is_empty());
}

/// What fish offers for `line` (candidates without their descriptions), with `PATH`
/// leading to the built programs.
fn fish_complete(program: &str, line: &str) -> Option<Vec<String>> {
    let fish = require_tool("fish")?;
    let bin = Path::new(env!("CARGO_BIN_EXE_osqueryi")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // osqueryd is the same program under another name.
    let out = Command::new(fish)
        .args(["--no-config", "-c"])
        .arg(format!(
            "source {}; complete -C {}",
            script(&format!("{program}.fish")).display(),
            fish_quote(line)
        ))
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split('\t').next().unwrap_or("").to_owned())
            .collect(),
    )
}

fn fish_quote(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[test]
fn fish_completes_flags_commands_and_tables() {
    let Some(flags) = fish_complete("osqueryi", "osqueryi --config_p") else {
        return;
    };
    assert_eq!(flags, ["--config_path"]);
    let values = fish_complete("osqueryi", "osqueryi --pretty_expand=").unwrap();
    assert_eq!(
        values,
        [
            "--pretty_expand=auto",
            "--pretty_expand=always",
            "--pretty_expand=never"
        ]
    );
    let tables = fish_complete("osqueryi", "osqueryi -A os_v").unwrap();
    assert_eq!(tables, ["os_version"]);
    let commands = fish_complete("osqueryi", "osqueryi .sc").unwrap();
    assert_eq!(commands, [".schema"]);
    let schema = fish_complete("osqueryi", "osqueryi '.schema os_v").unwrap();
    assert_eq!(schema, [".schema os_version"]);
    let sql = fish_complete("osqueryi", "osqueryi 'select * from os_v").unwrap();
    assert_eq!(sql, ["select * from os_version"]);
    let daemon = fish_complete("osqueryd", "osqueryd --cs").unwrap();
    assert!(daemon.is_empty(), "{daemon:?}");
}
