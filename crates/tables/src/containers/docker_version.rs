//! `docker_version`: the Docker daemon's version.

use super::docker::{self, text};
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "docker_version",
    description: "The Docker daemon's version, one row (GET /version, as docker version shows for the server). No daemon: no rows.",
    attributes: [CACHEABLE],
    columns: {
        version: Text [COLLATE_VERSION] "Daemon version",
        api_version: Text [COLLATE_VERSION] "Engine API version it serves",
        min_api_version: Text [COLLATE_VERSION] "Oldest API version it accepts",
        git_commit: Text [] "Commit it was built from",
        go_version: Text [COLLATE_VERSION] "Go version it was built with",
        os: Text [] "Operating system",
        arch: Text [] "Hardware architecture",
        kernel_version: Text [COLLATE_VERSION] "Kernel version",
        build_time: Text [] "When it was built",
    },
    examples: ["select version, api_version from docker_version"],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let Some(v) = docker::get(ctx, TABLE.spec.name.as_ref(), "/version")? else {
        return Ok(());
    };
    if !v.is_object() {
        log::warn!("docker_version: Docker API /version: expected a JSON object");
        return Ok(());
    }
    let mut row = rows.row();
    row.set(Col::version, text(&v, "Version"));
    row.set(Col::api_version, text(&v, "ApiVersion"));
    row.set(Col::min_api_version, text(&v, "MinAPIVersion"));
    row.set(Col::git_commit, text(&v, "GitCommit"));
    row.set(Col::go_version, text(&v, "GoVersion"));
    row.set(Col::os, text(&v, "Os"));
    row.set(Col::arch, text(&v, "Arch"));
    row.set(Col::kernel_version, text(&v, "KernelVersion"));
    row.set(Col::build_time, text(&v, "BuildTime"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::docker::testing::{daemon, host_for};
    use crate::testing::{rows_of, text};

    #[test]
    fn matches_docker_version() {
        let Some(d) = daemon() else { return };
        let host = host_for(&d.socket);
        let rows = rows_of(&QueryContext::everything(TABLE.spec, &host), generate);
        assert_eq!(rows.len(), 1);
        let s: serde_json::Value =
            serde_json::from_str(&d.cli(&["version", "--format", "{{json .Server}}"])).unwrap();
        let row = &rows[0];
        for (col, key) in [
            (Col::version, "Version"),
            (Col::api_version, "ApiVersion"),
            (Col::min_api_version, "MinAPIVersion"),
            (Col::git_commit, "GitCommit"),
            (Col::go_version, "GoVersion"),
            (Col::os, "Os"),
            (Col::arch, "Arch"),
            (Col::kernel_version, "KernelVersion"),
            (Col::build_time, "BuildTime"),
        ] {
            assert_eq!(text(&row[col as usize]), s[key].as_str().unwrap(), "{key}");
        }
    }
}
