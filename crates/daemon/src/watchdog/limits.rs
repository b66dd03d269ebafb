//! The watchdog's arithmetic: osquery's limits per `--watchdog_level` with the flag
//! overrides, and [`ProcessWatch`], which turns successive samples of one process's CPU
//! time and resident memory into a verdict.

use oxquery_sys::fs::FileReader;
use oxquery_sys::proc::{ProcPath, clock_ticks, page_size, parse_stat};

/// osquery's limits for one `--watchdog_level`, after the flag overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Megabytes of resident memory a process may grow above its first check.
    pub memory_mb: u64,
    /// Percent of all CPUs' time a process may use, capped at 100.
    pub utilization_percent: u64,
    /// Seconds a process may stay over the utilization limit.
    pub latency_s: u64,
    /// A worker that lived less than this many seconds restarted "too quickly"; that
    /// many quick restarts end the watcher.
    pub respawn_limit: u64,
    /// Seconds added to the back-off of a quick restart (plus 2^restarts).
    pub respawn_delay_s: u64,
    /// Seconds between checks.
    pub interval_s: u64,
}

impl Limits {
    /// osquery's table: level 0 normal, 1 restrictive, -1 off (loose limits; the watcher
    /// still runs); any other level behaves like 0.
    pub fn for_level(level: i32) -> Limits {
        match level {
            1 => Limits {
                memory_mb: 100,
                utilization_percent: 5,
                latency_s: 6,
                respawn_limit: 4,
                respawn_delay_s: 5,
                interval_s: 3,
            },
            -1 => Limits {
                memory_mb: 10_000,
                utilization_percent: 100,
                latency_s: 1000,
                respawn_limit: 1000,
                respawn_delay_s: 1,
                interval_s: 3,
            },
            _ => Limits {
                memory_mb: 200,
                utilization_percent: 10,
                latency_s: 12,
                respawn_limit: 4,
                respawn_delay_s: 5,
                interval_s: 3,
            },
        }
    }

    /// The level's limits with the `--watchdog_*_limit` overrides (0 keeps the level's).
    pub fn with_overrides(
        mut self,
        memory_mb: u64,
        utilization_percent: u64,
        latency_s: u64,
    ) -> Limits {
        if memory_mb > 0 {
            self.memory_mb = memory_mb;
        }
        if utilization_percent > 0 {
            self.utilization_percent = utilization_percent;
        }
        if latency_s > 0 {
            self.latency_s = latency_s;
        }
        self.utilization_percent = self.utilization_percent.min(100);
        self
    }
}

/// One reading of a process: CPU time used so far, resident memory, parent, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Monotonic milliseconds at which it was taken.
    pub at_ms: u64,
    /// User plus system CPU time since the process started, in milliseconds.
    pub cpu_ms: u64,
    pub rss_bytes: u64,
    pub parent: i64,
}

impl Sample {
    /// Reads `/proc/<pid>/stat` (CPU ticks, resident pages, parent); `None` once the
    /// process is gone.
    pub fn read(reader: &mut FileReader, pid: u32, at_ms: u64) -> Option<Sample> {
        let text = ProcPath::new(pid).read(reader, "stat").ok()?;
        let (_, stat) = parse_stat(text)?;
        if stat.state == b'Z' {
            return None;
        }
        let ticks = clock_ticks().max(1);
        Some(Sample {
            at_ms,
            cpu_ms: (stat.utime + stat.stime) * 1000 / ticks,
            rss_bytes: u64::try_from(stat.rss).unwrap_or(0) * page_size(),
            parent: stat.ppid,
        })
    }
}

/// What one check found.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Within,
    /// Resident memory grew more than the limit above the first check.
    OverMemory {
        grown_mb: u64,
        limit_mb: u64,
    },
    /// CPU utilization stayed over the limit for at least the latency limit.
    OverCpu {
        percent: u64,
        limit_percent: u64,
        seconds: u64,
    },
}

impl Verdict {
    /// The reason as the status log and `osquery_schedule.denylist_reason` give it.
    pub fn reason(&self) -> Option<String> {
        match self {
            Verdict::Within => None,
            Verdict::OverMemory { grown_mb, limit_mb } => {
                Some(format!("memory {grown_mb} MB over limit {limit_mb} MB"))
            }
            Verdict::OverCpu {
                percent,
                limit_percent,
                seconds,
            } => Some(format!(
                "CPU {percent}% over {limit_percent}% for {seconds} s"
            )),
        }
    }
}

