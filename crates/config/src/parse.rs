//! JSON → model. Wrong types are errors naming the source and the key path; osquery
//! mostly skips such entries silently, which leaves a daemon running less than its
//! operator asked for without saying why.

use super::model::*;
use super::source::{self, kind};
use super::{ConfigError, Settings};
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;
use std::path::Path;

/// Parsing state for one source: where errors point and where warnings go.
pub(crate) struct Ctx<'a> {
    pub origin: &'a str,
    pub settings: &'a Settings,
    pub warnings: &'a mut Vec<String>,
    /// Where packs given as strings come from when the config plugin is not the
    /// filesystem's (an extension answering `genPack`); `None` reads them as files.
    pub pack_plugin: Option<&'a mut dyn PackPlugin>,
}

/// A config plugin that resolves the packs its config gives as strings
/// (`"packs": {"<name>": "<value>"}`), as osquery asks the active config plugin
/// (`{"action": "genPack", "name", "value"}`); the filesystem plugin reads a file instead.
pub trait PackPlugin {
    /// The JSON text of pack `name` (for `*`, an object of packs by name), or why not.
    fn gen_pack(&mut self, name: &str, value: &str) -> Result<String, String>;
}

impl Ctx<'_> {
    fn err(&self, path: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.to_owned(),
            message: format!("{path}: {}", message.into()),
        }
    }

    fn warn(&mut self, message: String) {
        log::warn!("{message}");
        self.warnings.push(message);
    }
}

