//! Table declarations: the single source for the SQLite schema, `.schema`,
//! `osquery_registry` and the schema documentation, and the [`Table`] trait every table
//! implements.
//!
//! Built-in tables declare a static spec with the `table!` macro; tables made at run time
//! (the config's automatic tables, later extension tables) build an owned one: names and
//! columns are `Cow`s so both cost nothing extra.

use crate::{QueryContext, Rows, TableResult};
use std::borrow::Cow;
use std::fmt::Write as _;

/// SQL type of a column, as osquery's spec language names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    Integer,
    BigInt,
    UnsignedBigInt,
    Double,
    Blob,
}

impl ColumnType {
    /// The type word in the declared schema (`PRAGMA table_xinfo` shows it).
    pub fn sql_name(self) -> &'static str {
        match self {
            ColumnType::Text => "TEXT",
            ColumnType::Integer => "INTEGER",
            ColumnType::BigInt => "BIGINT",
            ColumnType::UnsignedBigInt => "UNSIGNED BIGINT",
            ColumnType::Double => "DOUBLE",
            ColumnType::Blob => "BLOB",
        }
    }

    /// Whether SQLite gives the column integer affinity.
    pub fn is_integer(self) -> bool {
        matches!(
            self,
            ColumnType::Integer | ColumnType::BigInt | ColumnType::UnsignedBigInt
        )
    }
}

/// Column option bits. The low bits are osquery's own values (they travel over Thrift as
/// the column `op`); [`ColumnOptions::OTHER_PLATFORM`] is ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ColumnOptions(u32);

impl ColumnOptions {
    /// Constraints on the column reach the generator; part of the primary key.
    pub const INDEX: Self = Self(1);
    /// The table cannot enumerate without a constraint on one of its required columns.
    pub const REQUIRED: Self = Self(2);
    /// A constraint makes the generator produce extra or different rows.
    pub const ADDITIONAL: Self = Self(4);
    /// The generator can skip work when the column is constrained.
    pub const OPTIMIZED: Self = Self(8);
    /// Not part of `SELECT *`.
    pub const HIDDEN: Self = Self(16);
    pub const COLLATE_BINARY: Self = Self(32);
    pub const COLLATE_NOCASE: Self = Self(64);
    pub const COLLATE_RTRIM: Self = Self(128);
    pub const COLLATE_VERSION: Self = Self(256);
    pub const COLLATE_VERSION_ARCH: Self = Self(512);
    pub const COLLATE_VERSION_DPKG: Self = Self(1024);
    pub const COLLATE_VERSION_RHEL: Self = Self(2048);
    /// Declared by osquery for other platforms only: present (hidden) on Linux, always NULL.
    pub const OTHER_PLATFORM: Self = Self(1 << 16);

    pub const fn empty() -> Self {
        Self(0)
    }
    pub const fn with(self, other: Self) -> Self {
        // Columns of other platforms are always hidden on Linux, as in osquery.
        let bits = self.0 | other.0;
        if bits & Self::OTHER_PLATFORM.0 != 0 {
            Self(bits | Self::HIDDEN.0)
        } else {
            Self(bits)
        }
    }
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
    pub const fn bits(self) -> u32 {
        self.0
    }
    /// The bits osquery defines (what an extension sees).
    pub const fn osquery_bits(self) -> u32 {
        self.0 & 0xfff
    }
    /// Constraints on such a column are handed to the generator.
    pub const fn forwards_constraints(self) -> bool {
        self.0 & (Self::INDEX.0 | Self::REQUIRED.0 | Self::ADDITIONAL.0) != 0
    }
    /// The options that tell a user how to query the column, in words, as the schema
    /// reference and the shell's `.describe` show them (collations are left out).
    pub fn names(self) -> Vec<&'static str> {
        [
            (Self::INDEX, "index"),
            (Self::REQUIRED, "required"),
            (Self::ADDITIONAL, "additional"),
            (Self::OPTIMIZED, "optimized"),
            (Self::HIDDEN, "hidden"),
            (Self::OTHER_PLATFORM, "other platforms only (NULL)"),
        ]
        .into_iter()
        .filter(|(bit, _)| self.contains(*bit))
        .map(|(_, name)| name)
        .collect()
    }
    pub fn collation(self) -> Option<Collation> {
        Collation::ALL
            .iter()
            .copied()
            .find(|c| self.contains(c.option()))
    }
}

