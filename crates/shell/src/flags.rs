//! osquery's command-line flags: one table of definitions and a gflags-compatible parser.
//!
//! Every flag is a row in [`FLAGS`] (name, type, default as text, kind, description), so
//! growing the set to all of osquery's flags is a data change: the parser, `--help`,
//! `.show` and `.features` read the table and know nothing about individual flags.
//!
//! Accepted syntax is gflags': `--name=value` or `-name=value`, `--name value` for
//! non-booleans, `--name` / `--name=true|false|1|0|yes|no` and `--noname` for booleans,
//! `--flagfile PATH` (one flag per line, `#` comments), and `--` to end flag parsing.

use std::fmt;
use std::path::Path;

/// Value type of a flag, as gflags declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagType {
    Bool,
    String,
    Int32,
    UInt32,
    UInt64,
}

impl FlagType {
    /// The word gflags uses in messages and `--help`.
    pub fn name(self) -> &'static str {
        match self {
            FlagType::Bool => "bool",
            FlagType::String => "string",
            FlagType::Int32 => "int32",
            FlagType::UInt32 => "uint32",
            FlagType::UInt64 => "uint64",
        }
    }
}

/// Where a flag may be set, as osquery classifies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// Command line or flagfile only.
    Cli,
    /// Also settable through the config's `options`.
    Config,
    /// Only meaningful to osqueryi.
    Shell,
    /// Not shown by `--help`.
    Hidden,
}

/// One flag definition.
#[derive(Debug, Clone, Copy)]
pub struct FlagDef {
    pub name: &'static str,
    pub ty: FlagType,
    /// The default as it would be written on the command line.
    pub default: &'static str,
    pub kind: FlagKind,
    pub description: &'static str,
}

const fn flag(
    name: &'static str,
    ty: FlagType,
    default: &'static str,
    kind: FlagKind,
    description: &'static str,
) -> FlagDef {
    FlagDef {
        name,
        ty,
        default,
        kind,
        description,
    }
}

use FlagKind::{Cli, Config, Hidden, Shell};
use FlagType::{Bool, String as Str};

/// Every flag oxquery knows, sorted by name (binary search relies on it).
pub const FLAGS: &[FlagDef] = &[
    flag("A", Str, "", Shell, "Select all from a table"),
    flag("L", Bool, "false", Shell, "List all table names"),
    flag(
        "S",
        Bool,
        "false",
        Cli,
        "Run as a shell process (the default for osqueryi)",
    ),
    flag(
        "csv",
        Bool,
        "false",
        Shell,
        "Set output mode to 'csv' (separator ',')",
    ),
    flag(
        "disable_tables",
        Str,
        "",
        Cli,
        "Comma-delimited list of table names to be disabled",
    ),
    flag(
        "enable_tables",
        Str,
        "",
        Cli,
        "Comma-delimited list of table names to be enabled (all others are disabled)",
    ),
    flag(
        "flagfile",
        Str,
        "",
        Cli,
        "Load flags from file, one per line",
    ),
    flag(
        "header",
        Bool,
        "true",
        Shell,
        "Toggle column headers (list, csv and column modes)",
    ),
    flag("help", Bool, "false", Cli, "Show this usage and exit"),
    flag(
        "json",
        Bool,
        "false",
        Shell,
        "Print rows as a JSON array of objects, one line per row",
    ),
    flag(
        "json_pretty",
        Bool,
        "false",
        Shell,
        "Print rows as an indented JSON array of objects",
    ),
    flag("line", Bool, "false", Shell, "Set output mode to 'line'"),
    flag("list", Bool, "false", Shell, "Set output mode to 'list'"),
    flag("nullvalue", Str, "", Config, "Text shown for NULL values"),
    flag(
        "planner",
        Bool,
        "false",
        Shell,
        "Print the virtual-table planner trace to stderr",
    ),
    flag(
        "query",
        Str,
        "",
        Shell,
        "Query to run instead of reading from stdin",
    ),
    flag(
        "query_file",
        Str,
        "",
        Shell,
        "File holding the query to run instead of reading from stdin",
    ),
    flag(
        "separator",
        Str,
        "|",
        Shell,
        "Field separator for list and csv modes",
    ),
    flag(
        "verbose",
        Bool,
        "false",
        Config,
        "Write informational status logs to stderr",
    ),
    flag(
        "version",
        Bool,
        "false",
        Hidden,
        "Print the version and exit",
    ),
];

