//! Running osqueryi as a process, shared by the shell test binaries.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_osqueryi");

/// What one run of osqueryi produced.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn finish(out: Output) -> Run {
    Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

fn spawn(command: &mut Command, stdin: &str) -> Run {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("osqueryi starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    finish(child.wait_with_output().unwrap())
}

/// Runs osqueryi with `args` and `stdin` piped in.
pub fn run_with_input(args: &[&str], stdin: &str) -> Run {
    spawn(Command::new(BIN).args(args), stdin)
}

/// Runs osqueryi with `args`, `stdin` piped in and HOME set to `home` (the shell derives
/// its socket and database paths from it).
pub fn run_in(home: &Path, args: &[&str], stdin: &str) -> Run {
    spawn(Command::new(BIN).args(args).env("HOME", home), stdin)
}

pub fn run(args: &[&str]) -> Run {
    run_with_input(args, "")
}

/// Runs and expects success with nothing on stderr; returns stdout.
pub fn ok(args: &[&str]) -> String {
    let r = run(args);
    assert_eq!(r.code, 0, "{args:?}: stderr {}", r.stderr);
    assert_eq!(r.stderr, "", "{args:?}");
    r.stdout
}

/// Runs with `args` and expects success with nothing on stderr; returns stdout's bytes,
/// which need not be UTF-8 (values are written as SQLite holds them).
pub fn ok_bytes(args: &[&str]) -> Vec<u8> {
    let out = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("osqueryi runs");
    assert!(out.status.success(), "{args:?}: {out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{args:?}");
    out.stdout
}
