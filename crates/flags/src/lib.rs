//! osquery's command-line flags, shared by osqueryi and (later) osqueryd: one table of
//! definitions ([`FLAGS`], [`ALIASES`]), a gflags-compatible parser, flagfiles, and the
//! `--help` text.
//!
//! Every flag is a row of data (name, type, default as text, kind, description), so the
//! parser, `--help`, `.show`, `.features` and the `osquery_flags` table read the table
//! and know nothing about individual flags. Which flags oxquery acts on is also data
//! ([`implemented`]); the rest are accepted and reported by [`Flags::notices`].
//!
//! Accepted syntax is gflags': `--name=value` or `-name=value`, `--name value` for
//! non-booleans, `--name` / `--name=true|false|1|0|yes|no` (any case) and `--noname` for
//! booleans, `--flagfile PATH` (one flag per line, `#` comments), and `--` to end flag
//! parsing.
//!
//! Arguments are `OsString`s: a path-valued flag ([`FlagType::Path`], read as a `&Path`)
//! keeps whatever bytes it was given, and any other flag given bytes that are not UTF-8
//! is refused by name ([`FlagError::NotUtf8`]) instead of being altered.

/// The Rust type of a flag of each [`FlagType`] (the row's type word in `defs.rs`).
macro_rules! flag_rust_type {
    (Bool) => {
        bool
    };
    (Str) => {
        String
    };
    (Path) => {
        std::path::PathBuf
    };
    (I32) => {
        i32
    };
    (U32) => {
        u32
    };
    (U64) => {
        u64
    };
}
pub(crate) use flag_rust_type;

mod defs;
pub mod implemented;

pub use defs::{ALIASES, FLAGS, flag};

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::marker::PhantomData;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// A typed handle on one flag; every flag has one in [`flag`], so a misspelt name or a
/// read of the wrong type is a compile error rather than a panic at run time.
pub struct Key<T> {
    index: usize,
    ty: PhantomData<fn() -> T>,
}

impl<T> Clone for Key<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Key<T> {}

impl<T> fmt::Debug for Key<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "flag::{}", self.name())
    }
}

impl<T> Key<T> {
    pub(crate) const fn at(index: usize) -> Key<T> {
        Key {
            index,
            ty: PhantomData,
        }
    }

    /// The flag's definition.
    pub fn def(self) -> &'static FlagDef {
        &FLAGS[self.index]
    }

    /// The flag's name, as given on the command line.
    pub fn name(self) -> &'static str {
        self.def().name
    }
}

/// The Rust types flags have: `bool`, `String` (read as `&str`), `PathBuf` (read as
/// `&Path`), `i32`, `u32`, `u64`.
pub trait FlagRust: Sized {
    /// What reading the flag gives (a borrow for text and paths).
    type Read<'a>;
    /// Reads a value of this type. Values are checked against the flag's type when
    /// they are set, so the fallback (the type's zero) is never used.
    fn read(value: &FlagValue) -> Self::Read<'_>;
    /// The value in its general form.
    fn into_value(self) -> FlagValue;
}

impl FlagRust for bool {
    type Read<'a> = bool;
    fn read(value: &FlagValue) -> bool {
        matches!(value, FlagValue::Bool(true))
    }
    fn into_value(self) -> FlagValue {
        FlagValue::Bool(self)
    }
}

impl FlagRust for String {
    type Read<'a> = &'a str;
    fn read(value: &FlagValue) -> &str {
        match value {
            FlagValue::Str(s) => s,
            _ => "",
        }
    }
    fn into_value(self) -> FlagValue {
        FlagValue::Str(self)
    }
}

impl FlagRust for PathBuf {
    type Read<'a> = &'a Path;
    fn read(value: &FlagValue) -> &Path {
        match value {
            FlagValue::Path(p) => p,
            _ => Path::new(""),
        }
    }
    fn into_value(self) -> FlagValue {
        FlagValue::Path(self)
    }
}