/// Looks a flag up by its exact name.
pub fn find(name: &str) -> Option<(usize, &'static FlagDef)> {
    FLAGS
        .binary_search_by(|f| f.name.cmp(name))
        .ok()
        .map(|i| (i, &FLAGS[i]))
}

/// A typed flag value.
#[derive(Debug, Clone, PartialEq)]
pub enum FlagValue {
    Bool(bool),
    Int(i64),
    UInt(u64),
    Str(String),
}

impl fmt::Display for FlagValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlagValue::Bool(b) => write!(f, "{b}"),
            FlagValue::Int(i) => write!(f, "{i}"),
            FlagValue::UInt(u) => write!(f, "{u}"),
            FlagValue::Str(s) => f.write_str(s),
        }
    }
}

/// Why the command line was rejected. The texts are gflags' own.
#[derive(Debug, Clone, PartialEq)]
pub enum FlagError {
    Unknown(String),
    IllegalValue {
        name: String,
        ty: FlagType,
        value: String,
    },
    MissingArgument(String),
    /// `--noname` used for a flag that is not a boolean.
    NegatedNonBool(String),
    Flagfile {
        path: String,
        reason: String,
    },
}

impl fmt::Display for FlagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlagError::Unknown(name) => write!(f, "ERROR: unknown command line flag '{name}'"),
            FlagError::IllegalValue { name, ty, value } => write!(
                f,
                "ERROR: illegal value '{value}' specified for {} flag '{name}'",
                ty.name()
            ),
            FlagError::MissingArgument(name) => {
                write!(f, "ERROR: flag '{name}' is missing its argument")
            }
            FlagError::NegatedNonBool(name) => write!(
                f,
                "ERROR: boolean value (no{name}) specified for non-bool command line flag '{name}'"
            ),
            FlagError::Flagfile { path, reason } => {
                write!(f, "ERROR: cannot read flagfile '{path}': {reason}")
            }
        }
    }
}

impl std::error::Error for FlagError {}

/// Parses `text` as a value of type `ty` (gflags' rules: booleans accept
/// true/false/yes/no/t/f/y/n/1/0 in any case; integers are decimal or 0x-hex).
pub fn parse_value(ty: FlagType, text: &str) -> Option<FlagValue> {
    fn int(text: &str) -> Option<i128> {
        let t = text.trim();
        let (neg, digits) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t.strip_prefix('+').unwrap_or(t)),
        };
        let magnitude = match digits
            .strip_prefix("0x")
            .or_else(|| digits.strip_prefix("0X"))
        {
            Some(hex) => i128::from_str_radix(hex, 16).ok()?,
            None if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                digits.parse().ok()?
            }
            None => return None,
        };
        Some(if neg { -magnitude } else { magnitude })
    }
    match ty {
        FlagType::Bool => match text.to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" => Some(FlagValue::Bool(true)),
            "false" | "f" | "no" | "n" | "0" => Some(FlagValue::Bool(false)),
            _ => None,
        },
        FlagType::String => Some(FlagValue::Str(text.to_owned())),
        FlagType::Int32 => i32::try_from(int(text)?)
            .ok()
            .map(|v| FlagValue::Int(v.into())),
        FlagType::UInt32 => u32::try_from(int(text)?)
            .ok()
            .map(|v| FlagValue::UInt(v.into())),
        FlagType::UInt64 => u64::try_from(int(text)?).ok().map(FlagValue::UInt),
    }
}

/// Current values of every flag in [`FLAGS`], with which ones were set explicitly.
#[derive(Debug, Clone)]
pub struct Flags {
    values: Vec<FlagValue>,
    explicit: Vec<bool>,
}

