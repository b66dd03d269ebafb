use super::*;
use oxquery_flags::flag;
use oxquery_store::Domain;
use std::path::Path;
use tempfile::TempDir;

/// A temp dir with `osquery.conf` (and helpers to add `.d` files and pack files).
struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new(main: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("osquery.conf"), main).unwrap();
        Fixture { dir }
    }

    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn main_path(&self) -> String {
        self.path("osquery.conf").to_string_lossy().into_owned()
    }

    fn flags(&self) -> Flags {
        let mut flags = Flags::new();
        flags.set("config_path", &self.main_path()).unwrap();
        flags
    }

    fn load(&self) -> Result<Config, ConfigError> {
        Config::load(&self.flags())
    }
}

fn load_text(text: &str) -> Result<Config, ConfigError> {
    Fixture::new(text).load()
}

fn err_text(text: &str) -> String {
    load_text(text).unwrap_err().to_string()
}

/// No tables: `--config_check` then finds only the queries that need none.
const NO_TABLES: &[&oxquery_table::TableDef] = &[];

fn host(shard: u64) -> HostFacts {
    HostFacts {
        machine_shard: shard,
        version: "5.23.0".to_owned(),
    }
}

fn names(schedule: &[ScheduledQuery]) -> Vec<&str> {
    schedule.iter().map(|q| q.name.as_str()).collect()
}

fn schedule_all(config: &Config, host: &HostFacts) -> Vec<ScheduledQuery> {
    let store = Store::in_memory().unwrap();
    config.schedule(host, &store, &mut |_| true).unwrap()
}

// ---- sources: comments, continuations, limits ----

#[test]
fn comments_and_continuations_are_stripped() {
    let text = "# hash comment\n  // indented slash comment\n{\"a\": \"x\\\ny\", \n   # inside\n\"b\": 1}\n";
    let stripped = strip_comments(text);
    assert!(!stripped.contains("comment"));
    assert!(!stripped.contains("inside"));
    assert!(stripped.contains("\"a\": \"xy\""));
    let config = load_text(
        "// header\n{\n # a comment line\n \"schedule\": {\"q\": {\"query\": \"SELECT \\\n1;\", \"interval\": 10}}\n}\n",
    )
    .unwrap();
    assert_eq!(config.packs[0].queries[0].query, "SELECT 1;");
}

#[test]
fn a_slash_inside_a_value_is_not_a_comment() {
    let config =
        load_text("{\"schedule\": {\"q\": {\"query\": \"SELECT '//x' AS p;\", \"interval\": 5}}}")
            .unwrap();
    assert_eq!(config.packs[0].queries[0].query, "SELECT '//x' AS p;");
}

#[test]
fn size_limit_counts_text_after_stripping() {
    let big = format!(
        "{{\"views\": {{\"v\": \"{}\"}}}}",
        "x".repeat(MAX_CONFIG_SIZE)
    );
    let e = err_text(&big);
    assert!(e.contains("limit is 4194304 bytes"), "{e}");
    // The same volume in comment lines is dropped before the limit applies.
    let comments = "# padding padding padding padding padding padding padding\n".repeat(80_000);
    assert!(comments.len() > MAX_CONFIG_SIZE);
    let config = load_text(&format!("{comments}{{}}")).unwrap();
    assert!(config.packs.is_empty());
    // So is indentation (kept, as spaces, only to keep columns true).
    let indented = format!(
        "{{\"views\": {{\n{}\"v\": \"{}\"}}}}",
        " ".repeat(MAX_CONFIG_SIZE),
        "x".repeat(MAX_CONFIG_SIZE - 64)
    );
    assert!(load_text(&indented).is_ok());
}

fn nested(levels_of_arrays: usize) -> String {
    format!(
        "{{\"views\": {{}}, \"x\": {}1{}}}",
        "[".repeat(levels_of_arrays),
        "]".repeat(levels_of_arrays)
    )
}

#[test]
fn depth_limit_is_32_levels() {
    // Root object (1) + arrays + the scalar (1).
    assert!(load_text(&nested(30)).is_ok());
    let e = err_text(&nested(31));
    assert!(e.contains("33 levels deep; at most 32"), "{e}");
    // Far deeper than serde_json's own recursion limit: an error, no stack overflow.
    assert!(load_text(&nested(100_000)).is_err());
}

#[test]
fn root_must_be_an_object() {
    for text in ["[]", "\"config\"", "42", "null", "true"] {
        let e = err_text(text);
        assert!(
            e.contains("root of the config must be a JSON object"),
            "{text}: {e}"
        );
    }
}

#[test]
fn missing_main_file_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.conf");
    let mut flags = Flags::new();
    flags.set("config_path", &path.to_string_lossy()).unwrap();
    let e = Config::load(&flags).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("config file does not exist: {}", path.display())
    );
    // A directory is not a config file either, and is called what it is.
    flags
        .set("config_path", &dir.path().to_string_lossy())
        .unwrap();
    assert_eq!(
        Config::load(&flags).unwrap_err().to_string(),
        format!("cannot read {}: is a directory", dir.path().display())
    );
}

#[test]
fn bad_json_names_the_source() {
    let f = Fixture::new("{\"schedule\": {\"q\": }");
    let e = f.load().unwrap_err().to_string();
    assert!(e.starts_with(&f.main_path()), "{e}");
    assert!(e.contains("invalid JSON"), "{e}");
}

// ---- .d sources: order and merging ----

#[test]
fn dot_d_sources_sorted_and_merged() {
    let f = Fixture::new(
        r#"{"options": {"schedule_default_interval": 100, "verbose": true},
            "schedule": {"shared": {"query": "SELECT 'main';"}, "only_main": {"query": "SELECT 1;"}}}"#,
    );
    f.write(
        "osquery.conf.d/b.conf",
        r#"{"options": {"schedule_default_interval": 300},
            "schedule": {"shared": {"query": "SELECT 'b';"}}}"#,
    );
    f.write(
        "osquery.conf.d/a.conf",
        r#"{"options": {"schedule_default_interval": 200}, "packs": {"p": {"queries": {"x": {"query": "SELECT 2;"}}}}}"#,
    );
    f.write("osquery.conf.d/ignored.json", "not json at all");
    let config = f.load().unwrap();
    let order: Vec<_> = config
        .sources
        .iter()
        .map(|s| {
            Path::new(&s.name)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(order, ["osquery.conf", "a.conf", "b.conf"]);
    // Later sources win for options...
    assert_eq!(config.options["schedule_default_interval"], 300);
    assert_eq!(config.options["verbose"], true);
    assert_eq!(config.settings.default_interval, 300);
    // ...and for a query name two sources both schedule.
    let schedule = schedule_all(&config, &host(0));
    let shared: Vec<_> = schedule.iter().filter(|q| q.name == "shared").collect();
    assert_eq!(shared.len(), 1);
    assert_eq!(shared[0].query, "SELECT 'b';");
    assert!(config.warnings.iter().any(|w| w.contains("replaces")));
    let mut got = names(&schedule);
    got.sort();
    assert_eq!(got, ["only_main", "pack_p_x", "shared"]);
    // Two `main` packs, one per source, as osquery keeps them.
    assert_eq!(config.packs_named("main").count(), 2);
    // The options' default interval applies to queries without one.
    assert!(schedule.iter().all(|q| q.interval == 300));
}

#[test]
fn unreadable_dot_d_file_is_skipped_but_bad_one_is_an_error() {
    let f = Fixture::new("{}");
    f.write("osquery.conf.d/bad.conf", "{\"schedule\": 5}");
    let e = f.load().unwrap_err().to_string();
    assert!(
        e.contains("bad.conf: schedule: must be an object, not a number"),
        "{e}"
    );
}

// ---- packs ----

#[test]
fn packs_inline_by_path_and_by_glob() {
    let f = Fixture::new("{}");
    f.write(
        "packs/one.conf",
        "// pack file comment\n{\"queries\": {\"q1\": {\"query\": \"SELECT 1;\", \"interval\": \"60\"}}}",
    );
    f.write(
        "more/alpha.conf",
        r#"{"queries": {"a": {"query": "SELECT 'a';"}}}"#,
    );
    f.write(
        "more/beta.conf",
        r#"{"queries": {"b": {"query": "SELECT 'b';"}}}"#,
    );
    f.write("more/skip.txt", "{}");
    let main = format!(
        r#"{{"packs": {{
            "inline": {{"queries": {{"i": {{"query": "SELECT 0;", "interval": 30}}}}}},
            "file": "{}",
            "*": "{}/more/%.conf"
        }}}}"#,
        f.path("packs/one.conf").display(),
        f.dir.path().display()
    );
    f.write("osquery.conf", &main);
    let config = f.load().unwrap();
    let packs: Vec<_> = config.packs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(packs, ["inline", "file", "alpha", "beta"]);
    assert!(config.packs.iter().all(|p| p.source == f.main_path()));
    let schedule = schedule_all(&config, &host(0));
    assert_eq!(
        names(&schedule),
        [
            "pack_inline_i",
            "pack_file_q1",
            "pack_alpha_a",
            "pack_beta_b"
        ]
    );
    assert_eq!(schedule[1].interval, 60);
}