macro_rules! integer_flag_rust {
    ($($t:ty => $variant:ident),+) => {$(
        impl FlagRust for $t {
            type Read<'a> = $t;
            fn read(value: &FlagValue) -> $t {
                match value {
                    FlagValue::Int(i) => <$t>::try_from(*i).unwrap_or_default(),
                    FlagValue::UInt(u) => <$t>::try_from(*u).unwrap_or_default(),
                    _ => 0,
                }
            }
            fn into_value(self) -> FlagValue {
                FlagValue::$variant(self.into())
            }
        }
    )+};
}
integer_flag_rust!(i32 => Int, u32 => UInt, u64 => UInt);

/// Value type of a flag, as gflags declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagType {
    Bool,
    String,
    /// A string that names a file or directory: it keeps any bytes, UTF-8 or not.
    Path,
    Int32,
    UInt32,
    UInt64,
}

impl FlagType {
    /// The word gflags uses in messages, `--help` and `osquery_flags.type` (a path is a
    /// string to gflags).
    pub fn name(self) -> &'static str {
        match self {
            FlagType::Bool => "bool",
            FlagType::String | FlagType::Path => "string",
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
    /// Accepted but not shown by `--help`.
    Hidden,
    /// Defined by gflags/glog themselves.
    Builtin,
}

/// Who defines a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOrigin {
    /// osquery itself: the flags `osquery_flags` lists.
    Osquery,
    /// gflags or glog, which osquery links (`--flagfile`, `--v`, ...).
    Gflags,
    /// oxquery's additions (typed JSON, terminal-fitting output).
    Oxquery,
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
    pub origin: FlagOrigin,
    /// False for flags osquery only defines on other platforms: accepted, never used.
    pub on_linux: bool,
    /// For string flags with a fixed set of values; empty = any text.
    pub choices: &'static [&'static str],
}

impl FlagDef {
    /// Whether `osquery_flags` lists this flag (osquery's own Linux flags, and ours).
    pub fn in_flags_table(&self) -> bool {
        self.on_linux && self.origin != FlagOrigin::Gflags
    }

    /// Whether `--help` shows it.
    pub fn in_help(&self) -> bool {
        self.on_linux
            && self.kind != FlagKind::Hidden
            && (self.kind != FlagKind::Builtin || self.name == "flagfile")
    }
}

/// An alternative name for a flag.
#[derive(Debug, Clone, Copy)]
pub struct AliasDef {
    pub name: &'static str,
    pub target: &'static str,
    /// osquery defines it for extension processes (`--socket`, `--timeout`, `--interval`).
    pub extension: bool,
}

/// Looks a flag up by its exact name (aliases are not resolved).
pub fn find(name: &str) -> Option<(usize, &'static FlagDef)> {
    FLAGS
        .binary_search_by(|f| f.name.cmp(name))
        .ok()
        .map(|i| (i, &FLAGS[i]))
}

/// Looks a flag up by its name or an alias of it.
pub fn resolve(name: &str) -> Option<(usize, &'static FlagDef)> {
    find(name).or_else(|| {
        let alias = ALIASES.iter().find(|a| a.name == name)?;
        find(alias.target)
    })
}

/// A typed flag value.
#[derive(Debug, Clone, PartialEq)]
pub enum FlagValue {
    Bool(bool),
    Int(i64),
    UInt(u64),
    Str(String),
    Path(PathBuf),
}

/// Shows a path whose bytes are not all UTF-8 with U+FFFD in their place (listings such
/// as `.show` and `osquery_flags` are text); the value itself keeps the bytes.
impl fmt::Display for FlagValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlagValue::Bool(b) => write!(f, "{b}"),
            FlagValue::Int(i) => write!(f, "{i}"),
            FlagValue::UInt(u) => write!(f, "{u}"),
            FlagValue::Str(s) => f.write_str(s),
            FlagValue::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

/// `bytes` as text, each byte that is not part of valid UTF-8 written `\xNN`, so a
/// message can show exactly what was given.
pub fn escape_non_utf8(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        for b in chunk.invalid() {
            text.push_str(&format!("\\x{b:02x}"));
        }
    }
    text
}

