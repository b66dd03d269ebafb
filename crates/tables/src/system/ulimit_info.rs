//! `ulimit_info`: the resource limits of the oxquery process itself (`getrlimit(2)`),
//! one row per resource, named as in osquery (which uses the `RLIMIT_*` suffixes in
//! lower case) and listed in the same alphabetical order.

use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "ulimit_info",
    description: "Soft and hard resource limits (getrlimit) of the running oxquery process.",
    columns: {
        r#type: Text [] "Resource: as, core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, sigpending or stack",
        soft_limit: Text [] "Limit the kernel enforces now, or unlimited",
        hard_limit: Text [] "Ceiling an unprivileged process may raise the soft limit to, or unlimited",
    },
    examples: ["select * from ulimit_info where type = 'nofile'"],
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
type Resource = libc::c_int;

/// osquery's resource names in its (alphabetical) order.
const RESOURCES: [(&str, Resource); 15] = [
    ("as", libc::RLIMIT_AS),
    ("core", libc::RLIMIT_CORE),
    ("cpu", libc::RLIMIT_CPU),
    ("data", libc::RLIMIT_DATA),
    ("fsize", libc::RLIMIT_FSIZE),
    ("locks", libc::RLIMIT_LOCKS),
    ("memlock", libc::RLIMIT_MEMLOCK),
    ("msgqueue", libc::RLIMIT_MSGQUEUE),
    ("nice", libc::RLIMIT_NICE),
    ("nofile", libc::RLIMIT_NOFILE),
    ("nproc", libc::RLIMIT_NPROC),
    ("rss", libc::RLIMIT_RSS),
    ("rtprio", libc::RLIMIT_RTPRIO),
    ("sigpending", libc::RLIMIT_SIGPENDING),
    ("stack", libc::RLIMIT_STACK),
];

fn limit_text(v: libc::rlim_t) -> String {
    if v == libc::RLIM_INFINITY {
        "unlimited".to_owned()
    } else {
        v.to_string()
    }
}

fn generate(_ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    for (name, resource) in RESOURCES {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: lim is a valid, writable rlimit.
        if unsafe { libc::getrlimit(resource, &mut lim) } != 0 {
            let e = std::io::Error::last_os_error();
            log::info!("ulimit_info: getrlimit({name}) failed: {e}");
            continue;
        }
        let mut row = rows.row();
        row.set(Col::r#type, name);
        row.set_with(Col::soft_limit, || limit_text(lim.rlim_cur));
        row.set_with(Col::hard_limit, || limit_text(lim.rlim_max));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Value};
    use oxquery_test_support::require_tool;
    use std::collections::BTreeMap;

    fn table() -> Vec<(String, String, String)> {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        let t = |v: &Value| match v {
            Value::Text(s) => s.to_string(),
            v => panic!("not text: {v:?}"),
        };
        rows.iter()
            .map(|r| {
                (
                    t(&r[Col::r#type as usize]),
                    t(&r[Col::soft_limit as usize]),
                    t(&r[Col::hard_limit as usize]),
                )
            })
            .collect()
    }

    /// `prlimit --raw` (util-linux, the prlimit64 syscall) on this process, by
    /// resource name; `None` when the test skips (no prlimit outside CI).
    fn prlimit() -> Option<BTreeMap<String, (String, String)>> {
        let out = std::process::Command::new(require_tool("prlimit")?)
            .args([
                "--pid",
                &std::process::id().to_string(),
                "--raw",
                "--noheadings",
                "--output",
                "RESOURCE,SOFT,HARD",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "prlimit failed");
        let text = String::from_utf8(out.stdout).unwrap();
        Some(
            text.lines()
                .filter_map(|l| {
                    let mut f = l.split_whitespace();
                    let name = f.next()?.to_lowercase();
                    Some((name, (f.next()?.to_owned(), f.next()?.to_owned())))
                })
                .collect(),
        )
    }

    #[test]
    fn matches_prlimit_and_proc_self_limits() {
        // Give one limit a distinctive value first, so the comparison cannot pass on a
        // stale or default reading: the core-size soft limit, harmless for a test run.
        let mut core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: core is writable.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut core) }, 0);
        let wanted: libc::rlim_t = 123 * 4096;
        if core.rlim_max == libc::RLIM_INFINITY || core.rlim_max >= wanted {
            core.rlim_cur = wanted;
            // SAFETY: lowering our own soft limit within the hard one.
            assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_CORE, &core) }, 0);
        }

        let rows = table();
        let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        let expected: Vec<&str> = RESOURCES.iter().map(|r| r.0).collect();
        assert_eq!(names, expected);
        let by_name: BTreeMap<&str, (&str, &str)> = rows
            .iter()
            .map(|(n, s, h)| (n.as_str(), (s.as_str(), h.as_str())))
            .collect();
        if core.rlim_cur == wanted {
            assert_eq!(by_name["core"].0, "503808");
        }

        // prlimit prints RLIM_INFINITY as -1 in raw mode.
        if let Some(p) = prlimit() {
            for (name, (soft, hard)) in &by_name {
                let (ps, ph) = &p[*name];
                let norm = |v: &str| {
                    if v == "-1" {
                        "unlimited".to_owned()
                    } else {
                        v.to_owned()
                    }
                };
                assert_eq!(
                    (soft.to_string(), hard.to_string()),
                    (norm(ps), norm(ph)),
                    "{name}"
                );
            }
        }

        // /proc/self/limits, a third reader: its line order follows the kernel's
        // resource numbers; match by the descriptive names.
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
        let labels = [
            ("cpu", "Max cpu time"),
            ("fsize", "Max file size"),
            ("data", "Max data size"),
            ("stack", "Max stack size"),
            ("core", "Max core file size"),
            ("rss", "Max resident set"),
            ("nproc", "Max processes"),
            ("nofile", "Max open files"),
            ("memlock", "Max locked memory"),
            ("as", "Max address space"),
            ("locks", "Max file locks"),
            ("sigpending", "Max pending signals"),
            ("msgqueue", "Max msgqueue size"),
            ("nice", "Max nice priority"),
            ("rtprio", "Max realtime priority"),
        ];
        for (name, label) in labels {
            let line = limits.lines().find(|l| l.starts_with(label)).unwrap();
            let mut f = line[label.len()..].split_whitespace();
            let (s, h) = (f.next().unwrap(), f.next().unwrap());
            assert_eq!(by_name[name], (s, h), "{name}");
        }
    }
}