impl Default for Flags {
    fn default() -> Self {
        Self::new()
    }
}

impl Flags {
    /// All flags at their defaults.
    pub fn new() -> Flags {
        let values = FLAGS
            .iter()
            .map(|f| {
                parse_value(f.ty, f.default)
                    .unwrap_or_else(|| panic!("default of flag {} is not a {:?}", f.name, f.ty))
            })
            .collect();
        Flags {
            values,
            explicit: vec![false; FLAGS.len()],
        }
    }

    /// Sets `name` from its textual form, checking the type.
    pub fn set(&mut self, name: &str, text: &str) -> Result<(), FlagError> {
        let (i, def) = find(name).ok_or_else(|| FlagError::Unknown(name.to_owned()))?;
        let value = parse_value(def.ty, text).ok_or_else(|| FlagError::IllegalValue {
            name: name.to_owned(),
            ty: def.ty,
            value: text.to_owned(),
        })?;
        self.values[i] = value;
        self.explicit[i] = true;
        Ok(())
    }

    fn get(&self, name: &str) -> &FlagValue {
        let (i, _) = find(name).unwrap_or_else(|| panic!("flag {name} is not defined"));
        &self.values[i]
    }

    /// A boolean flag's value. Panics if `name` is not a defined boolean (a programming error).
    pub fn bool(&self, name: &str) -> bool {
        match self.get(name) {
            FlagValue::Bool(b) => *b,
            other => panic!("flag {name} is not a bool: {other:?}"),
        }
    }

    /// A string flag's value. Panics if `name` is not a defined string flag.
    pub fn string(&self, name: &str) -> &str {
        match self.get(name) {
            FlagValue::Str(s) => s,
            other => panic!("flag {name} is not a string: {other:?}"),
        }
    }

    /// An integer flag's value. Panics if `name` is not a defined integer flag.
    pub fn int(&self, name: &str) -> i128 {
        match self.get(name) {
            FlagValue::Int(i) => (*i).into(),
            FlagValue::UInt(u) => (*u).into(),
            other => panic!("flag {name} is not an integer: {other:?}"),
        }
    }

    /// Whether `name` was given on the command line or in a flagfile.
    pub fn is_set(&self, name: &str) -> bool {
        find(name).is_some_and(|(i, _)| self.explicit[i])
    }

    /// Flags whose value differs from the default, in name order.
    pub fn non_default(&self) -> impl Iterator<Item = (&'static FlagDef, &FlagValue)> {
        FLAGS
            .iter()
            .zip(&self.values)
            .filter(|(def, value)| parse_value(def.ty, def.default).as_ref() != Some(*value))
    }

    /// Every flag with its current value, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static FlagDef, &FlagValue)> {
        FLAGS.iter().zip(&self.values)
    }
}

/// The result of parsing argv.
#[derive(Debug, Clone)]
pub struct CommandLine {
    pub flags: Flags,
    /// Arguments that are not flags, in order.
    pub positional: Vec<String>,
}

/// Parses `args` (without argv\[0\]). If no `--flagfile` is among them and
/// `default_flagfile` is readable, it is applied first so the command line overrides it.
pub fn parse_command_line(
    args: &[String],
    default_flagfile: Option<&Path>,
) -> Result<CommandLine, FlagError> {
    let mut parsed = CommandLine {
        flags: Flags::new(),
        positional: Vec::new(),
    };
    let names_flagfile = args
        .iter()
        .take_while(|a| a.as_str() != "--")
        .any(|a| split_flag(a).is_some_and(|(name, _)| name == "flagfile"));
    if !names_flagfile
        && let Some(path) = default_flagfile
        && std::fs::File::open(path).is_ok()
    {
        let path = path.to_string_lossy().into_owned();
        apply_flagfile(&mut parsed, &path, 0)?;
        parsed.flags.set("flagfile", &path)?;
    }
    apply_args(&mut parsed, args, 0, true)?;
    Ok(parsed)
}

/// Flagfiles may include flagfiles; this bounds a cycle.
const MAX_FLAGFILE_DEPTH: usize = 8;