/// Collating sequences a column may declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collation {
    Binary,
    NoCase,
    RTrim,
    Version,
    VersionArch,
    VersionDpkg,
    VersionRhel,
}

impl Collation {
    const ALL: [Collation; 7] = [
        Collation::Binary,
        Collation::NoCase,
        Collation::RTrim,
        Collation::Version,
        Collation::VersionArch,
        Collation::VersionDpkg,
        Collation::VersionRhel,
    ];
    pub fn option(self) -> ColumnOptions {
        match self {
            Collation::Binary => ColumnOptions::COLLATE_BINARY,
            Collation::NoCase => ColumnOptions::COLLATE_NOCASE,
            Collation::RTrim => ColumnOptions::COLLATE_RTRIM,
            Collation::Version => ColumnOptions::COLLATE_VERSION,
            Collation::VersionArch => ColumnOptions::COLLATE_VERSION_ARCH,
            Collation::VersionDpkg => ColumnOptions::COLLATE_VERSION_DPKG,
            Collation::VersionRhel => ColumnOptions::COLLATE_VERSION_RHEL,
        }
    }
    pub fn sql_name(self) -> &'static str {
        match self {
            Collation::Binary => "BINARY",
            Collation::NoCase => "NOCASE",
            Collation::RTrim => "RTRIM",
            Collation::Version => "VERSION",
            Collation::VersionArch => "VERSION_ARCH",
            Collation::VersionDpkg => "VERSION_DPKG",
            Collation::VersionRhel => "VERSION_RHEL",
        }
    }
}

/// Table attribute bits, osquery's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Attributes(u32);

impl Attributes {
    pub const NONE: Self = Self(0);
    /// Describes osquery itself; registered as internal.
    pub const UTILITY: Self = Self(1);
    pub const CACHEABLE: Self = Self(2);
    pub const EVENT_BASED: Self = Self(4);
    /// Reads per-user data; queried by root without `uid` it warns.
    pub const USER_BASED: Self = Self(8);
    pub const KERNEL_REQUIRED: Self = Self(16);

    pub const fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
    pub const fn bits(self) -> u32 {
        self.0
    }
    /// The attributes set, in words, as the schema reference and the shell's
    /// `.describe` show them.
    pub fn names(self) -> Vec<&'static str> {
        [
            (Self::UTILITY, "utility"),
            (Self::CACHEABLE, "cacheable"),
            (Self::EVENT_BASED, "event-based"),
            (Self::USER_BASED, "user data"),
            (Self::KERNEL_REQUIRED, "kernel required"),
        ]
        .into_iter()
        .filter(|(bit, _)| self.contains(*bit))
        .map(|(_, name)| name)
        .collect()
    }
}

/// One declared column.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: Cow<'static, str>,
    pub ty: ColumnType,
    pub options: ColumnOptions,
    pub description: Cow<'static, str>,
}

impl Column {
    /// A column declared at run time.
    pub fn new(
        name: impl Into<Cow<'static, str>>,
        ty: ColumnType,
        options: ColumnOptions,
        description: impl Into<Cow<'static, str>>,
    ) -> Self {
        Column {
            name: name.into(),
            ty,
            options,
            description: description.into(),
        }
    }
}

/// A second name for a column: a hidden column that reads the target's value.
#[derive(Debug, Clone)]
pub struct ColumnAlias {
    pub alias: Cow<'static, str>,
    pub target: Cow<'static, str>,
}

impl ColumnAlias {
    /// An alias declared at run time (an extension's `columnAlias` route).
    pub fn new(alias: impl Into<Cow<'static, str>>, target: impl Into<Cow<'static, str>>) -> Self {
        ColumnAlias {
            alias: alias.into(),
            target: target.into(),
        }
    }
}