#[test]
fn pack_file_problems_are_errors_naming_the_file() {
    let f = Fixture::new("{\"packs\": {\"gone\": \"/nonexistent/pack.conf\"}}");
    let e = f.load().unwrap_err().to_string();
    assert!(
        e.contains("packs.gone: pack file does not exist: /nonexistent/pack.conf"),
        "{e}"
    );

    let f = Fixture::new("{}");
    f.write("bad.conf", "{\"queries\": {\"q\": {\"query\": 7}}}");
    f.write(
        "osquery.conf",
        &format!(
            "{{\"packs\": {{\"bad\": \"{}\"}}}}",
            f.path("bad.conf").display()
        ),
    );
    let e = f.load().unwrap_err().to_string();
    assert!(
        e.starts_with(&f.path("bad.conf").to_string_lossy().into_owned()),
        "{e}"
    );
    assert!(
        e.contains("pack.queries.q.query: must be a string, not a number"),
        "{e}"
    );
}

#[test]
fn pack_keys_are_read() {
    let config = load_text(
        r#"{"packs": {"p": {"platform": "linux", "version": "4.0.0", "shard": "20",
            "discovery": ["SELECT 1;"], "oncall": "secops",
            "queries": {"q": {"query": "SELECT 1;"}}}, "bare": {}}}"#,
    )
    .unwrap();
    let p = &config.packs[0];
    assert_eq!(
        (
            p.platform.as_str(),
            p.version.as_str(),
            p.shard,
            p.oncall.as_str()
        ),
        ("linux", "4.0.0", 20, "secops")
    );
    assert_eq!(p.discovery, ["SELECT 1;"]);
    assert_eq!(config.packs[1].oncall, "unknown");
    assert!(config.packs[1].queries.is_empty());
}

// ---- filters ----

#[test]
fn platform_rules() {
    for yes in [
        "",
        "null",
        "any",
        "all",
        "linux",
        "ubuntu",
        "centos",
        "posix",
        "darwin,linux",
        "freebsd,posix",
    ] {
        assert!(platform_matches(yes), "{yes}");
    }
    for no in ["darwin", "windows", "freebsd", "darwin,windows"] {
        assert!(!platform_matches(no), "{no}");
    }
}

#[test]
fn version_rules() {
    assert!(version_satisfied("", "5.23.0"));
    assert!(version_satisfied("null", "5.23.0"));
    assert!(version_satisfied("1.4.5", "5.23.0"));
    assert!(version_satisfied("5.23.0", "5.23.0"));
    assert!(version_satisfied("5.23", "5.23.0"));
    assert!(version_satisfied("5.9.1", "5.23.0"));
    assert!(!version_satisfied("5.23.1", "5.23.0"));
    assert!(!version_satisfied("6.0.0", "5.23.0"));
    assert!(!version_satisfied("5.100", "5.23.0"));
    assert_eq!(
        HostFacts::current().version,
        oxquery_engine::instance::VERSION
    );
}

#[test]
fn shard_rules() {
    // Independent digests: sha1("localhost") = 3343..., sha1("web-42.example.com") = 73a3...
    assert_eq!(machine_shard("localhost"), 0x33 * 100 / 255);
    assert_eq!(machine_shard("localhost"), 20);
    assert_eq!(machine_shard("web-42.example.com"), 45);
    assert!(shard_includes(0, 99));
    assert!(shard_includes(45, 45));
    assert!(shard_includes(46, 45));
    assert!(!shard_includes(44, 45));
}

#[test]
fn schedule_applies_platform_version_and_shard() {
    let config = load_text(
        r#"{"schedule": {
                "plain": {"query": "SELECT 1;"},
                "mac": {"query": "SELECT 1;", "platform": "darwin"},
                "future": {"query": "SELECT 1;", "version": "9.0.0"},
                "shard10": {"query": "SELECT 1;", "shard": 10},
                "shard50": {"query": "SELECT 1;", "shard": 50}},
            "packs": {
                "macpack": {"platform": "darwin", "queries": {"q": {"query": "SELECT 1;"}}},
                "newpack": {"version": "6.0.0", "queries": {"q": {"query": "SELECT 1;"}}},
                "smallshard": {"shard": 5, "queries": {"q": {"query": "SELECT 1;"}}},
                "linuxpack": {"platform": "linux", "queries": {"q": {"query": "SELECT 1;"}}}}}"#,
    )
    .unwrap();
    let s = schedule_all(&config, &host(20));
    assert_eq!(names(&s), ["plain", "shard50", "pack_linuxpack_q"]);
    let s = schedule_all(&config, &host(3));
    assert_eq!(
        names(&s),
        [
            "plain",
            "shard10",
            "shard50",
            "pack_smallshard_q",
            "pack_linuxpack_q"
        ]
    );
    // osquery_packs needs them all, whatever applies.
    assert_eq!(config.packs.len(), 5);
}

#[test]
fn discovery_with_a_fake_runner() {
    let config = load_text(
        r#"{"packs": {
            "yes": {"discovery": ["SELECT 1 WHERE 1;", "SELECT 2;"], "queries": {"q": {"query": "SELECT 1;"}}},
            "empty": {"discovery": ["SELECT 1 WHERE 0;"], "queries": {"q": {"query": "SELECT 1;"}}},
            "broken": {"discovery": ["BROKEN"], "queries": {"q": {"query": "SELECT 1;"}}},
            "none": {"queries": {"q": {"query": "SELECT 1;"}}}}}"#,
    )
    .unwrap();
    let store = Store::in_memory().unwrap();
    let mut cache = DiscoveryCache::new();
    let calls = std::cell::Cell::new(0);
    let mut runner = |sql: &str| -> Result<usize, String> {
        calls.set(calls.get() + 1);
        match sql {
            "BROKEN" => Err("near \"BROKEN\": syntax error".to_owned()),
            s if s.contains("WHERE 0") => Ok(0),
            _ => Ok(1),
        }
    };
    let s = config
        .schedule_with_discovery(&host(0), &store, &mut cache, 1000, &mut runner)
        .unwrap();
    assert_eq!(names(&s), ["pack_yes_q", "pack_none_q"]);
    assert_eq!((cache.misses, cache.hits), (3, 0));
    // Within --pack_refresh_interval the verdicts are reused: no SQL runs.
    let _ = config
        .schedule_with_discovery(&host(0), &store, &mut cache, 1000 + 3599, &mut runner)
        .unwrap();
    assert_eq!((cache.misses, cache.hits), (3, 3));
    let _ = config
        .schedule_with_discovery(&host(0), &store, &mut cache, 1000 + 3600, &mut runner)
        .unwrap();
    assert_eq!((cache.misses, cache.hits), (6, 3));
    assert_eq!(calls.get(), 8);
}