/// Why the command line was rejected. The texts follow gflags' own.
#[derive(Debug, Clone, PartialEq)]
pub enum FlagError {
    Unknown(String),
    IllegalValue {
        name: String,
        ty: FlagType,
        value: String,
    },
    /// A string flag with a fixed set of values got another one.
    NotAChoice {
        name: String,
        value: String,
        choices: &'static [&'static str],
    },
    MissingArgument(String),
    /// `--noname` used for a flag that is not a boolean.
    NegatedNonBool(String),
    /// A flag that is not a path was given bytes that are not UTF-8 (shown escaped).
    NotUtf8 {
        name: String,
        value: String,
    },
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
            FlagError::NotAChoice {
                name,
                value,
                choices,
            } => write!(
                f,
                "ERROR: illegal value '{value}' specified for string flag '{name}' (expected one of: {})",
                choices.join(", ")
            ),
            FlagError::MissingArgument(name) => {
                write!(f, "ERROR: flag '{name}' is missing its argument")
            }
            FlagError::NegatedNonBool(name) => write!(
                f,
                "ERROR: boolean value (no{name}) specified for non-bool command line flag '{name}'"
            ),
            FlagError::NotUtf8 { name, value } => write!(
                f,
                "ERROR: illegal value '{value}' specified for string flag '{name}': not valid UTF-8"
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
        FlagType::Path => Some(FlagValue::Path(PathBuf::from(text))),
        FlagType::Int32 => i32::try_from(int(text)?)
            .ok()
            .map(|v| FlagValue::Int(v.into())),
        FlagType::UInt32 => u32::try_from(int(text)?)
            .ok()
            .map(|v| FlagValue::UInt(v.into())),
        FlagType::UInt64 => u64::try_from(int(text)?).ok().map(FlagValue::UInt),
    }
}

/// Parses and validates a value for `def`.
fn checked_value(def: &FlagDef, text: &str) -> Result<FlagValue, FlagError> {
    let value = parse_value(def.ty, text).ok_or_else(|| FlagError::IllegalValue {
        name: def.name.to_owned(),
        ty: def.ty,
        value: text.to_owned(),
    })?;
    check_choice(def, &value)?;
    Ok(value)
}

/// [`checked_value`] for a command-line argument: a path takes its bytes as they are,
/// any other flag needs UTF-8.
fn checked_os_value(def: &FlagDef, arg: &OsStr) -> Result<FlagValue, FlagError> {
    if def.ty == FlagType::Path {
        return Ok(FlagValue::Path(PathBuf::from(arg)));
    }
    match arg.to_str() {
        Some(text) => checked_value(def, text),
        None => Err(FlagError::NotUtf8 {
            name: def.name.to_owned(),
            value: escape_non_utf8(arg.as_bytes()),
        }),
    }
}

/// A string flag with a fixed set of values accepts only those.
fn check_choice(def: &FlagDef, value: &FlagValue) -> Result<(), FlagError> {
    match value {
        FlagValue::Str(text) if !def.choices.is_empty() && !def.choices.contains(&&**text) => {
            Err(FlagError::NotAChoice {
                name: def.name.to_owned(),
                value: text.clone(),
                choices: def.choices,
            })
        }
        _ => Ok(()),
    }
}

/// Something the user should hear about a flag they set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub flag: &'static str,
    pub message: String,
}

/// Current values of every flag in [`FLAGS`], with the tool's own defaults (osqueryi
/// changes some of osquery's) and which ones the user set.
#[derive(Debug, Clone)]
pub struct Flags {
    values: Vec<FlagValue>,
    /// The value this tool uses when the user says nothing: `.show` reports flags that
    /// differ from it, and a flag equal to it needs no "no effect" warning.
    baseline: Vec<FlagValue>,
    explicit: Vec<bool>,
}

impl Default for Flags {
    fn default() -> Self {
        Self::new()
    }
}

impl Flags {
    /// All flags at osquery's defaults.
    pub fn new() -> Flags {
        let values: Vec<FlagValue> = FLAGS
            .iter()
            .map(|f| {
                parse_value(f.ty, f.default)
                    .unwrap_or_else(|| panic!("default of flag {} is not a {:?}", f.name, f.ty))
            })
            .collect();
        Flags {
            baseline: values.clone(),
            values,
            explicit: vec![false; FLAGS.len()],
        }
    }