/// `-name[=value]` / `--name[=value]` → (name, value). Not a flag: `-`, `--`, plain words.
fn split_flag(arg: &str) -> Option<(&str, Option<&str>)> {
    let body = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-'))?;
    if body.is_empty() || body.starts_with('-') {
        return None;
    }
    Some(match body.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (body, None),
    })
}

fn apply_args(
    parsed: &mut CommandLine,
    args: &[String],
    depth: usize,
    allow_positional: bool,
) -> Result<(), FlagError> {
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            if allow_positional {
                parsed.positional.extend(args[i..].iter().cloned());
            }
            break;
        }
        let Some((raw_name, value)) = split_flag(arg) else {
            if allow_positional {
                parsed.positional.push(arg.clone());
            }
            continue;
        };
        // osquery accepts `-h` for help as well.
        let name = if raw_name == "h" { "help" } else { raw_name };
        let def = match find(name) {
            Some((_, def)) => def,
            None => {
                // `--noNAME` turns a boolean off.
                let negated = name.strip_prefix("no").and_then(find);
                match negated {
                    Some((_, def)) if def.ty == FlagType::Bool && value.is_none() => {
                        parsed.flags.set(def.name, "false")?;
                        continue;
                    }
                    Some((_, def)) if def.ty != FlagType::Bool => {
                        return Err(FlagError::NegatedNonBool(def.name.to_owned()));
                    }
                    _ => return Err(FlagError::Unknown(raw_name.to_owned())),
                }
            }
        };
        let value = match (value, def.ty) {
            (Some(v), _) => v.to_owned(),
            // Booleans never consume the next argument, so `--json 'select 1'` works.
            (None, FlagType::Bool) => "true".to_owned(),
            (None, _) => match args.get(i) {
                Some(next) => {
                    i += 1;
                    next.clone()
                }
                None => return Err(FlagError::MissingArgument(def.name.to_owned())),
            },
        };
        if def.name == "flagfile" {
            apply_flagfile(parsed, &value, depth + 1)?;
        }
        parsed.flags.set(def.name, &value)?;
    }
    Ok(())
}