#[test]
fn discovery_cache_notices_changed_queries() {
    let mut pack = load_text(r#"{"packs": {"p": {"discovery": ["SELECT 1;"]}}}"#)
        .unwrap()
        .packs
        .remove(0);
    let mut cache = DiscoveryCache::new();
    let mut rows = |_: &str| -> Result<usize, String> { Ok(1) };
    assert!(cache.is_active(&pack, 10, 3600, &mut rows));
    pack.discovery = vec!["SELECT 0 WHERE 0;".to_owned()];
    let mut none = |_: &str| -> Result<usize, String> { Ok(0) };
    assert!(!cache.is_active(&pack, 11, 3600, &mut none));
}

// ---- query keys and names ----

#[test]
fn reserved_and_empty_names_are_rejected() {
    for name in [
        "query.x",
        "cache.x",
        "config_views.x",
        "myepoch",
        "mycounter",
        "",
    ] {
        let text = format!(r#"{{"schedule": {{"{name}": {{"query": "SELECT 1;"}}}}}}"#);
        let e = err_text(&text);
        assert!(e.contains("query name"), "{name}: {e}");
    }
    // In a pack the full name is what is checked: its suffix still matters.
    let e = err_text(r#"{"packs": {"p": {"queries": {"x_counter": {"query": "SELECT 1;"}}}}}"#);
    assert!(e.contains("pack_p_x_counter"), "{e}");
    // A pack query may be called query.x: its full name starts with "pack".
    assert!(
        load_text(r#"{"packs": {"p": {"queries": {"query.x": {"query": "SELECT 1;"}}}}}"#).is_ok()
    );
    assert!(check_query_name("epochs").is_ok());
}

#[test]
fn full_names_use_the_pack_delimiter() {
    assert_eq!(full_query_name("main", "q", "_"), "q");
    assert_eq!(full_query_name("p", "q", "_"), "pack_p_q");
    let config = load_text(
        r#"{"options": {"pack_delimiter": "/"}, "packs": {"p": {"queries": {"q": {"query": "SELECT 1;"}}}}}"#,
    )
    .unwrap();
    assert_eq!(config.packs[0].queries[0].full_name, "pack/p/q");
}

#[test]
fn denylist_and_old_blacklist() {
    let config = load_text(
        r#"{"schedule": {
            "default": {"query": "SELECT 1;"},
            "new": {"query": "SELECT 1;", "denylist": false},
            "old": {"query": "SELECT 1;", "blacklist": false},
            "both": {"query": "SELECT 1;", "denylist": true, "blacklist": false},
            "text": {"query": "SELECT 1;", "denylist": "false"}}}"#,
    )
    .unwrap();
    let by: BTreeMap<_, _> = config.packs[0]
        .queries
        .iter()
        .map(|q| (q.name.as_str(), q.denylist))
        .collect();
    assert_eq!(
        by,
        BTreeMap::from([
            ("both", true),
            ("default", true),
            ("new", false),
            ("old", false),
            ("text", false)
        ])
    );
}

#[test]
fn query_defaults_and_flags() {
    let config = load_text(
        r#"{"schedule": {"q": {"query": "SELECT 1;", "description": "ignored", "value": "ignored"},
                         "r": {"query": "SELECT 1;", "snapshot": true, "removed": false, "startup_priority": 2},
                         "s": {"query": "SELECT 1;", "startup_priority": 1}}}"#,
    )
    .unwrap();
    let q = &config.packs[0].queries[0];
    assert_eq!(
        (
            q.interval,
            q.snapshot,
            q.removed,
            q.denylist,
            q.startup_priority
        ),
        (3600, false, true, true, None)
    );
    let r = &config.packs[0].queries[1];
    assert_eq!(
        (r.snapshot, r.removed, r.startup_priority),
        (true, false, Some(2))
    );
    let schedule = schedule_all(&config, &host(0));
    let order: Vec<_> = startup_order(&schedule)
        .iter()
        .map(|q| q.name.as_str())
        .collect();
    assert_eq!(order, ["s", "r"]);
}

#[test]
fn per_query_limits_come_from_the_query_or_the_flags() {
    let config = load_text(
        r#"{"options": {"schedule_query_timeout": 30},
            "schedule": {"own": {"query": "SELECT 1;", "timeout": "5", "memory_limit": 64},
                         "off": {"query": "SELECT 1;", "timeout": 0, "memory_limit": 0},
                         "plain": {"query": "SELECT 1;"}},
            "packs": {"p": {"queries": {"q": {"query": "SELECT 1;", "timeout": 7}}}}}"#,
    )
    .unwrap();
    let main = &config.packs[0].queries;
    assert_eq!(
        main.iter()
            .map(|q| (q.name.as_str(), q.timeout, q.memory_limit))
            .collect::<Vec<_>>(),
        [
            ("off", Some(0), Some(0)),
            ("own", Some(5), Some(64)),
            ("plain", None, None)
        ]
    );
    let schedule = schedule_all(&config, &host(0));
    let limits: BTreeMap<&str, (u64, u64)> = schedule
        .iter()
        .map(|q| (q.name.as_str(), (q.timeout, q.memory_limit)))
        .collect();
    // The config's own `options` set the default timeout; the memory budget keeps the
    // default, which under the default watchdog (200 MB) is 80 % of it: 152 MiB.
    let memory_default = 152;
    assert_eq!(
        limits,
        BTreeMap::from([
            ("off", (0, 0)),
            ("own", (5, 64)),
            ("plain", (30, memory_default)),
            ("pack_p_q", (7, memory_default)),
        ])
    );
    for bad in [
        r#""timeout": -1"#,
        r#""timeout": "soon""#,
        r#""memory_limit": 1.5"#,
    ] {
        let err = err_text(&format!(
            r#"{{"schedule": {{"q": {{"query": "SELECT 1;", {bad}}}}}}}"#
        ));
        let key = bad.split('"').nth(1).unwrap();
        assert!(
            err.contains(&format!("schedule.q.{key}")) && err.contains("non-negative integer"),
            "{err}"
        );
    }
}