/// Everything osquery's spec file says about a table.
#[derive(Debug, Clone)]
pub struct TableSpec {
    pub name: Cow<'static, str>,
    pub description: Cow<'static, str>,
    pub columns: Cow<'static, [Column]>,
    pub attributes: Attributes,
    /// Hidden columns after the real ones, each reading its target (which must be
    /// declared).
    pub column_aliases: Cow<'static, [ColumnAlias]>,
    /// Other names for the whole table, created as views.
    pub aliases: Cow<'static, [Cow<'static, str>]>,
    /// Queries that document the table; each must prepare.
    pub examples: &'static [&'static str],
    /// Declared without `WITHOUT ROWID` even when keyed, as osquery declares extensions'
    /// tables (osquery keeps their rowid for writes).
    pub keeps_rowid: bool,
    /// `INSERT`, `UPDATE` and `DELETE` reach [`Table::change`] (osquery allows them on
    /// extensions' tables only). Such a table is addressed by rowid: it keeps its rowid,
    /// and its rows may carry one ([`RowMut::set_rowid`](crate::RowMut::set_rowid)).
    pub writable: bool,
}

impl TableSpec {
    /// A spec built at run time: no column aliases, table aliases or examples (add them
    /// with [`TableSpec::with_column_aliases`] and [`TableSpec::with_aliases`]).
    pub fn new(
        name: impl Into<Cow<'static, str>>,
        description: impl Into<Cow<'static, str>>,
        columns: Vec<Column>,
        attributes: Attributes,
    ) -> Self {
        TableSpec {
            name: name.into(),
            description: description.into(),
            columns: Cow::Owned(columns),
            attributes,
            column_aliases: Cow::Borrowed(&[]),
            aliases: Cow::Borrowed(&[]),
            examples: &[],
            keeps_rowid: false,
            writable: false,
        }
    }
}

/// A table the engine can query: its declaration and how it makes rows.
///
/// Built-ins are `&'static TableDef`s declared with `table!`; a table with state (a
/// definition from the config, a client, a store handle) implements this trait on its
/// own type and is registered as an `Arc<dyn Table>`. A generator that runs long checks
/// [`QueryContext::check`] so that a closed cursor, a cancelled query or a deadline
/// stops it.
pub trait Table: Send + Sync {
    fn spec(&self) -> &TableSpec;
    fn generate(&self, ctx: &QueryContext<'_>, rows: &mut Rows<'_>) -> TableResult;

    /// Makes one row change of an `INSERT`, `UPDATE` or `DELETE`; called only when the
    /// spec is [`TableSpec::writable`]. An insert answers the rowid the new row got.
    fn change(&self, change: RowChange) -> Result<Option<i64>, ChangeError> {
        let _ = change;
        Err(ChangeError::ReadOnly)
    }
}

/// One row change SQLite asks a writable table to make. `values` hold every real
/// column's value, in declaration order (a value written through a column alias is in
/// its target's place).
#[derive(Debug, Clone, PartialEq)]
pub enum RowChange {
    /// `rowid` when the statement gave one.
    Insert {
        rowid: Option<i64>,
        values: Vec<crate::Value>,
    },
    /// The row `rowid` gets `values`; `new_rowid` when the statement changes the rowid.
    Update {
        rowid: i64,
        new_rowid: Option<i64>,
        values: Vec<crate::Value>,
    },
    Delete {
        rowid: i64,
    },
}

/// Why a row change was not made. The engine reports each as the SQLite error osquery
/// reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    /// The table takes no writes (`SQLITE_READONLY`).
    #[error("the table may not be modified")]
    ReadOnly,
    /// A value's type does not fit its column, or a key column got NULL
    /// (`SQLITE_MISMATCH`).
    #[error("datatype mismatch")]
    Mismatch,
    /// The change would break a constraint of the table (`SQLITE_CONSTRAINT`).
    #[error("constraint failed")]
    Constraint,
    /// Anything else (`SQLITE_ERROR`), with the table's message if it gave one.
    #[error("{}", .0.as_deref().unwrap_or("the change failed"))]
    Failed(Option<String>),
}