/// Parses every key but `options` (see [`super::options::parse_options`]).
pub(crate) fn parse_document(
    ctx: &mut Ctx<'_>,
    doc: &Map<String, Json>,
) -> Result<Parsed, ConfigError> {
    let mut parsed = Parsed::default();
    if let Some(schedule) = present(doc.get("schedule")) {
        let queries = object(ctx, "schedule", schedule)?;
        parsed
            .packs
            .push(pack_from_queries(ctx, MAIN_PACK, "schedule", queries)?);
    }
    if let Some(packs) = present(doc.get("packs")) {
        for (name, value) in object(ctx, "packs", packs)? {
            let path = format!("packs.{name}");
            if let Json::String(value) = value
                && ctx.pack_plugin.is_some()
            {
                parsed.packs.extend(plugin_packs(ctx, name, value));
                continue;
            }
            match value {
                Json::Object(body) if name != "*" => {
                    parsed.packs.push(parse_pack(ctx, name, &path, body)?)
                }
                Json::String(glob) if name == "*" => {
                    let files = source::glob_files(glob);
                    if files.is_empty() {
                        ctx.warn(format!("No pack files match {glob} (in {})", ctx.origin));
                    }
                    for file in files {
                        let stem = file
                            .file_stem()
                            .map(|s| s.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        parsed.packs.push(pack_file(ctx, &stem, &file)?);
                    }
                }
                Json::String(file) => parsed.packs.push(pack_file(ctx, name, Path::new(file))?),
                other => {
                    let wanted = if name == "*" {
                        "a glob string"
                    } else {
                        "an object or the path of a pack file"
                    };
                    return Err(ctx.err(&path, format!("must be {wanted}, not {}", kind(other))));
                }
            }
        }
    }
    if let Some(value) = present(doc.get("decorators")) {
        parsed.decorators = decorators(ctx, value)?;
    }
    if let Some(value) = present(doc.get("views")) {
        for (name, sql) in object(ctx, "views", value)? {
            let sql = string(ctx, &format!("views.{name}"), sql)?;
            parsed.views.insert(name.clone(), sql);
        }
    }
    if let Some(value) = present(doc.get("auto_table_construction")) {
        for (name, table) in object(ctx, "auto_table_construction", value)? {
            let path = format!("auto_table_construction.{name}");
            let body = object(ctx, &path, table)?;
            let field = |key: &str| present(body.get(key));
            let query = match field("query") {
                Some(v) => string(ctx, &format!("{path}.query"), v)?,
                None => return Err(ctx.err(&path, "has no \"query\"")),
            };
            let file = match field("path") {
                Some(v) => string(ctx, &format!("{path}.path"), v)?,
                None => return Err(ctx.err(&path, "has no \"path\"")),
            };
            let columns = match field("columns") {
                Some(v) => strings(ctx, &format!("{path}.columns"), v)?,
                None => Vec::new(),
            };
            let platform = opt_string(ctx, &format!("{path}.platform"), field("platform"))?;
            parsed.auto_table_construction.insert(
                name.clone(),
                AutoTable {
                    query,
                    path: file,
                    columns,
                    platform,
                },
            );
        }
    }
    for (key, target) in [
        ("file_paths", &mut parsed.file_paths),
        ("file_paths_query", &mut parsed.file_paths_query),
        ("exclude_paths", &mut parsed.exclude_paths),
        ("kafka_topics", &mut parsed.kafka_topics),
    ] {
        if let Some(value) = present(doc.get(key)) {
            *target = categories(ctx, key, value)?;
        }
    }
    if let Some(value) = present(doc.get("file_accesses")) {
        parsed.file_accesses = strings(ctx, "file_accesses", value)?;
    }
    if let Some(value) = present(doc.get("yara")) {
        object(ctx, "yara", value)?;
        parsed.yara = Some(value.clone());
    }
    if let Some(value) = present(doc.get("prometheus_targets")) {
        let body = object(ctx, "prometheus_targets", value)?;
        let urls = match present(body.get("urls")) {
            Some(v) => strings(ctx, "prometheus_targets.urls", v)?,
            None => {
                // osquery warns only when the section says something, but not urls.
                if !body.is_empty() {
                    ctx.warn(format!(
                        "prometheus_targets has no \"urls\" (in {})",
                        ctx.origin
                    ));
                }
                Vec::new()
            }
        };
        let timeout_secs = match present(body.get("timeout")) {
            Some(v) => size(ctx, "prometheus_targets.timeout", v)?,
            None => 1,
        };
        parsed.prometheus_targets = Some(oxquery_table::PrometheusTargets { urls, timeout_secs });
    }
    if let Some(value) = present(doc.get("events")) {
        let body = object(ctx, "events", value)?;
        if let Some(v) = present(body.get("enable_subscribers")) {
            parsed.events.enable_subscribers = strings(ctx, "events.enable_subscribers", v)?;
        }
        if let Some(v) = present(body.get("disable_subscribers")) {
            parsed.events.disable_subscribers = strings(ctx, "events.disable_subscribers", v)?;
        }
    }
    Ok(parsed)
}

/// Reads, strips and parses a pack file named by a config.
fn pack_file(ctx: &mut Ctx<'_>, name: &str, file: &Path) -> Result<Pack, ConfigError> {
    let shown = file.to_string_lossy();
    let text = match source::read_text(file) {
        Ok(text) => text,
        Err(ConfigError::Missing(_)) => {
            return Err(ctx.err(
                &format!("packs.{name}"),
                format!("pack file does not exist: {shown}"),
            ));
        }
        // A directory, FIFO or device says so ("cannot read <path>: is a directory").
        Err(ConfigError::Read { message, .. }) => {
            return Err(ctx.err(
                &format!("packs.{name}"),
                format!("cannot read pack file {shown}: {message}"),
            ));
        }
        Err(e) => return Err(e),
    };
    let doc = source::parse_document(&shown, &text, ctx.warnings)?;
    // Errors inside the file point at the file, not at the config naming it.
    let origin = shown.into_owned();
    let mut inner = Ctx {
        origin: &origin,
        settings: ctx.settings,
        warnings: ctx.warnings,
        pack_plugin: None,
    };
    let mut pack = parse_pack(&mut inner, name, "pack", &doc)?;
    pack.source = ctx.origin.to_owned();
    Ok(pack)
}

/// The packs the config plugin gives for `"<name>": "<value>"`. As in osquery, a pack the
/// plugin cannot give, gives empty or gives as something that is not a valid pack is
/// left out with a warning naming it; the rest of the config still loads.
fn plugin_packs(ctx: &mut Ctx<'_>, name: &str, value: &str) -> Vec<Pack> {
    let Some(plugin) = ctx.pack_plugin.as_deref_mut() else {
        return Vec::new();
    };
    let text = match plugin.gen_pack(name, value) {
        Ok(text) if text.trim().is_empty() => {
            ctx.warn(format!(
                "Error reading the query pack named: {name} (the config plugin gave nothing)"
            ));
            return Vec::new();
        }
        Ok(text) => text,
        Err(why) => {
            ctx.warn(format!("Error reading the query pack named: {name}: {why}"));
            return Vec::new();
        }
    };
    let origin = format!("{} (pack {name} from the config plugin)", ctx.origin);
    let source_name = ctx.origin.to_owned();
    let doc = match source::parse_document(&origin, &text, ctx.warnings) {
        Ok(doc) => doc,
        Err(e) => {
            ctx.warn(format!("Error parsing the \"{name}\" pack JSON: {e}"));
            return Vec::new();
        }
    };
    // `*` is a multi-pack: an object of packs by name, as a config's `packs` holds them.
    let bodies: Vec<(String, Json)> = if name == "*" {
        doc.into_iter().collect()
    } else {
        vec![(name.to_owned(), Json::Object(doc))]
    };
    let mut packs = Vec::with_capacity(bodies.len());
    for (pack_name, body) in bodies {
        let mut inner = Ctx {
            origin: &origin,
            settings: ctx.settings,
            warnings: ctx.warnings,
            pack_plugin: None,
        };
        let parsed = match &body {
            Json::Object(body) => parse_pack(&mut inner, &pack_name, "pack", body),
            other => Err(inner.err("pack", format!("must be an object, not {}", kind(other)))),
        };
        match parsed {
            Ok(mut pack) => {
                pack.source = source_name.clone();
                packs.push(pack);
            }
            Err(e) => ctx.warn(format!("Error adding pack: {pack_name}: {e}")),
        }
    }
    packs
}

fn parse_pack(
    ctx: &mut Ctx<'_>,
    name: &str,
    path: &str,
    body: &Map<String, Json>,
) -> Result<Pack, ConfigError> {
    let mut pack = match present(body.get("queries")) {
        Some(q) => {
            let queries = object(ctx, &format!("{path}.queries"), q)?;
            pack_from_queries(ctx, name, &format!("{path}.queries"), queries)?
        }
        None => pack_from_queries(ctx, name, path, &Map::new())?,
    };
    pack.platform = opt_string(
        ctx,
        &format!("{path}.platform"),
        present(body.get("platform")),
    )?;
    pack.version = opt_string(
        ctx,
        &format!("{path}.version"),
        present(body.get("version")),
    )?;
    if let Some(v) = present(body.get("shard")) {
        pack.shard = size(ctx, &format!("{path}.shard"), v)?;
    }
    if let Some(v) = present(body.get("discovery")) {
        pack.discovery = strings(ctx, &format!("{path}.discovery"), v)?;
    }
    if let Some(v) = present(body.get("oncall")) {
        pack.oncall = string(ctx, &format!("{path}.oncall"), v)?;
    }
    Ok(pack)
}

fn pack_from_queries(
    ctx: &mut Ctx<'_>,
    pack: &str,
    path: &str,
    queries: &Map<String, Json>,
) -> Result<Pack, ConfigError> {
    let mut parsed = Vec::with_capacity(queries.len());
    for (name, value) in queries {
        let qpath = format!("{path}.{name}");
        let body = object(ctx, &qpath, value)?;
        parsed.push(parse_query(ctx, pack, name, &qpath, body)?);
    }
    // osquery keeps a pack's queries in a sorted map.
    parsed.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Pack {
        name: pack.to_owned(),
        source: ctx.origin.to_owned(),
        platform: String::new(),
        version: String::new(),
        shard: 0,
        discovery: Vec::new(),
        oncall: "unknown".to_owned(),
        queries: parsed,
    })
}