/// The figures of one check (`--enable_watchdog_debug` logs them).
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// Share of all CPUs used since the previous check, in percent.
    pub cpu_percent: u64,
    /// Resident memory above the first check, in MB.
    pub grown_mb: u64,
    pub rss_mb: u64,
    /// How long the utilization has been over the limit, in milliseconds.
    pub over_cpu_ms: u64,
    pub verdict: Verdict,
}

/// Watches one process against [`Limits`], from samples taken every `interval_s`: the
/// watcher uses one for its worker (and one for itself, memory only). This is the
/// reusable piece for `--enable_extensions_watchdog`: an extension started by the
/// daemon gets its own `ProcessWatch` over its pid, sampled with [`Sample::read`], and
/// is stopped the same way on a verdict other than [`Verdict::Within`].
///
/// As osquery: the memory is what the process grew above its first sample; the CPU
/// budget of an interval is `percent × interval × CPUs`; each interval over it adds to
/// the time over the limit, any interval under resets it, and the verdict comes when
/// that time reaches the latency limit.
#[derive(Debug, Clone)]
pub struct ProcessWatch {
    limits: Limits,
    cpus: u64,
    first_rss: Option<u64>,
    last: Option<Sample>,
    over_cpu_ms: u64,
}

impl ProcessWatch {
    /// A watch from a process's start: its CPU time counts from 0 at `started_ms`.
    pub fn new(limits: Limits, cpus: u64, started_ms: u64) -> ProcessWatch {
        ProcessWatch {
            limits,
            cpus: cpus.max(1),
            first_rss: None,
            last: Some(Sample {
                at_ms: started_ms,
                cpu_ms: 0,
                rss_bytes: 0,
                parent: 0,
            }),
            over_cpu_ms: 0,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Takes in one sample and says whether the process is over a limit.
    pub fn observe(&mut self, sample: Sample) -> Check {
        const MB: u64 = 1024 * 1024;
        let first = *self.first_rss.get_or_insert(sample.rss_bytes);
        let grown_mb = sample.rss_bytes.saturating_sub(first) / MB;
        let (elapsed_ms, used_ms) = match self.last {
            Some(last) => (
                sample.at_ms.saturating_sub(last.at_ms),
                sample.cpu_ms.saturating_sub(last.cpu_ms),
            ),
            None => (0, 0),
        };
        self.last = Some(sample);
        let capacity_ms = elapsed_ms * self.cpus;
        let cpu_percent = (used_ms * 100).checked_div(capacity_ms).unwrap_or(0);
        let budget_ms = self.limits.utilization_percent * capacity_ms / 100;
        if elapsed_ms > 0 && used_ms > budget_ms {
            self.over_cpu_ms += elapsed_ms;
        } else {
            self.over_cpu_ms = 0;
        }
        let verdict = if self.over_cpu_ms > 0 && self.over_cpu_ms >= self.limits.latency_s * 1000 {
            Verdict::OverCpu {
                percent: cpu_percent,
                limit_percent: self.limits.utilization_percent,
                seconds: (self.over_cpu_ms + 500) / 1000,
            }
        } else if grown_mb > self.limits.memory_mb {
            Verdict::OverMemory {
                grown_mb,
                limit_mb: self.limits.memory_mb,
            }
        } else {
            Verdict::Within
        };
        Check {
            cpu_percent,
            grown_mb,
            rss_mb: sample.rss_bytes / MB,
            over_cpu_ms: self.over_cpu_ms,
            verdict,
        }
    }
}

/// CPUs online, the unit of the utilization budget.
pub fn cpus_online() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    u64::try_from(n).unwrap_or(1).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1024 * 1024;

    fn sample(at_s: u64, cpu_ms: u64, rss_mb: u64) -> Sample {
        Sample {
            at_ms: at_s * 1000,
            cpu_ms,
            rss_bytes: rss_mb * MB,
            parent: 1,
        }
    }

    #[test]
    fn each_level_has_osquery_limits_and_overrides_replace_single_values() {
        let normal = Limits::for_level(0);
        assert_eq!(
            (
                normal.memory_mb,
                normal.utilization_percent,
                normal.latency_s
            ),
            (200, 10, 12)
        );
        assert_eq!(
            (
                normal.respawn_limit,
                normal.respawn_delay_s,
                normal.interval_s
            ),
            (4, 5, 3)
        );
        let restrictive = Limits::for_level(1);
        assert_eq!(
            (
                restrictive.memory_mb,
                restrictive.utilization_percent,
                restrictive.latency_s
            ),
            (100, 5, 6)
        );
        let off = Limits::for_level(-1);
        assert_eq!(
            (off.memory_mb, off.utilization_percent, off.latency_s),
            (10_000, 100, 1000)
        );
        assert_eq!((off.respawn_limit, off.respawn_delay_s), (1000, 1));
        // Unknown levels are level 0.
        assert_eq!(Limits::for_level(3), normal);
        assert_eq!(Limits::for_level(-7), normal);

        let o = Limits::for_level(1).with_overrides(300, 0, 2);
        assert_eq!(
            (o.memory_mb, o.utilization_percent, o.latency_s),
            (300, 5, 2)
        );
        // The utilization limit is a share of all CPUs: never above 100.
        assert_eq!(
            Limits::for_level(0)
                .with_overrides(0, 250, 0)
                .utilization_percent,
            100
        );
    }

    #[test]
    fn memory_is_judged_above_the_first_sample() {
        let limits = Limits::for_level(0).with_overrides(50, 0, 0);
        let mut w = ProcessWatch::new(limits, 2, 0);
        // The first sample sets the base, however large.
        assert_eq!(w.observe(sample(3, 0, 400)).verdict, Verdict::Within);
        assert_eq!(w.observe(sample(6, 0, 450)).verdict, Verdict::Within);
        let check = w.observe(sample(9, 0, 451));
        assert_eq!(check.grown_mb, 51);
        assert_eq!(
            check.verdict,
            Verdict::OverMemory {
                grown_mb: 51,
                limit_mb: 50
            }
        );
        assert_eq!(
            check.verdict.reason().unwrap(),
            "memory 51 MB over limit 50 MB"
        );
        // Shrinking below the base is not negative growth.
        assert_eq!(w.observe(sample(12, 0, 10)).grown_mb, 0);
    }

    #[test]
    fn cpu_must_stay_over_the_limit_for_the_latency_window() {
        // 10% of 2 CPUs over 3 s is 600 ms per interval; 12 s is four intervals.
        let mut w = ProcessWatch::new(Limits::for_level(0), 2, 0);
        let mut cpu = 0;
        let mut at = 0;
        let mut step = |w: &mut ProcessWatch, used: u64| {
            cpu += used;
            at += 3;
            w.observe(sample(at, cpu, 50))
        };
        for _ in 0..3 {
            assert_eq!(step(&mut w, 2000).verdict, Verdict::Within);
        }
        // One interval under the budget starts the window again.
        let calm = step(&mut w, 600);
        assert_eq!((calm.over_cpu_ms, calm.cpu_percent), (0, 10));
        for _ in 0..3 {
            assert_eq!(step(&mut w, 3000).verdict, Verdict::Within);
        }
        let check = step(&mut w, 3000);
        assert_eq!(check.cpu_percent, 50);
        assert_eq!(
            check.verdict,
            Verdict::OverCpu {
                percent: 50,
                limit_percent: 10,
                seconds: 12
            }
        );
        assert_eq!(check.verdict.reason().unwrap(), "CPU 50% over 10% for 12 s");
    }

    #[test]
    fn the_budget_scales_with_the_time_that_really_passed_and_the_cpus() {
        // A late check (6 s instead of 3) has twice the budget.
        let limits = Limits::for_level(0).with_overrides(0, 25, 1);
        let mut w = ProcessWatch::new(limits, 4, 0);
        // 25% of 4 CPUs over 6 s = 6000 ms: using exactly that is within.
        assert_eq!(w.observe(sample(6, 6000, 10)).verdict, Verdict::Within);
        let over = w.observe(sample(9, 9001, 10));
        assert_eq!(over.cpu_percent, 25);
        assert!(matches!(over.verdict, Verdict::OverCpu { seconds: 3, .. }));
        // A sample taken at the same instant as the last says nothing about CPU.
        let mut w = ProcessWatch::new(limits, 4, 0);
        assert_eq!(w.observe(sample(0, 500, 10)).verdict, Verdict::Within);
    }

    #[test]
    fn a_live_process_can_be_sampled() {
        let mut reader = FileReader::new();
        let s = Sample::read(&mut reader, std::process::id(), 0).unwrap();
        // SAFETY: getppid has no preconditions.
        assert_eq!(s.parent, i64::from(unsafe { libc::getppid() }));
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        let rss_pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
        // Both read the same counter moments apart.
        let diff = (s.rss_bytes / page_size()).abs_diff(rss_pages);
        assert!(diff < 1024, "{} vs {rss_pages}", s.rss_bytes / page_size());
        assert!(Sample::read(&mut reader, u32::MAX - 1, 0).is_none());
    }
}