    /// Sets `name` (or an alias) from its textual form, checking the type, as the user did.
    pub fn set(&mut self, name: &str, text: &str) -> Result<(), FlagError> {
        let (i, def) = resolve(name).ok_or_else(|| FlagError::Unknown(name.to_owned()))?;
        self.values[i] = checked_value(def, text)?;
        self.explicit[i] = true;
        Ok(())
    }

    /// [`Flags::set`] from a command-line argument, which may hold any bytes: a path
    /// keeps them, another flag refuses what is not UTF-8.
    pub fn set_os(&mut self, name: &str, arg: &OsStr) -> Result<(), FlagError> {
        let (i, def) = resolve(name).ok_or_else(|| FlagError::Unknown(name.to_owned()))?;
        self.values[i] = checked_os_value(def, arg)?;
        self.explicit[i] = true;
        Ok(())
    }

    /// A flag's value.
    pub fn get<T: FlagRust>(&self, key: Key<T>) -> T::Read<'_> {
        T::read(&self.values[key.index])
    }

    /// A flag's value in its general form (for listings such as `.show`).
    pub fn value<T>(&self, key: Key<T>) -> &FlagValue {
        &self.values[key.index]
    }

    /// Makes `value` this tool's default for `key`; the current value follows unless the
    /// user set the flag. Panics on a value outside the flag's choices (a programming
    /// error).
    pub fn set_tool_default<T: FlagRust>(&mut self, key: Key<T>, value: T) {
        let value = value.into_value();
        check_choice(key.def(), &value)
            .unwrap_or_else(|e| panic!("tool default for {}: {e}", key.name()));
        if !self.explicit[key.index] {
            self.values[key.index] = value.clone();
        }
        self.baseline[key.index] = value;
    }

    /// Sets `key` to `value` whatever the user said, and makes it the tool's default (the
    /// shell forces some settings after parsing, as osquery does).
    pub fn force<T: FlagRust>(&mut self, key: Key<T>, value: T) {
        let value = value.into_value();
        check_choice(key.def(), &value).unwrap_or_else(|e| panic!("forced {}: {e}", key.name()));
        self.values[key.index] = value.clone();
        self.baseline[key.index] = value;
    }

    /// Whether `key` was given on the command line, in a flagfile or by a config option.
    pub fn is_set<T>(&self, key: Key<T>) -> bool {
        self.explicit[key.index]
    }

    /// Flags whose value differs from this tool's default, in name order.
    pub fn non_default(&self) -> impl Iterator<Item = (&'static FlagDef, &FlagValue)> {
        FLAGS
            .iter()
            .zip(self.values.iter().zip(&self.baseline))
            .filter(|(_, (value, baseline))| value != baseline)
            .map(|(def, (value, _))| (def, value))
    }

    /// Every flag with its current value, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static FlagDef, &FlagValue)> {
        FLAGS.iter().zip(&self.values)
    }

    /// Warnings for flags the user set that do nothing in oxquery: features not built yet,
    /// and flags osquery only has on other platforms. Flags left at (or set to) the
    /// tool's default need none: nothing was asked of us.
    pub fn notices(&self) -> Vec<Notice> {
        self.notices_for(implemented::Tool::Shell)
    }

    /// [`Flags::notices`] for `tool` (the daemon acts on more flags than the shell).
    pub fn notices_for(&self, tool: implemented::Tool) -> Vec<Notice> {
        let mut notices = Vec::new();
        for (i, def) in FLAGS.iter().enumerate() {
            if !self.explicit[i] || implemented::is_refused(def.name) {
                continue;
            }
            let message = if !def.on_linux {
                format!(
                    "Flag --{} only applies to osquery on other platforms; it has no effect on Linux",
                    def.name
                )
            } else if implemented::is_implemented_in(def.name, tool)
                || self.values[i] == self.baseline[i]
            {
                continue;
            } else if let Some(feature) = implemented::missing_feature(def.name)
                && tool == implemented::Tool::Daemon
            {
                format!(
                    "Flag --{} has no effect: this build lacks the {feature} cargo feature",
                    def.name
                )
            } else if tool != implemented::Tool::Daemon && implemented::is_daemon_only(def.name) {
                format!(
                    "Flag --{} only applies to osqueryd; osqueryi does not act on it",
                    def.name
                )
            } else {
                format!(
                    "Flag --{} is accepted but has no effect yet: oxquery does not implement its feature",
                    def.name
                )
            };
            notices.push(Notice {
                flag: def.name,
                message,
            });
        }
        notices
    }
}