fn parse_query(
    ctx: &mut Ctx<'_>,
    pack: &str,
    name: &str,
    path: &str,
    body: &Map<String, Json>,
) -> Result<Query, ConfigError> {
    let full_name = full_query_name(pack, name, &ctx.settings.pack_delimiter);
    check_query_name(&full_name).map_err(|m| ctx.err(path, m))?;
    let field = |key: &str| present(body.get(key));
    let query = match field("query") {
        Some(v) => string(ctx, &format!("{path}.query"), v)?,
        None => return Err(ctx.err(path, "has no \"query\"")),
    };
    if query.trim().is_empty() {
        return Err(ctx.err(&format!("{path}.query"), "is empty"));
    }
    let interval = match field("interval") {
        Some(v) => size(ctx, &format!("{path}.interval"), v)?,
        None => ctx.settings.default_interval,
    };
    if !(1..=MAX_QUERY_INTERVAL).contains(&interval) {
        return Err(ctx.err(
            &format!("{path}.interval"),
            format!("must be between 1 and {MAX_QUERY_INTERVAL} seconds, not {interval}"),
        ));
    }
    let flag = |ctx: &Ctx<'_>, key: &str, default: bool| match field(key) {
        Some(v) => boolean(ctx, &format!("{path}.{key}"), v),
        None => Ok(default),
    };
    // `blacklist` is osquery 3's spelling; `denylist` wins when both are given.
    let denylist = match (field("denylist"), field("blacklist")) {
        (Some(v), _) => boolean(ctx, &format!("{path}.denylist"), v)?,
        (None, Some(v)) => boolean(ctx, &format!("{path}.blacklist"), v)?,
        (None, None) => true,
    };
    Ok(Query {
        name: name.to_owned(),
        full_name,
        query,
        interval,
        snapshot: flag(ctx, "snapshot", false)?,
        removed: flag(ctx, "removed", true)?,
        denylist,
        platform: opt_string(ctx, &format!("{path}.platform"), field("platform"))?,
        version: opt_string(ctx, &format!("{path}.version"), field("version"))?,
        shard: match field("shard") {
            Some(v) => size(ctx, &format!("{path}.shard"), v)?,
            None => 0,
        },
        startup_priority: match field("startup_priority") {
            Some(v) => Some(size(ctx, &format!("{path}.startup_priority"), v)?),
            None => None,
        },
        // oxquery's per-query limits (osquery ignores keys it does not know).
        timeout: match field("timeout") {
            Some(v) => Some(size(ctx, &format!("{path}.timeout"), v)?),
            None => None,
        },
        memory_limit: match field("memory_limit") {
            Some(v) => Some(size(ctx, &format!("{path}.memory_limit"), v)?),
            None => None,
        },
    })
}