/// Produces a table's rows for one scan.
pub type Generator = fn(&QueryContext, &mut Rows) -> TableResult;

/// A built-in table: its static declaration and its generator function.
#[derive(Debug)]
pub struct TableDef {
    pub spec: &'static TableSpec,
    pub generate: Generator,
}

impl Table for TableDef {
    fn spec(&self) -> &TableSpec {
        self.spec
    }
    fn generate(&self, ctx: &QueryContext<'_>, rows: &mut Rows<'_>) -> TableResult {
        (self.generate)(ctx, rows)
    }
}

impl Table for &'static TableDef {
    fn spec(&self) -> &TableSpec {
        self.spec
    }
    fn generate(&self, ctx: &QueryContext<'_>, rows: &mut Rows<'_>) -> TableResult {
        (self.generate)(ctx, rows)
    }
}

impl TableSpec {
    /// The spec with `aliases` as other names of the table (views over it).
    pub fn with_aliases(mut self, aliases: Vec<String>) -> Self {
        self.aliases = Cow::Owned(aliases.into_iter().map(Cow::Owned).collect());
        self
    }

    /// The spec with `aliases` as hidden columns reading their targets.
    pub fn with_column_aliases(mut self, aliases: Vec<ColumnAlias>) -> Self {
        self.column_aliases = Cow::Owned(aliases);
        self
    }

    /// Cells per row in a scan's buffer: one per real column, and for a writable table
    /// one more, last, holding the row's rowid (NULL: its position in the scan).
    pub fn row_width(&self) -> usize {
        self.columns.len() + usize::from(self.writable)
    }