#[test]
fn interval_bounds() {
    for bad in [
        "0",
        "604801",
        "-5",
        "1.5",
        "\"ten\"",
        "\"\"",
        "[60]",
        "1e30",
        "99999999999999999999999",
    ] {
        let e = err_text(&format!(
            r#"{{"schedule": {{"q": {{"query": "SELECT 1;", "interval": {bad}}}}}}}"#
        ));
        assert!(e.contains("schedule.q.interval"), "{bad}: {e}");
    }
    for (good, want) in [("1", 1), ("604800", 604800), ("\"60\"", 60), ("120.0", 120)] {
        let config = load_text(&format!(
            r#"{{"schedule": {{"q": {{"query": "SELECT 1;", "interval": {good}}}}}}}"#
        ))
        .unwrap();
        assert_eq!(config.packs[0].queries[0].interval, want, "{good}");
    }
    // The default comes from --schedule_default_interval.
    let f = Fixture::new(r#"{"schedule": {"q": {"query": "SELECT 1;"}}}"#);
    let mut flags = f.flags();
    flags.set("schedule_default_interval", "45").unwrap();
    assert_eq!(
        Config::load(&flags).unwrap().packs[0].queries[0].interval,
        45
    );
}

// ---- decorators and other keys ----

#[test]
fn decorator_interval_keys() {
    let config = load_text(
        r#"{"decorators": {"load": ["SELECT 1 AS a;"], "always": ["SELECT 2 AS b;"],
            "interval": {"60": ["SELECT 3 AS c;"], "3600": ["SELECT 4 AS d;", "SELECT 5 AS e;"]}}}"#,
    )
    .unwrap();
    let d = &config.decorators;
    assert_eq!(d.load, ["SELECT 1 AS a;"]);
    assert_eq!(d.always, ["SELECT 2 AS b;"]);
    assert_eq!(d.interval.keys().copied().collect::<Vec<_>>(), [60, 3600]);
    assert_eq!(d.interval[&3600].len(), 2);
    for bad in ["90", "0", "abc", "-60", ""] {
        let e = err_text(&format!(
            r#"{{"decorators": {{"interval": {{"{bad}": ["SELECT 1;"]}}}}}}"#
        ));
        assert!(e.contains("positive multiple of 60"), "{bad}: {e}");
    }
    let e = err_text(r#"{"decorators": {"load": "SELECT 1;"}}"#);
    assert!(
        e.contains("decorators.load: must be an array of strings"),
        "{e}"
    );
}

#[test]
fn decorators_take_the_first_row_later_queries_win() {
    use oxquery_engine::QueryResult;
    use oxquery_table::Value;
    let mut run = |sql: &str| -> Result<QueryResult, String> {
        match sql {
            "one" => Ok(QueryResult {
                columns: vec!["a".into(), "b".into()],
                rows: vec![
                    vec![Value::Text("x".into()), Value::Integer(1)],
                    vec![Value::Text("ignored".into()), Value::Integer(2)],
                ],
            }),
            "two" => Ok(QueryResult {
                columns: vec!["b".into()],
                rows: vec![vec![Value::Real(2.5)]],
            }),
            "empty" => Ok(QueryResult {
                columns: vec!["c".into()],
                rows: vec![],
            }),
            _ => Err("no such table".into()),
        }
    };
    let mut out = Decorations::new();
    let queries: Vec<String> = ["one", "two", "empty", "bad"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    run_decorators(&queries, &mut run, &mut out);
    assert_eq!(
        out,
        Decorations::from([("a".into(), "x".into()), ("b".into(), "2.5".into())])
    );
}

#[test]
fn other_keys_are_kept() {
    let f = Fixture::new(
        r#"{"views": {"v": "SELECT 1"},
            "auto_table_construction": {"t": {"query": "SELECT a FROM x", "path": "/tmp/%.db", "columns": ["a"], "platform": "linux"}},
            "file_paths": {"etc": ["/etc/%%"]},
            "file_paths_query": {"homes": ["SELECT path FROM users"]},
            "file_accesses": ["etc"],
            "exclude_paths": {"etc": ["/etc/secret"]},
            "yara": {"signatures": {"g": ["/r.yar", 3, "rel.yar"], "bad": "/x.yar"},
                     "signature_urls": ["https://rules.example/yara/.*", 7]},
            "events": {"disable_subscribers": ["file_events"]},
            "kafka_topics": {"results": ["pack_a_q1"], "audit": ["q2"]},
            "prometheus_targets": {"timeout": 5, "urls": ["http://127.0.0.1:9100/metrics"]},
            "feature_vectors": {"ignored": true}}"#,
    );
    f.write(
        "osquery.conf.d/x.conf",
        r#"{"file_paths": {"etc": ["/usr/etc/%"]}, "file_accesses": ["etc", "bin"], "views": {"v": "SELECT 2"},
            "kafka_topics": {"results": ["q3"]}}"#,
    );
    let c = f.load().unwrap();
    assert_eq!(c.views["v"], "SELECT 2");
    assert_eq!(c.auto_table_construction["t"].columns, ["a"]);
    assert_eq!(c.file_paths["etc"], ["/etc/%%", "/usr/etc/%"]);
    assert_eq!(c.file_paths_query["homes"].len(), 1);
    assert_eq!(c.file_accesses, ["etc", "bin"]);
    assert_eq!(c.exclude_paths["etc"], ["/etc/secret"]);
    assert!(c.yara.is_some());
    // Strings only, as osquery reads them.
    assert_eq!(c.yara_signature_urls(), ["https://rules.example/yara/.*"]);
    assert_eq!(
        c.yara_signature_groups(),
        [(
            "g".to_owned(),
            vec!["/r.yar".to_owned(), "rel.yar".to_owned()]
        )]
        .into()
    );
    let prometheus = c.prometheus_targets.as_ref().unwrap();
    assert_eq!(prometheus.urls, ["http://127.0.0.1:9100/metrics"]);
    assert_eq!(prometheus.timeout_secs, 5);
    assert_eq!(c.events.disable_subscribers, ["file_events"]);
    // Topics of several sources merge, as file_paths do.
    assert_eq!(c.kafka_topics["results"], ["pack_a_q1", "q3"]);
    assert_eq!(c.kafka_topics["audit"], ["q2"]);
    let e = err_text(r#"{"auto_table_construction": {"t": {"path": "/x"}}}"#);
    assert!(
        e.contains("auto_table_construction.t: has no \"query\""),
        "{e}"
    );
}

// ---- options ----