/// The logged name of a query: the bare name for the `main` pack (the `schedule`),
/// otherwise `pack<delimiter><pack><delimiter><query>`.
pub fn full_query_name(pack: &str, query: &str, delimiter: &str) -> String {
    if pack == MAIN_PACK {
        query.to_owned()
    } else {
        format!("pack{delimiter}{pack}{delimiter}{query}")
    }
}

/// Refuses names that would collide with the store's own keys for a query
/// (`query.<name>`, `<name>epoch`, `<name>counter`, cached tables, views).
pub fn check_query_name(full_name: &str) -> Result<(), String> {
    if full_name.is_empty() {
        return Err("a query name may not be empty".to_owned());
    }
    for prefix in ["query.", "cache.", "config_views."] {
        if full_name.starts_with(prefix) {
            return Err(format!(
                "query name {full_name:?} may not start with {prefix:?} (reserved by the results store)"
            ));
        }
    }
    for suffix in ["epoch", "counter"] {
        if full_name.ends_with(suffix) {
            return Err(format!(
                "query name {full_name:?} may not end with {suffix:?} (reserved by the results store)"
            ));
        }
    }
    Ok(())
}

fn decorators(ctx: &mut Ctx<'_>, value: &Json) -> Result<Decorators, ConfigError> {
    let body = object(ctx, "decorators", value)?;
    let mut out = Decorators::default();
    if let Some(v) = present(body.get("load")) {
        out.load = strings(ctx, "decorators.load", v)?;
    }
    if let Some(v) = present(body.get("always")) {
        out.always = strings(ctx, "decorators.always", v)?;
    }
    if let Some(v) = present(body.get("interval")) {
        for (key, queries) in object(ctx, "decorators.interval", v)? {
            let path = format!("decorators.interval.{key}");
            // A zero or non-multiple key can never fire on the scheduler's minute ticks
            // (and osquery would divide by zero on 0).
            let seconds = key
                .parse::<u64>()
                .ok()
                .filter(|s| *s > 0 && s % 60 == 0)
                .ok_or_else(|| {
                    ctx.err(&path, "the key must be a positive multiple of 60 seconds")
                })?;
            let list = strings(ctx, &path, queries)?;
            out.interval.entry(seconds).or_default().extend(list);
        }
    }
    Ok(out)
}