    /// Index of a column by name, aliases included (aliases follow the real columns).
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
            .or_else(|| {
                self.column_aliases
                    .iter()
                    .position(|a| a.alias.eq_ignore_ascii_case(name))
                    .map(|i| self.columns.len() + i)
            })
    }

    /// For a schema position (real column or alias), the real column it reads.
    pub fn resolve(&self, position: usize) -> Option<usize> {
        if position < self.columns.len() {
            return Some(position);
        }
        let alias = self.column_aliases.get(position - self.columns.len())?;
        self.columns.iter().position(|c| c.name == alias.target)
    }

    pub fn has_required(&self) -> bool {
        self.columns
            .iter()
            .any(|c| c.options.contains(ColumnOptions::REQUIRED))
    }

    /// The column list osquery declares to SQLite, without the `CREATE TABLE name` prefix:
    /// `` (`a` TEXT, `b` INTEGER HIDDEN, PRIMARY KEY (`a`)) WITHOUT ROWID ``.
    pub fn column_definitions(&self) -> String {
        let mut sql = String::from("(");
        let mut first = true;
        let mut push = |sql: &mut String, name: &str, ty: ColumnType, options: ColumnOptions| {
            if !first {
                sql.push_str(", ");
            }
            first = false;
            let _ = write!(sql, "`{name}` {}", ty.sql_name());
            if options.contains(ColumnOptions::HIDDEN) {
                sql.push_str(" HIDDEN");
            }
            if let Some(collation) = options.collation() {
                let _ = write!(sql, " COLLATE {}", collation.sql_name());
            }
        };
        for c in self.columns.iter() {
            push(&mut sql, &c.name, c.ty, c.options);
        }
        for a in self.column_aliases.iter() {
            let target = self
                .columns
                .iter()
                .find(|c| c.name == a.target)
                .expect("column alias names a declared column");
            push(&mut sql, &a.alias, target.ty, ColumnOptions::HIDDEN);
        }
        let keyed = |c: &&Column| c.options.contains(ColumnOptions::INDEX);
        let additional = |c: &&Column| c.options.contains(ColumnOptions::ADDITIONAL);
        let has_index = self.columns.iter().any(|c| keyed(&c));
        let has_additional = self.columns.iter().any(|c| additional(&c));
        if has_index || has_additional {
            // With no INDEX column but some ADDITIONAL one, osquery keys on every column.
            let key: Vec<&str> = if has_index {
                self.columns
                    .iter()
                    .filter(|c| keyed(c) || additional(c))
                    .map(|c| &*c.name)
                    .collect()
            } else {
                self.columns.iter().map(|c| &*c.name).collect()
            };
            sql.push_str(", PRIMARY KEY (");
            for (i, name) in key.iter().enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                let _ = write!(sql, "`{name}`");
            }
            sql.push_str(if self.keeps_rowid || self.writable {
                "))"
            } else {
                ")) WITHOUT ROWID"
            });
        } else {
            sql.push(')');
        }
        sql
    }

    /// `CREATE TABLE name(...)`, the statement `.schema` prints (without the `;`).
    pub fn create_statement(&self) -> String {
        format!("CREATE TABLE {}{}", self.name, self.column_definitions())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_rows(_: &QueryContext, _: &mut Rows) -> TableResult {
        Ok(())
    }

    mod keyed {
        use super::no_rows as generate;
        crate::table! {
            name: "keyed",
            description: "INDEX and ADDITIONAL columns.",
            columns: {
                a: Text [INDEX] "a",
                b: Integer [ADDITIONAL | HIDDEN] "b",
                c: BigInt [REQUIRED] "c",
                d: Text [COLLATE_NOCASE] "d",
            },
        }
    }

    mod additional_only {
        use super::no_rows as generate;
        crate::table! {
            name: "additional_only",
            description: "An ADDITIONAL column and no INDEX.",
            columns: {
                a: Text [] "a",
                b: Integer [ADDITIONAL] "b",
                c: Double [OPTIMIZED] "c",
            },
        }
    }

    mod plain {
        use super::no_rows as generate;
        crate::table! {
            name: "plain",
            description: "Neither INDEX nor ADDITIONAL.",
            columns: {
                a: Text [REQUIRED | OPTIMIZED] "a",
                r#type: UnsignedBigInt [] "b",
            },
        }
    }

    mod aliased {
        use super::no_rows as generate;
        crate::table! {
            name: "aliased",
            description: "Column aliases and a column of another platform.",
            columns: {
                pid: BigInt [INDEX] "pid",
                datetime: Text [COLLATE_NOCASE] "datetime",
                upid: BigInt [OTHER_PLATFORM] "upid",
            },
            column_aliases: { date_time => datetime, process_id => pid },
            aliases: ["aliased_view"],
            examples: ["select * from aliased"],
        }
    }

    #[test]
    fn index_columns_and_additional_ones_form_the_key() {
        assert_eq!(
            keyed::SPEC.create_statement(),
            "CREATE TABLE keyed(`a` TEXT, `b` INTEGER HIDDEN, `c` BIGINT, \
             `d` TEXT COLLATE NOCASE, PRIMARY KEY (`a`, `b`)) WITHOUT ROWID"
        );
        assert!(keyed::SPEC.has_required());
    }

    #[test]
    fn additional_without_index_keys_every_column() {
        assert_eq!(
            additional_only::SPEC.column_definitions(),
            "(`a` TEXT, `b` INTEGER, `c` DOUBLE, PRIMARY KEY (`a`, `b`, `c`)) WITHOUT ROWID"
        );
        assert!(!additional_only::SPEC.has_required());
    }

    #[test]
    fn no_key_column_gives_a_plain_rowid_table() {
        // REQUIRED and OPTIMIZED do not make a key; `r#type` is the column `type`.
        assert_eq!(
            plain::SPEC.column_definitions(),
            "(`a` TEXT, `type` UNSIGNED BIGINT)"
        );
        assert_eq!(plain::Col::r#type as usize, 1);
        assert_eq!(plain::SPEC.column_index("TYPE"), Some(1));
    }

    #[test]
    fn other_platform_implies_hidden() {
        let upid = &aliased::SPEC.columns[aliased::Col::upid as usize];
        assert!(upid.options.contains(ColumnOptions::HIDDEN));
        assert!(upid.options.contains(ColumnOptions::OTHER_PLATFORM));
        // Whichever order the bits are added in.
        let later = ColumnOptions::INDEX.with(ColumnOptions::OTHER_PLATFORM);
        let first = ColumnOptions::empty()
            .with(ColumnOptions::OTHER_PLATFORM)
            .with(ColumnOptions::INDEX);
        for options in [later, first] {
            assert!(options.contains(ColumnOptions::HIDDEN));
            // An extension sees osquery's bits only: HIDDEN, not ours.
            assert_eq!(
                options.osquery_bits(),
                ColumnOptions::INDEX.bits() | ColumnOptions::HIDDEN.bits()
            );
        }
        assert!(
            !ColumnOptions::INDEX
                .with(ColumnOptions::OPTIMIZED)
                .contains(ColumnOptions::HIDDEN)
        );
    }

    #[test]
    fn column_aliases_are_hidden_columns_reading_their_target() {
        let spec = &aliased::SPEC;
        assert_eq!(
            spec.create_statement(),
            "CREATE TABLE aliased(`pid` BIGINT, `datetime` TEXT COLLATE NOCASE, \
             `upid` BIGINT HIDDEN, `date_time` TEXT HIDDEN, `process_id` BIGINT HIDDEN, \
             PRIMARY KEY (`pid`)) WITHOUT ROWID"
        );
        // Aliases follow the real columns, in declaration order, found case-insensitively.
        assert_eq!(spec.column_index("date_time"), Some(3));
        assert_eq!(spec.column_index("Process_ID"), Some(4));
        assert_eq!(spec.column_index("nope"), None);
        assert_eq!(spec.resolve(3), Some(aliased::Col::datetime as usize));
        assert_eq!(spec.resolve(4), Some(aliased::Col::pid as usize));
        assert_eq!(spec.resolve(1), Some(1));
        assert_eq!(spec.resolve(5), None);
        assert_eq!(*spec.aliases, ["aliased_view"]);
        assert_eq!(spec.examples, ["select * from aliased"]);
        assert_eq!(aliased::TABLE.spec().name, "aliased");
    }

    #[test]
    fn constraints_reach_the_generator_only_for_key_and_required_columns() {
        let forwards = |col: keyed::Col| {
            keyed::SPEC.columns[col as usize]
                .options
                .forwards_constraints()
        };
        assert!(forwards(keyed::Col::a));
        assert!(forwards(keyed::Col::b));
        assert!(forwards(keyed::Col::c));
        assert!(!forwards(keyed::Col::d));
        assert_eq!(
            keyed::SPEC.columns[keyed::Col::d as usize]
                .options
                .collation(),
            Some(Collation::NoCase)
        );
        assert!(ColumnType::UnsignedBigInt.is_integer());
        assert!(!ColumnType::Double.is_integer());
    }

    #[test]
    fn a_declaration_is_a_table_object() {
        let host = crate::Host::default();
        for table in [
            &keyed::TABLE,
            &additional_only::TABLE,
            &plain::TABLE,
            &aliased::TABLE,
        ] {
            let object: &dyn Table = table;
            assert!(std::ptr::eq(object.spec(), table.spec));
            let ctx = QueryContext::everything(object.spec(), &host);
            assert!(Rows::collect_table(&ctx, object).unwrap().is_empty());
        }
    }

    #[test]
    fn a_spec_built_at_run_time_declares_like_a_static_one() {
        let spec = TableSpec::new(
            "run_time".to_owned(),
            "Built at run time.",
            vec![
                Column::new("a", ColumnType::Text, ColumnOptions::INDEX, "a"),
                Column::new(
                    "b".to_owned(),
                    ColumnType::Blob,
                    ColumnOptions::empty(),
                    "b",
                ),
            ],
            Attributes::NONE,
        );
        assert_eq!(
            spec.create_statement(),
            "CREATE TABLE run_time(`a` TEXT, `b` BLOB, PRIMARY KEY (`a`)) WITHOUT ROWID"
        );
        // An extension's table keeps its key but also its rowid, as osquery declares it.
        let mut extension = spec;
        extension.keeps_rowid = true;
        assert_eq!(
            extension.create_statement(),
            "CREATE TABLE run_time(`a` TEXT, `b` BLOB, PRIMARY KEY (`a`))"
        );
    }
}