#[test]
fn options_unknown_custom_cli_and_bad_values() {
    let config = load_text(
        r#"{"options": {"verbose": "true", "no_such_flag": 1, "custom_team": {"a": 1},
            "config_path": "/elsewhere", "logger_path": "/tmp/logs", "schedule_splay_percent": 25,
            "empty": "", "utc": true, "nothing": null}}"#,
    )
    .unwrap();
    let keys: Vec<_> = config.options.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "custom_team",
            "logger_path",
            "schedule_splay_percent",
            "utc",
            "verbose"
        ]
    );
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("unknown or invalid flag: no_such_flag"))
    );
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("--config_path cannot be set from the config"))
    );
    let mut flags = Flags::new();
    assert!(config.apply_options(&mut flags).is_empty());
    assert!(flags.get(flag::verbose));
    assert_eq!(flags.get(flag::logger_path), Path::new("/tmp/logs"));
    assert_eq!(flags.get(flag::schedule_splay_percent), 25);
    // The CLI-only flag was not touched.
    assert_eq!(
        flags.get(flag::config_path),
        Path::new("/etc/osquery/osquery.conf")
    );

    let e = err_text(r#"{"options": {"schedule_splay_percent": "lots"}}"#);
    assert!(e.contains("options.schedule_splay_percent"), "{e}");
    let e = err_text(r#"{"options": {"verbose": "maybe"}}"#);
    assert!(e.contains("not a valid bool value"), "{e}");
    let e = err_text(r#"{"options": ["verbose"]}"#);
    assert!(e.contains("options: must be an object"), "{e}");
}

// ---- splay ----

#[test]
fn splay_bounds_and_values() {
    assert_eq!(splay_bounds(3600, 10), (3240, 3960));
    assert_eq!(splay_bounds(5, 10), (5, 5));
    assert_eq!(splay_bounds(1, 100), (1, 2));
    assert_eq!(splay_bounds(60, 0), (60, 60));
    assert_eq!(splay_bounds(60, 101), (60, 60));
    for r in [0, 1, 720, u64::MAX] {
        let v = splay_with(3600, 10, r);
        assert!((3240..=3960).contains(&v));
    }
}

#[test]
fn splay_is_remembered_across_reloads() {
    let f = Fixture::new(r#"{"schedule": {"q": {"query": "SELECT 1;", "interval": 3600}}}"#);
    let store = Store::in_memory().unwrap();
    let config = f.load().unwrap();
    let first = config.schedule(&host(0), &store, &mut |_| true).unwrap()[0].splayed_interval;
    assert!((3240..=3960).contains(&first));
    let saved = store
        .get_text(Domain::Configurations, "interval.q")
        .unwrap()
        .unwrap();
    assert_eq!(saved, format!("3600:{first}"));
    // Another query added: `q` keeps its splay.
    f.write(
        "osquery.conf",
        r#"{"schedule": {"q": {"query": "SELECT 1;", "interval": 3600}, "r": {"query": "SELECT 2;"}}}"#,
    );
    let Reload::Changed(next) = config.reload(&f.flags()).unwrap() else {
        panic!("content changed")
    };
    for _ in 0..5 {
        let s = next.schedule(&host(0), &store, &mut |_| true).unwrap();
        assert_eq!(s[0].splayed_interval, first);
    }
    // A new interval gets a new splay, within its bounds, and is remembered.
    f.write(
        "osquery.conf",
        r#"{"schedule": {"q": {"query": "SELECT 1;", "interval": 100}}}"#,
    );
    let changed = f.load().unwrap();
    let s = changed.schedule(&host(0), &store, &mut |_| true).unwrap();
    assert!((90..=110).contains(&s[0].splayed_interval));
    let saved = store
        .get_text(Domain::Configurations, "interval.q")
        .unwrap()
        .unwrap();
    assert_eq!(saved, format!("100:{}", s[0].splayed_interval));
    // Garbage in the store is replaced, not trusted.
    store
        .put(Domain::Configurations, "interval.q", b"100:0")
        .unwrap();
    let again = changed.schedule(&host(0), &store, &mut |_| true).unwrap();
    assert!(again[0].splayed_interval >= 90);
}

// ---- hash and reload ----

#[test]
fn hash_changes_only_with_content() {
    let text = r#"{"schedule": {"q": {"query": "SELECT 1;"}}}"#;
    let f = Fixture::new(text);
    let a = f.load().unwrap();
    assert_eq!(a.sources[0].sha1, sha1_hex(text.as_bytes()));
    assert_eq!(a.hash(), sha1_hex(a.sources[0].sha1.as_bytes()));
    // Rewritten with the same bytes: same hash, reload says unchanged.
    f.write("osquery.conf", text);
    assert_eq!(f.load().unwrap().hash(), a.hash());
    assert_eq!(a.reload(&f.flags()).unwrap(), Reload::Unchanged);
    // A comment is content too (osquery hashes the raw text).
    f.write("osquery.conf", &format!("# note\n{text}"));
    let b = f.load().unwrap();
    assert_ne!(b.hash(), a.hash());
    assert!(matches!(a.reload(&f.flags()).unwrap(), Reload::Changed(_)));
    // A new .d source changes it as well.
    f.write("osquery.conf.d/x.conf", "{}");
    assert_ne!(f.load().unwrap().hash(), b.hash());
}

#[test]
fn failed_reload_leaves_the_old_config_usable() {
    let f = Fixture::new(r#"{"schedule": {"q": {"query": "SELECT 1;"}}}"#);
    let config = f.load().unwrap();
    f.write("osquery.conf", "{ broken");
    assert!(config.reload(&f.flags()).is_err());
    std::fs::remove_file(f.path("osquery.conf")).unwrap();
    assert!(matches!(
        config.reload(&f.flags()),
        Err(ConfigError::Missing(_))
    ));
    assert_eq!(schedule_all(&config, &host(0)).len(), 1);
}

// ---- config_check / config_dump ----

#[test]
fn check_and_dump() {
    let f = Fixture::new("{\"schedule\": {}}\n");
    f.write("osquery.conf.d/extra.conf", "not json");
    let mut check = f.flags();
    check.set("config_check", "true").unwrap();
    let failure = one_shot(&check, &crate::ProgramTables::builtin(NO_TABLES)).unwrap();
    assert_eq!(failure.exit_code, 1);
    assert!(failure.stdout.is_empty());
    assert!(
        failure.stderr.starts_with("Error reading config: "),
        "{}",
        failure.stderr
    );
    assert!(
        failure.stderr.contains("extra.conf: invalid JSON"),
        "{}",
        failure.stderr
    );
    // Dump prints raw sources, valid or not, in source order.
    let mut dump = f.flags();
    dump.set("config_dump", "true").unwrap();
    let dumped = one_shot(&dump, &crate::ProgramTables::builtin(NO_TABLES)).unwrap();
    assert_eq!(dumped.exit_code, 0);
    assert_eq!(
        dumped.stdout,
        format!(
            "{{\"{}\": {{\"schedule\": {{}}}}\n}}\n{{\"{}\": not json}}\n",
            f.main_path(),
            f.path("osquery.conf.d/extra.conf").display()
        )
    );
    std::fs::remove_file(f.path("osquery.conf.d/extra.conf")).unwrap();
    assert_eq!(
        one_shot(&check, &crate::ProgramTables::builtin(NO_TABLES))
            .unwrap()
            .exit_code,
        0
    );
    // Neither flag: nothing to do.
    assert_eq!(
        one_shot(&f.flags(), &crate::ProgramTables::builtin(NO_TABLES)),
        None
    );

    let mut flags = Flags::new();
    flags
        .set("config_path", "/nonexistent/osquery.conf")
        .unwrap();
    flags.set("config_check", "true").unwrap();
    let failure = one_shot(&flags, &crate::ProgramTables::builtin(NO_TABLES)).unwrap();
    assert_eq!(
        failure.stderr,
        "Error reading config: config file does not exist: /nonexistent/osquery.conf\n"
    );
    assert_eq!(failure.exit_code, EXIT_CONFIG_ERROR);
    flags.set("config_check", "false").unwrap();
    flags.set("config_dump", "true").unwrap();
    assert_eq!(
        one_shot(&flags, &crate::ProgramTables::builtin(NO_TABLES))
            .unwrap()
            .exit_code,
        EXIT_CONFIG_ERROR
    );
}

#[test]
fn an_unreadable_config_at_start_is_reported_beside_an_empty_config() {
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("missing.conf");
    for path in [Path::new("/dev/null"), &missing, dir.path()] {
        let mut flags = Flags::new();
        flags.set("config_path", &path.to_string_lossy()).unwrap();
        let (config, error) = load_or_empty(&flags);
        assert!(error.is_some(), "{}", path.display());
        assert!(config.packs.is_empty() && config.sources.is_empty());
    }
    let f = Fixture::new(r#"{"schedule": {"q": {"query": "select 1", "interval": 10}}}"#);
    let (config, error) = load_or_empty(&f.flags());
    assert_eq!(error, None);
    assert_eq!(config.packs[0].queries[0].name, "q");
}

#[test]
fn only_the_filesystem_config_plugin_activates() {
    let mut flags = Flags::new();
    assert_eq!(check_plugin(&flags), Ok(()));
    flags.set("config_plugin", "nope").unwrap();
    assert_eq!(
        check_plugin(&flags),
        Err("Cannot activate nope config plugin: Unknown registry plugin: nope".to_owned())
    );
}

// ---- hostile input ----

#[test]
fn hostile_input_is_an_error_never_a_panic() {
    let cases: Vec<String> = vec![
        String::from_utf8_lossy(&[0xff, 0xfe, 0x00, 0x01, 0x7b]).into_owned(),
        "\u{0}\u{0}\u{0}".into(),
        "{".into(),
        "{\"a\": 1e999999}".into(),
        r#"{"options": 5}"#.into(),
        r#"{"options": {"verbose": [1, 2]}}"#.into(),
        r#"{"schedule": []}"#.into(),
        r#"{"schedule": {"q": "SELECT 1;"}}"#.into(),
        r#"{"schedule": {"q": {}}}"#.into(),
        r#"{"schedule": {"q": {"query": ""}}}"#.into(),
        r#"{"schedule": {"q": {"query": ["SELECT 1;"]}}}"#.into(),
        r#"{"schedule": {"q": {"query": "SELECT 1;", "snapshot": "sometimes"}}}"#.into(),
        r#"{"schedule": {"q": {"query": "SELECT 1;", "removed": {}}}}"#.into(),
        r#"{"schedule": {"q": {"query": "SELECT 1;", "platform": 1}}}"#.into(),
        r#"{"schedule": {"q": {"query": "SELECT 1;", "version": true}}}"#.into(),
        r#"{"schedule": {"q": {"query": "SELECT 1;", "shard": -1}}}"#.into(),
        r#"{"schedule": {"q": {"query": "SELECT 1;", "startup_priority": "high"}}}"#.into(),
        r#"{"schedule": {"q": {"query": "SELECT 1;", "interval": 18446744073709551616}}}"#.into(),
        r#"{"packs": []}"#.into(),
        r#"{"packs": {"p": 5}}"#.into(),
        r#"{"packs": {"*": {"x": {}}}}"#.into(),
        r#"{"packs": {"p": {"queries": []}}}"#.into(),
        r#"{"packs": {"p": {"discovery": "SELECT 1;"}}}"#.into(),
        r#"{"packs": {"p": {"discovery": [1]}}}"#.into(),
        r#"{"packs": {"p": {"shard": "ten"}}}"#.into(),
        r#"{"packs": {"p": {"oncall": []}}}"#.into(),
        r#"{"decorators": []}"#.into(),
        r#"{"decorators": {"interval": {"60": "SELECT 1;"}}}"#.into(),
        r#"{"views": {"v": 1}}"#.into(),
        r#"{"auto_table_construction": []}"#.into(),
        r#"{"file_paths": {"a": "/etc"}}"#.into(),
        r#"{"file_accesses": {"a": 1}}"#.into(),
        r#"{"yara": []}"#.into(),
        r#"{"prometheus_targets": []}"#.into(),
        r#"{"prometheus_targets": {"urls": "http://x"}}"#.into(),
        r#"{"prometheus_targets": {"urls": [], "timeout": -1}}"#.into(),
        r#"{"kafka_topics": {"t": "q"}}"#.into(),
        r#"{"events": {"enable_subscribers": "x"}}"#.into(),
    ];
    for text in &cases {
        let result = std::panic::catch_unwind(|| load_text(text));
        match result {
            Ok(Err(_)) => {}
            Ok(Ok(_)) => panic!("accepted hostile input: {text}"),
            Err(_) => panic!("panicked on: {text}"),
        }
    }
    // Raw invalid UTF-8 bytes in the file itself.
    let f = Fixture::new("{}");
    std::fs::write(f.path("osquery.conf"), [b'{', 0xc3, 0x28, b'}']).unwrap();
    let e = f.load().unwrap_err().to_string();
    assert!(e.contains("not valid UTF-8"), "{e}");
}

// ---- a realistic config ----

#[test]
fn realistic_example_config_with_pack_files() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let text = std::fs::read_to_string(fixtures.join("osquery.example.conf")).unwrap();
    let packs = fixtures.join("packs");
    let f = Fixture::new(&text.replace("/etc/osquery/packs", &packs.to_string_lossy()));
    let config = f.load().unwrap();

    // Options: retired and command-line-only names warn and are left out.
    assert!(config.options.contains_key("logger_path"));
    assert!(config.options.contains_key("disable_logging"));
    assert!(!config.options.contains_key("log_result_events"));
    assert!(!config.options.contains_key("database_path"));
    assert!(!config.options.contains_key("logger_plugin"));
    assert_eq!(config.warnings.len(), 3, "{:?}", config.warnings);

    let packs: Vec<_> = config.packs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        packs,
        [
            "main",
            "incident-response",
            "hardware-monitoring",
            "osx-attacks"
        ]
    );
    assert_eq!(config.decorators.load.len(), 2);
    assert_eq!(config.decorators.interval[&3600].len(), 1);
    assert_eq!(config.file_paths["configuration"], ["/etc/%%"]);

    let store = Store::in_memory().unwrap();
    let mut cache = DiscoveryCache::new();
    let mut runner = |_: &str| -> Result<usize, String> { Ok(1) };
    let schedule = config
        .schedule_with_discovery(&host(50), &store, &mut cache, 0, &mut runner)
        .unwrap();
    assert_eq!(
        names(&schedule),
        [
            "listening_ports",
            "system_info",
            "uptime",
            "pack_incident-response_crontab",
            "pack_incident-response_last",
            "pack_incident-response_process_memory",
            "pack_hardware-monitoring_kernel_modules",
            "pack_hardware-monitoring_pci_devices",
            "pack_hardware-monitoring_usb_devices",
        ]
    );
    let by_name = |n: &str| schedule.iter().find(|q| q.name == n).unwrap();
    let ports = by_name("listening_ports");
    assert!(!ports.removed);
    assert!(
        ports.query.contains("address                 FROM"),
        "{}",
        ports.query
    );
    assert!(by_name("uptime").snapshot);
    assert_eq!(by_name("uptime").interval, 60);
    assert_eq!(
        by_name("pack_incident-response_process_memory").interval,
        86400
    );
    for q in &schedule {
        let (low, high) = splay_bounds(q.interval, 10);
        assert!((low..=high).contains(&q.splayed_interval), "{}", q.name);
    }
}

// ---- line numbers, duplicate keys ----

#[test]
fn stripping_comments_keeps_every_line_where_it_was() {
    let text = "# one\n{\n  // three\n  \"a\": \"x\\\ny\",\r\n\t\"b\": 1 \n}";
    let stripped = strip_comments(text);
    assert_eq!(stripped.lines().count(), text.lines().count());
    // Comment lines are blank; a joined continuation leaves its second line blank;
    // indentation stays (as spaces), trailing whitespace and CR go.
    assert_eq!(stripped, "\n{\n\n  \"a\": \"xy\",\n\n \"b\": 1\n}\n");
    // So a JSON error's line is the file's line, whatever the comments before it.
    for (text, line) in [
        ("{\n# c\n// c\n\"a\": }\n", 4),
        (
            "# c\n\n  # c\n{\"a\": 1,\n\"b\": \"x\\\ny\\\nz\",\n\"c\" 2}\n",
            8,
        ),
    ] {
        let e = err_text(text);
        assert!(
            e.contains(&format!("at line {line} column")),
            "{text:?}: {e}"
        );
    }
    let e = err_text("{\n// c\n\"a\": }\n");
    assert!(
        e.ends_with("invalid JSON: expected value at line 3 column 6"),
        "{e}"
    );
}

#[test]
fn duplicate_keys_warn_naming_both_lines_and_the_last_one_wins() {
    let text = r#"{
  // the first schedule
  "schedule": {
    "q": {"query": "SELECT 1", "interval": 10},
    "q": {"query": "SELECT 2", "interval": 10}
  },
  "views": {"v": "SELECT '\"schedule\": {' AS x"},
  "schedule": {
    "q": {"query": "SELECT 3", "interval": 10},
    "r": {"query": "SELECT 4", "interval": 10, "interval": 20},
    "\u0072": {"query": "SELECT 5", "interval": 10}
  },
  "yara": {"list": [{"x": 1, "x": 2}]}
}"#;
    let f = Fixture::new(text);
    let config = f.load().unwrap();
    let origin = f.main_path();
    let expected = |key: &str, first: usize, second: usize| {
        format!(
            "{origin}: key {key} is given twice, at lines {first} and {second}; only the value at line {second} is used"
        )
    };
    // In text order; a key inside a string is not a key; an escaped key is the same key.
    assert_eq!(
        config.warnings,
        [
            expected("schedule.q", 4, 5),
            expected("schedule", 3, 8),
            expected("schedule.r.interval", 10, 10),
            expected("schedule.r", 10, 11),
            expected("yara.list[0].x", 13, 13),
        ]
    );
    // What runs is what serde_json kept: the second schedule, the last `r`.
    let queries: Vec<_> = config.packs[0]
        .queries
        .iter()
        .map(|q| (q.name.as_str(), q.query.as_str()))
        .collect();
    assert_eq!(queries, [("q", "SELECT 3"), ("r", "SELECT 5")]);

    // A pack file's duplicates name the pack file.
    let f = Fixture::new("{}");
    f.write(
        "pack.conf",
        "{\"queries\": {\n\"a\": {\"query\": \"SELECT 1\"},\n\"a\": {\"query\": \"SELECT 2\"}}}",
    );
    let pack = f.path("pack.conf").display().to_string();
    f.write(
        "osquery.conf",
        &format!("{{\"packs\": {{\"p\": \"{pack}\"}}}}"),
    );
    let config = f.load().unwrap();
    assert_eq!(
        config.warnings,
        [format!(
            "{pack}: key queries.a is given twice, at lines 2 and 3; only the value at line 3 is used"
        )]
    );
    // No duplicates, no warnings.
    assert!(
        load_text(r#"{"schedule": {"a": {"query": "SELECT 1"}}, "packs": {"a": {}}}"#)
            .unwrap()
            .warnings
            .is_empty()
    );
}

// ---- what a config path is ----

/// Runs `f` on another thread and fails if it does not return within a minute: a
/// blocking open of a FIFO would otherwise hang the test run instead of failing it.
fn returns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(60))
        .expect("blocked: the file was opened as if it could be read")
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo has no other preconditions.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

#[test]
fn a_directory_fifo_or_device_is_named_as_what_it_is() {
    let dir = TempDir::new().unwrap();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    for (path, what) in [
        (fifo.clone(), "not a regular file: a FIFO"),
        (sub.clone(), "is a directory"),
        (
            Path::new("/dev/null").to_owned(),
            "not a regular file: a character device",
        ),
    ] {
        let mut flags = Flags::new();
        flags.set("config_path", &path.to_string_lossy()).unwrap();
        let e = returns(move || Config::load(&flags)).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("cannot read {}: {what}", path.display())
        );
        // As a pack file, the same words under the pack's key.
        let f = Fixture::new(&format!("{{\"packs\": {{\"p\": \"{}\"}}}}", path.display()));
        let flags = f.flags();
        let e = returns(move || Config::load(&flags))
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with(&format!(
                "packs.p: cannot read pack file {}: {what}",
                path.display()
            )),
            "{e}"
        );
    }
    // A FIFO in the `.d` directory is not a source (it is not a regular file).
    let f = Fixture::new("{}");
    std::fs::create_dir(f.path("osquery.conf.d")).unwrap();
    mkfifo(&f.path("osquery.conf.d/x.conf"));
    let flags = f.flags();
    assert_eq!(
        returns(move || Config::load(&flags)).unwrap().sources.len(),
        1
    );
}