/// The result of parsing argv.
#[derive(Debug, Clone)]
pub struct CommandLine {
    pub flags: Flags,
    /// Arguments that are not flags, in order, with their bytes as given (osqueryi checks
    /// that SQL among them is UTF-8 where it runs it).
    pub positional: Vec<OsString>,
}

/// Parses `args` (without argv\[0\]) over `base` (which holds the tool's defaults). If no
/// `--flagfile` is among them and `default_flagfile` is readable, it is applied first so
/// the command line overrides it.
pub fn parse_command_line_with<A: AsRef<OsStr>>(
    base: Flags,
    args: &[A],
    default_flagfile: Option<&Path>,
) -> Result<CommandLine, FlagError> {
    let args: Vec<&OsStr> = args.iter().map(AsRef::as_ref).collect();
    let mut parsed = CommandLine {
        flags: base,
        positional: Vec::new(),
    };
    let names_flagfile = args
        .iter()
        .take_while(|a| **a != "--")
        .any(|a| split_flag(a).is_some_and(|(name, _)| name == "flagfile"));
    if !names_flagfile
        && let Some(path) = default_flagfile
        && std::fs::File::open(path).is_ok()
    {
        apply_flagfile(&mut parsed, path, 0)?;
        parsed.flags.set_os("flagfile", path.as_os_str())?;
    }
    apply_args(&mut parsed, &args, 0, true)?;
    Ok(parsed)
}

/// [`parse_command_line_with`] over osquery's defaults.
pub fn parse_command_line<A: AsRef<OsStr>>(
    args: &[A],
    default_flagfile: Option<&Path>,
) -> Result<CommandLine, FlagError> {
    parse_command_line_with(Flags::new(), args, default_flagfile)
}

/// Flagfiles may include flagfiles; this bounds a cycle.
const MAX_FLAGFILE_DEPTH: usize = 8;

/// A flagfile holds a few lines; one bigger than this is not a flagfile (and
/// `--flagfile=/dev/zero` must not read forever).
const MAX_FLAGFILE_BYTES: u64 = 1 << 20;

/// `-name[=value]` / `--name[=value]` → (name, value). Not a flag: `-`, `--`, plain words.
fn split_flag(arg: &OsStr) -> Option<(&OsStr, Option<&OsStr>)> {
    let bytes = arg.as_bytes();
    let body = bytes
        .strip_prefix(b"--")
        .or_else(|| bytes.strip_prefix(b"-"))?;
    if body.is_empty() || body[0] == b'-' {
        return None;
    }
    Some(match body.iter().position(|&b| b == b'=') {
        Some(eq) => (
            OsStr::from_bytes(&body[..eq]),
            Some(OsStr::from_bytes(&body[eq + 1..])),
        ),
        None => (OsStr::from_bytes(body), None),
    })
}

