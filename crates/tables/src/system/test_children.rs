//! Test support for the process tables: child processes the tests start and always reap,
//! and a runner for a table's generator.

use oxquery_table::{QueryContext, Rows, TableResult};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A child process killed and reaped when the test ends, pass or fail.
pub struct Reaped(pub Child);

impl Reaped {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (up to about ten seconds) until the child runs `comm` and is asleep: `spawn`
/// returns once the exec is committed, before `/proc` shows the new image. The kernel
/// renames the task before it has laid out the new environment and mappings, so the name
/// alone is not enough; a `sleep` in state S has finished loading. Returns whether it got
/// there.
pub fn wait_for_comm(pid: u32, comm: &str) -> bool {
    let comm_path = format!("/proc/{pid}/comm");
    let stat_path = format!("/proc/{pid}/stat");
    let asleep = || {
        std::fs::read_to_string(&stat_path).is_ok_and(|stat| {
            stat.rfind(')')
                .and_then(|end| stat[end + 1..].split_whitespace().next())
                == Some("S")
        })
    };
    for _ in 0..5000 {
        if std::fs::read_to_string(&comm_path).is_ok_and(|c| c.trim_end_matches('\n') == comm)
            && asleep()
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

/// `/bin/sleep 600` with null stdio unless `configure` says otherwise, once it runs.
pub fn spawn_sleep(configure: impl FnOnce(&mut Command)) -> Reaped {
    let mut cmd = Command::new("/bin/sleep");
    cmd.arg("600")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    configure(&mut cmd);
    let child = Reaped(cmd.spawn().expect("spawn /bin/sleep"));
    assert!(wait_for_comm(child.pid(), "sleep"), "sleep did not start");
    child
}

/// Runs a generator for `ctx` and returns its rows; a generator error fails the test.
pub fn run(
    generate: fn(&QueryContext, &mut Rows) -> TableResult,
    ctx: &QueryContext,
) -> Rows<'static> {
    let mut rows = Rows::for_context(ctx);
    generate(ctx, &mut rows).expect("generator failed");
    rows
}