#[test]
fn a_database_path_that_is_a_directory_keeps_it_and_stores_beside_it() {
    let dir = TempDir::new().unwrap();
    let rocksdb = dir.path().join("osquery.db");
    std::fs::create_dir(&rocksdb).unwrap();
    let beside = dir.path().join("osquery.db.oxquery");
    for given in [rocksdb.clone(), dir.path().join("osquery.db/")] {
        let file = database_file(&given);
        assert_eq!(file.path, beside, "{}", given.display());
        let note = file.note.unwrap();
        assert!(
            note.contains("is a directory") && note.ends_with(&beside.display().to_string()),
            "{note}"
        );
    }
    // A file, or nothing yet: the path itself.
    let plain = dir.path().join("oxquery.db");
    for _ in 0..2 {
        assert_eq!(
            database_file(&plain),
            DatabaseFile {
                path: plain.clone(),
                note: None
            }
        );
        std::fs::write(&plain, "").unwrap();
    }
}

// ---- --config_check prepares the queries ----

mod check_tables {
    use oxquery_table::{QueryContext, Rows, TableResult};
    oxquery_table::table! {
        name: "needs_path",
        description: "Test table with a required column.",
        columns: {
            path: Text [INDEX | REQUIRED] "Path",
            size: BigInt [] "Size",
        },
    }
    pub(super) fn generate(_: &QueryContext, _: &mut Rows) -> TableResult {
        panic!("--config_check must not run a query")
    }
}