fn apply_args(
    parsed: &mut CommandLine,
    args: &[&OsStr],
    depth: usize,
    allow_positional: bool,
) -> Result<(), FlagError> {
    let mut i = 0;
    while i < args.len() {
        let arg = args[i];
        i += 1;
        if arg == "--" {
            if allow_positional {
                parsed
                    .positional
                    .extend(args[i..].iter().map(|a| a.to_os_string()));
            }
            break;
        }
        let Some((raw_name, value)) = split_flag(arg) else {
            if allow_positional {
                parsed.positional.push(arg.to_os_string());
            }
            continue;
        };
        let Some(raw_name) = raw_name.to_str() else {
            return Err(FlagError::Unknown(escape_non_utf8(raw_name.as_bytes())));
        };
        // osquery accepts `-h` for help as well.
        let name = if raw_name == "h" { "help" } else { raw_name };
        let def = match resolve(name) {
            Some((_, def)) => def,
            None => {
                // `--noNAME` turns a boolean off.
                let negated = name.strip_prefix("no").and_then(resolve);
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
            (Some(v), _) => v,
            // Booleans never consume the next argument, so `--json 'select 1'` works.
            (None, FlagType::Bool) => OsStr::new("true"),
            (None, _) => match args.get(i) {
                Some(next) => {
                    i += 1;
                    next
                }
                None => return Err(FlagError::MissingArgument(def.name.to_owned())),
            },
        };
        if def.name == "flagfile" {
            apply_flagfile(parsed, Path::new(value), depth + 1)?;
        }
        parsed.flags.set_os(def.name, value)?;
    }
    Ok(())
}

fn apply_flagfile(parsed: &mut CommandLine, path: &Path, depth: usize) -> Result<(), FlagError> {
    let failed = |reason: String| FlagError::Flagfile {
        path: escape_non_utf8(path.as_os_str().as_bytes()),
        reason,
    };
    if depth > MAX_FLAGFILE_DEPTH {
        return Err(failed("flagfiles nested too deeply".to_owned()));
    }
    let bytes = read_flagfile(path).map_err(failed)?;
    // One flag per line; a line is never split, so values may contain spaces. Lines are
    // bytes: a path in a flagfile need not be UTF-8 either.
    for line in bytes
        .split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .filter(|l| !l.is_empty() && !l.starts_with(b"#"))
    {
        let Some((name, value)) = split_flag(OsStr::from_bytes(line)) else {
            // gflags ignores non-flag lines in a flagfile.
            continue;
        };
        let mut one = b"--".to_vec();
        one.extend_from_slice(name.as_bytes());
        if let Some(value) = value {
            one.push(b'=');
            one.extend_from_slice(value.as_bytes());
        }
        let one = OsString::from_vec(one);
        apply_args(parsed, &[one.as_os_str()], depth, false)?;
    }
    Ok(())
}

/// A flagfile's bytes, refusing one larger than [`MAX_FLAGFILE_BYTES`].
fn read_flagfile(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_FLAGFILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_FLAGFILE_BYTES {
        return Err(format!(
            "larger than {} KiB, which no flagfile is",
            MAX_FLAGFILE_BYTES / 1024
        ));
    }
    Ok(bytes)
}

/// Which build a flag's status describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// This binary, with the cargo features it was built with (`--help`).
    This,
    /// A build with every optional cargo feature, as the packages are built: what the
    /// man pages, installed by those packages, describe.
    Full,
}

/// What a program does with a flag it accepts: `--help` and the man pages say it in a
/// note after the flag's description ([`Status::note`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The program acts on it.
    Acted,
    /// Using it is an error ([`implemented::REFUSED`]).
    Refused,
    /// Only a build with this cargo feature acts on it, and this one lacks it.
    MissingFeature(&'static str),
    /// Only osqueryd acts on it (asked of the shell).
    DaemonOnly,
    /// Accepted, but oxquery does not implement its feature.
    NoEffectYet,
}

impl Status {
    /// The bracketed note `--help` ends the flag's line with, without its brackets;
    /// `None` for a flag the program acts on.
    pub fn note(self) -> Option<String> {
        Some(match self {
            Status::Acted => return None,
            Status::Refused => "not supported yet".to_owned(),
            Status::MissingFeature(feature) => format!("not in this build: {feature} feature"),
            Status::DaemonOnly => "osqueryd only".to_owned(),
            Status::NoEffectYet => "no effect yet".to_owned(),
        })
    }
}

/// What `tool` does with the flag `def` in `build`: the one status `--help` and the man
/// pages show.
pub fn status(def: &FlagDef, tool: implemented::Tool, build: Build) -> Status {
    let name = def.name;
    let daemon = tool == implemented::Tool::Daemon;
    // A full build has every feature, so a flag that needs one is acted on wherever the
    // feature makes it so (the kafka logger's flags in the daemon only).
    let feature_acts = build == Build::Full
        && implemented::needed_feature(name).is_some()
        && (daemon || !implemented::is_daemon_only(name));
    if implemented::is_implemented_in(name, tool) || feature_acts {
        Status::Acted
    } else if implemented::is_refused(name) {
        Status::Refused
    } else if let Some(feature) = implemented::missing_feature(name)
        && daemon
    {
        Status::MissingFeature(feature)
    } else if !daemon && implemented::is_daemon_only(name) {
        Status::DaemonOnly
    } else {
        Status::NoEffectYet
    }
}