fn apply_flagfile(parsed: &mut CommandLine, path: &str, depth: usize) -> Result<(), FlagError> {
    if depth > MAX_FLAGFILE_DEPTH {
        return Err(FlagError::Flagfile {
            path: path.to_owned(),
            reason: "flagfiles nested too deeply".to_owned(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|e| FlagError::Flagfile {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    // One flag per line; a line is never split, so values may contain spaces.
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    for line in &lines {
        let Some((name, value)) = split_flag(line) else {
            // gflags ignores non-flag lines in a flagfile.
            continue;
        };
        let one = [format!(
            "--{name}{}",
            value.map(|v| format!("={v}")).unwrap_or_default()
        )];
        apply_args(parsed, &one, depth, false)?;
    }
    Ok(())
}

/// The `--help` text: usage and every visible flag with its type and default.
pub fn usage(binary: &str, version: &str) -> String {
    let mut text = format!(
        "osquery {version}, your OS as a high-performance relational database\n\
         Usage: {binary} [OPTION]... [SQL STATEMENT]\n\n"
    );
    let sections = [
        ("osquery command line flags:", FlagKind::Cli),
        (
            "osquery configuration options (set by config or CLI flags):",
            FlagKind::Config,
        ),
        ("osquery shell-only CLI flags:", FlagKind::Shell),
    ];
    for (title, kind) in sections {
        text.push_str(title);
        text.push('\n');
        for def in FLAGS.iter().filter(|f| f.kind == kind) {
            let dash = if def.name.len() == 1 { "-" } else { "--" };
            let arg = match def.ty {
                FlagType::Bool => String::new(),
                FlagType::String => " VALUE".to_owned(),
                _ => " N".to_owned(),
            };
            let default = match def.ty {
                FlagType::String => format!("\"{}\"", def.default),
                _ => def.default.to_owned(),
            };
            text.push_str(&format!(
                "    {:<30}  {} (type: {}, default: {default})\n",
                format!("{dash}{}{arg}", def.name),
                def.description,
                def.ty.name()
            ));
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn parse(v: &[&str]) -> Result<CommandLine, FlagError> {
        parse_command_line(&args(v), None)
    }

    #[test]
    fn table_is_sorted_and_defaults_parse() {
        assert!(FLAGS.windows(2).all(|w| w[0].name < w[1].name));
        for f in FLAGS {
            assert!(parse_value(f.ty, f.default).is_some(), "{}", f.name);
        }
    }

    #[test]
    fn gflags_syntax() {
        let cl = parse(&["--json", "select 1", "--separator", ",", "-header=FALSE"]).unwrap();
        assert!(cl.flags.bool("json"));
        assert!(!cl.flags.bool("header"));
        assert_eq!(cl.flags.string("separator"), ",");
        assert_eq!(cl.positional, vec!["select 1"]);
        let cl = parse(&["--noheader", "--", "--json"]).unwrap();
        assert!(!cl.flags.bool("header"));
        assert!(!cl.flags.bool("json"));
        assert_eq!(cl.positional, vec!["--json"]);
        assert!(parse(&["-h"]).unwrap().flags.bool("help"));
        assert_eq!(
            parse(&["-A", "uptime"]).unwrap().flags.string("A"),
            "uptime"
        );
        assert!(parse(&["-L"]).unwrap().flags.bool("L"));
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse(&["--bogus"]).unwrap_err().to_string(),
            "ERROR: unknown command line flag 'bogus'"
        );
        assert_eq!(
            parse(&["--header=maybe"]).unwrap_err().to_string(),
            "ERROR: illegal value 'maybe' specified for bool flag 'header'"
        );
        assert_eq!(
            parse(&["--query"]).unwrap_err(),
            FlagError::MissingArgument("query".into())
        );
        assert_eq!(
            parse(&["--noseparator"]).unwrap_err(),
            FlagError::NegatedNonBool("separator".into())
        );
    }

    #[test]
    fn integer_values() {
        assert_eq!(parse_value(FlagType::Int32, "-5"), Some(FlagValue::Int(-5)));
        assert_eq!(
            parse_value(FlagType::UInt32, "0x10"),
            Some(FlagValue::UInt(16))
        );
        assert_eq!(parse_value(FlagType::UInt32, "-1"), None);
        assert_eq!(parse_value(FlagType::Int32, "3000000000"), None);
        assert_eq!(parse_value(FlagType::UInt64, "12abc"), None);
    }

    #[test]
    fn flagfiles_and_the_default_flagfile() {
        let dir = std::env::temp_dir().join(format!("oxq-flags-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("flags");
        std::fs::write(
            &file,
            "# comment\n--separator=;\n\n  --csv  \n--nullvalue=a b\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let cl = parse(&["--flagfile", path, "--nocsv"]).unwrap();
        assert_eq!(cl.flags.string("separator"), ";");
        assert_eq!(cl.flags.string("nullvalue"), "a b");
        assert!(!cl.flags.bool("csv"));
        assert_eq!(cl.flags.string("flagfile"), path);

        let cl = parse_command_line(&args(&["--separator=x"]), Some(&file)).unwrap();
        assert_eq!(cl.flags.string("separator"), "x");
        assert!(cl.flags.bool("csv"));
        assert_eq!(cl.flags.string("flagfile"), path);
        let missing = dir.join("missing");
        let cl = parse_command_line(&[], Some(&missing)).unwrap();
        assert_eq!(cl.flags.string("flagfile"), "");
        assert!(matches!(
            parse(&["--flagfile", missing.to_str().unwrap()]),
            Err(FlagError::Flagfile { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn non_default_lists_changed_flags() {
        let cl = parse(&["--json", "--header=true"]).unwrap();
        let names: Vec<_> = cl.flags.non_default().map(|(d, _)| d.name).collect();
        assert_eq!(names, vec!["json"]);
        assert!(cl.flags.is_set("header"));
    }
}