const CHECK_TABLES: &[&oxquery_table::TableDef] = &[&check_tables::TABLE];

fn checked(f: &Fixture, strict: bool) -> OneShot {
    let mut flags = f.flags();
    flags.set("config_check", "true").unwrap();
    flags
        .set("config_check_strict", &strict.to_string())
        .unwrap();
    one_shot(&flags, &crate::ProgramTables::builtin(CHECK_TABLES)).unwrap()
}

#[test]
fn config_check_names_each_query_that_cannot_run() {
    let f = Fixture::new(
        r#"{
  "schedule": {
    "good": {"query": "SELECT size FROM needs_path WHERE path = '/'"},
    "no_table": {"query": "SELECT * FROM nope"},
    "syntax": {"query": "SELEC 1"},
    "no_path": {"query": "SELECT size FROM needs_path"},
    "through_view": {"query": "SELECT * FROM sizes WHERE path = '/x'"},
    "elsewhere": {"query": "SELECT * FROM nope", "platform": "darwin"}
  },
  "views": {"sizes": "SELECT * FROM needs_path"},
  "packs": {
    "p": {"discovery": ["SELECT * FROM gone"], "queries": {"q": {"query": "SELECT nope FROM needs_path WHERE path = '/'"}}},
    "mac": {"platform": "darwin", "queries": {"m": {"query": "SELECT * FROM nope"}}}
  },
  "decorators": {"load": ["SELECT 1"], "interval": {"3600": ["SELECT * FROM nope2"]}}
}"#,
    );
    let origin = f.main_path();
    let out = checked(&f, false);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines,
        [
            format!(
                "Query no_path of the schedule of {origin} cannot run: Table needs_path was queried without a required column in the WHERE clause"
            ),
            format!("Query no_table of the schedule of {origin} cannot run: no such table: nope"),
            format!(
                "Query syntax of the schedule of {origin} cannot run: near \"SELEC\": syntax error"
            ),
            format!("Discovery query 0 of pack p (in {origin}) cannot run: no such table: gone"),
            format!("Query pack_p_q of pack p (in {origin}) cannot run: no such column: nope"),
            "Decorator query decorators.interval.3600[0] cannot run: no such table: nope2"
                .to_owned(),
        ]
    );
    // osquery's exit status: the JSON is valid.
    assert_eq!((out.exit_code, out.stdout.as_str()), (0, ""));
    // Strict: exit 1, saying why.
    let strict = checked(&f, true);
    assert_eq!(strict.exit_code, 1);
    assert!(
        strict
            .stderr
            .ends_with("--config_check_strict: the config loads with 6 warnings\n"),
        "{}",
        strict.stderr
    );
    // A table turned off by --disable_tables is as good as missing.
    f.write(
        "osquery.conf",
        r#"{"schedule": {"q": {"query": "SELECT size FROM needs_path WHERE path = '/'"}}}"#,
    );
    assert_eq!(checked(&f, true).exit_code, 0);
    let mut flags = f.flags();
    flags.set("config_check", "true").unwrap();
    flags.set("disable_tables", "needs_path").unwrap();
    let out = one_shot(&flags, &crate::ProgramTables::builtin(CHECK_TABLES)).unwrap();
    assert!(
        out.stderr
            .ends_with("cannot run: no such table: needs_path\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn config_check_strict_fails_only_for_warnings() {
    let clean = Fixture::new(r#"{"schedule": {"q": {"query": "SELECT 1"}}}"#);
    assert_eq!(
        checked(&clean, true),
        OneShot {
            stdout: String::new(),
            stderr: String::new(),
            exit_code: 0
        }
    );
    // A warning from loading (here a key given twice) counts too.
    let dup = Fixture::new("{\"schedule\": {},\n\"schedule\": {}}");
    assert_eq!(checked(&dup, false).exit_code, 0);
    let strict = checked(&dup, true);
    assert_eq!(
        (strict.exit_code, strict.stderr.as_str()),
        (
            1,
            "--config_check_strict: the config loads with 1 warning\n"
        )
    );
    // Warnings the program adds (osqueryd: an empty --logger_plugin) count too.
    let mut flags = clean.flags();
    flags.set("config_check", "true").unwrap();
    flags.set("config_check_strict", "true").unwrap();
    let out = config_check(
        &flags,
        &crate::ProgramTables::builtin(CHECK_TABLES),
        &["the program's own".to_owned()],
    );
    assert_eq!(
        (out.exit_code, out.stderr.as_str()),
        (
            1,
            "--config_check_strict: the config loads with 1 warning\n"
        )
    );
    // A config that does not load fails with or without it, as before.
    let broken = Fixture::new("{\n# c\n\"a\": }");
    for strict in [false, true] {
        let out = checked(&broken, strict);
        assert_eq!(out.exit_code, 1);
        assert!(out.stderr.contains("at line 3 column"), "{}", out.stderr);
    }
}

#[test]
fn the_duplicate_scan_reads_strings_and_nesting_as_json_does() {
    use crate::duplicates::{DuplicateKey, duplicate_keys};
    let dup = |path: &str, earlier_line, line| DuplicateKey {
        path: path.to_owned(),
        earlier_line,
        line,
    };
    // Escaped quotes and backslashes end no string early; `a\` is one key, twice.
    assert_eq!(
        duplicate_keys(r#"{"a\\": "x\"", "b": "\\", "a\\": 1}"#),
        [dup("a\\", 1, 1)]
    );
    // The same name in different objects, or as a value, is no duplicate.
    assert_eq!(
        duplicate_keys("{\"a\": {\"a\": \"a\"},\n \"b\": [{\"a\": 1}, {\"a\": 2}]}"),
        []
    );
    // Inside arrays, after nested containers, at depth.
    assert_eq!(
        duplicate_keys("[1, {\"x\": [], \"y\": {\"z\": 1,\n\"z\": 2}, \"x\": 3}]"),
        [dup("[1].y.z", 1, 2), dup("[1].x", 1, 2)]
    );
}

#[test]
fn the_default_query_budget_stays_under_the_watchdog() {
    let budget = |args: &[(&str, &str)]| {
        let mut flags = Flags::new();
        for (name, value) in args {
            flags.set(name, value).unwrap();
        }
        Settings::from_flags(&flags).query_memory_limit
    };
    assert_eq!(budget(&[]), 152);
    assert_eq!(budget(&[("watchdog_level", "1")]), 76);
    assert_eq!(budget(&[("watchdog_memory_limit", "2000")]), 1024);
    assert_eq!(budget(&[("disable_watchdog", "true")]), 1024);
    // A value given is used as is.
    assert_eq!(budget(&[("schedule_query_memory_limit", "500")]), 500);
}

/// A config plugin's `genPack` answers, by pack name, recording what it was asked.
struct TestPacks {
    answers: BTreeMap<String, Result<String, String>>,
    asked: Vec<(String, String)>,
}

impl PackPlugin for TestPacks {
    fn gen_pack(&mut self, name: &str, value: &str) -> Result<String, String> {
        self.asked.push((name.to_owned(), value.to_owned()));
        self.answers
            .get(name)
            .cloned()
            .unwrap_or_else(|| Err("no such pack".to_owned()))
    }
}

#[test]
fn a_plugin_config_asks_the_plugin_for_packs_given_as_strings() {
    let mut packs = TestPacks {
        answers: BTreeMap::from([
            (
                "net".to_owned(),
                Ok(r#"{"queries": {"ports": {"query": "select 1", "interval": 60}}}"#.to_owned()),
            ),
            (
                "*".to_owned(),
                Ok(
                    r#"{"a": {"queries": {"qa": {"query": "select 2", "interval": 10}}},
                       "b": {"queries": {"qb": {"query": "select 3", "interval": 20}}}}"#
                        .to_owned(),
                ),
            ),
            ("empty".to_owned(), Ok(String::new())),
            ("broken".to_owned(), Ok("{not json".to_owned())),
        ]),
        asked: Vec::new(),
    };
    let text = r#"{"schedule": {"s": {"query": "select 0", "interval": 5}},
        "packs": {"net": "net-pack", "*": "/packs/%", "empty": "e", "broken": "b",
                  "gone": "g", "inline": {"queries": {"qi": {"query": "select 4"}}}}}"#;
    let config = Config::from_plugin_sources(
        vec![Source::new("ext_source", text)],
        &Settings::from_flags(&Flags::new()),
        &mut packs,
    )
    .unwrap();
    // Each string pack was asked for once, with its name and value, as osquery asks.
    let mut asked = packs.asked.clone();
    asked.sort();
    assert_eq!(
        asked,
        [
            ("*", "/packs/%"),
            ("broken", "b"),
            ("empty", "e"),
            ("gone", "g"),
            ("net", "net-pack")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let mut names: Vec<String> = config
        .packs
        .iter()
        .flat_map(|p| p.queries.iter().map(|q| q.full_name.clone()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "pack_a_qa",
            "pack_b_qb",
            "pack_inline_qi",
            "pack_net_ports",
            "s"
        ]
    );
    assert!(config.packs.iter().all(|p| p.source == "ext_source"));
    // The packs the plugin could not give are left out, each with a warning naming it.
    for name in ["empty", "broken", "gone"] {
        assert!(
            config.warnings.iter().any(
                |w| w.contains(&format!("\"{name}\"")) || w.contains(&format!("named: {name}"))
            ),
            "{name}: {:?}",
            config.warnings
        );
    }
}

#[test]
fn experiments_are_looked_up_once_each_in_name_order() {
    let mut flags = Flags::new();
    assert_eq!(
        crate::experiments(&flags),
        vec![(log::Level::Debug, "No experiments selected".to_owned())]
    );
    flags.set("experiment_list", "zeta,alpha,,zeta").unwrap();
    assert_eq!(
        crate::experiments(&flags),
        vec![
            (
                log::Level::Info,
                "Experiments are enabled. This osquery instance is not officially supported"
                    .to_owned()
            ),
            (
                log::Level::Error,
                "The following experiment was not found: alpha".to_owned()
            ),
            (
                log::Level::Error,
                "The following experiment was not found: zeta".to_owned()
            ),
        ]
    );
}