/// One group of flags in `--help` (and in the man pages' OPTIONS).
#[derive(Debug, Clone, Copy)]
pub struct HelpSection {
    /// The heading, as osquery prints it.
    pub title: &'static str,
    kinds: &'static [FlagKind],
}

impl HelpSection {
    /// The flags of this group that `--help` shows, in name order.
    pub fn flags(&self) -> impl Iterator<Item = &'static FlagDef> + use<> {
        let kinds = self.kinds;
        FLAGS
            .iter()
            .filter(move |f| f.in_help() && kinds.contains(&f.kind))
    }
}

/// The groups of `--help` for `tool`, in order. As osquery's, the daemon's help leaves
/// out the shell-only flags.
pub fn help_sections(tool: implemented::Tool) -> &'static [HelpSection] {
    const SECTIONS: &[HelpSection] = &[
        HelpSection {
            title: "osquery command line flags:",
            kinds: &[FlagKind::Cli, FlagKind::Builtin],
        },
        HelpSection {
            title: "osquery configuration options (set by config or CLI flags):",
            kinds: &[FlagKind::Config],
        },
        HelpSection {
            title: "osquery shell-only CLI flags:",
            kinds: &[FlagKind::Shell],
        },
    ];
    match tool {
        implemented::Tool::Shell => SECTIONS,
        implemented::Tool::Daemon => &SECTIONS[..2],
    }
}

impl FlagDef {
    /// How `--help` shows the flag's name: `-A` for the one-letter flags osquery has,
    /// `--name` for the rest.
    pub fn help_name(&self) -> String {
        let dash = if self.name.len() == 1 { "-" } else { "--" };
        format!("{dash}{}", self.name)
    }

    /// How `--help` shows the flag's argument after its name: nothing for a boolean,
    /// `=a|b|c` for a choice, ` VALUE` for text and paths (osquery's word), ` N` for a
    /// number.
    pub fn help_argument(&self) -> String {
        match self.ty {
            FlagType::Bool => String::new(),
            FlagType::String if !self.choices.is_empty() => {
                format!("={}", self.choices.join("|"))
            }
            FlagType::String | FlagType::Path => " VALUE".to_owned(),
            _ => " N".to_owned(),
        }
    }

    /// The default as `--help` shows it: text quoted, numbers and booleans bare.
    pub fn help_default(&self) -> String {
        match self.ty {
            FlagType::String | FlagType::Path => format!("\"{}\"", self.default),
            _ => self.default.to_owned(),
        }
    }
}

/// The program `binary` names: the daemon if its name says so, as osquery decides.
pub fn tool_of(binary: &str) -> implemented::Tool {
    if binary.contains("osqueryd") {
        implemented::Tool::Daemon
    } else {
        implemented::Tool::Shell
    }
}

/// The `--help` text: usage, then every visible flag with its type, default and meaning.
/// Flags oxquery does not act on yet say so.
pub fn usage(binary: &str, version: &str) -> String {
    let tool = tool_of(binary);
    // The shell runs an SQL statement given as an argument; the daemon takes none (and
    // osquery's line keeps the space before the missing word).
    let statement = match tool {
        implemented::Tool::Shell => "[SQL STATEMENT]",
        implemented::Tool::Daemon => "",
    };
    let mut text = format!(
        "osquery {version}, your OS as a high-performance relational database\n\
         Usage: {binary} [OPTION]... {statement}\n\n"
    );
    for section in help_sections(tool) {
        text.push_str(section.title);
        text.push('\n');
        for def in section.flags() {
            let note = status(def, tool, Build::This)
                .note()
                .map(|note| format!(" [{note}]"))
                .unwrap_or_default();
            text.push_str(&format!(
                "    {:<30}  {} (type: {}, default: {}){note}\n",
                format!("{}{}", def.help_name(), def.help_argument()),
                def.description,
                def.ty.name(),
                def.help_default(),
            ));
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests;