fn categories(ctx: &Ctx<'_>, key: &str, value: &Json) -> Result<Categories, ConfigError> {
    let mut out = BTreeMap::new();
    for (category, list) in object(ctx, key, value)? {
        out.insert(
            category.clone(),
            strings(ctx, &format!("{key}.{category}"), list)?,
        );
    }
    Ok(out)
}

/// `null` is treated as absent, as osquery's parsers do.
fn present(value: Option<&Json>) -> Option<&Json> {
    value.filter(|v| !v.is_null())
}

fn object<'v>(
    ctx: &Ctx<'_>,
    path: &str,
    value: &'v Json,
) -> Result<&'v Map<String, Json>, ConfigError> {
    value
        .as_object()
        .ok_or_else(|| ctx.err(path, format!("must be an object, not {}", kind(value))))
}

fn string(ctx: &Ctx<'_>, path: &str, value: &Json) -> Result<String, ConfigError> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| ctx.err(path, format!("must be a string, not {}", kind(value))))
}

fn opt_string(ctx: &Ctx<'_>, path: &str, value: Option<&Json>) -> Result<String, ConfigError> {
    value.map_or(Ok(String::new()), |v| string(ctx, path, v))
}

fn strings(ctx: &Ctx<'_>, path: &str, value: &Json) -> Result<Vec<String>, ConfigError> {
    let items = value.as_array().ok_or_else(|| {
        ctx.err(
            path,
            format!("must be an array of strings, not {}", kind(value)),
        )
    })?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| string(ctx, &format!("{path}[{i}]"), item))
        .collect()
}

/// A non-negative integer: a JSON number, or a string of decimal digits (osquery's
/// example packs write intervals as strings).
fn size(ctx: &Ctx<'_>, path: &str, value: &Json) -> Result<u64, ConfigError> {
    let parsed = match value {
        Json::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64)
                .map(|f| f as u64)
        }),
        Json::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| {
        ctx.err(
            path,
            format!("must be a non-negative integer, not {}", shown(value)),
        )
    })
}

/// A boolean: JSON `true`/`false`, a number (non-zero = true), or one of the strings
/// osquery and gflags understand.
fn boolean(ctx: &Ctx<'_>, path: &str, value: &Json) -> Result<bool, ConfigError> {
    let parsed = match value {
        Json::Bool(b) => Some(*b),
        Json::Number(n) => n.as_f64().map(|f| f != 0.0),
        Json::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" => Some(true),
            "false" | "f" | "no" | "n" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    };
    parsed.ok_or_else(|| ctx.err(path, format!("must be true or false, not {}", shown(value))))
}

/// A value for a message: scalars as written (cut short), containers by their type.
fn shown(value: &Json) -> String {
    match value {
        Json::Array(_) | Json::Object(_) | Json::Null => kind(value).to_owned(),
        other => {
            let text = other.to_string();
            if text.chars().count() > 40 {
                format!("{}...", text.chars().take(40).collect::<String>())
            } else {
                text
            }
        }
    }
}
