/// A column's SQL name from its Rust identifier: `r#type` is the column `type`.
pub const fn column_name(ident: &'static str) -> &'static str {
    let bytes = ident.as_bytes();
    if bytes.len() > 2 && bytes[0] == b'r' && bytes[1] == b'#' {
        let (_, rest) = bytes.split_at(2);
        match core::str::from_utf8(rest) {
            Ok(name) => name,
            Err(_) => ident,
        }
    } else {
        ident
    }
}

/// Declares a table: a `Col` enum naming its columns and a `pub static TABLE: TableDef`
/// whose generator is the function `generate` in the same module.
///
/// ```text
/// table! {
///     name: "processes",
///     description: "Every process on the host, from /proc.",
///     attributes: [CACHEABLE],                    // optional
///     columns: {
///         pid: BigInt [INDEX | OPTIMIZED] "Process identifier",
///         upid: BigInt [OTHER_PLATFORM] "A macOS-only column, always NULL here",
///         datetime: Text [] "Date and time in ISO 8601 form",
///         r#type: Text [] "A column named `type` (a Rust keyword)",
///     },
///     column_aliases: { date_time => datetime },  // optional
///     aliases: ["hosts"],                         // optional: views over the table
///     examples: ["select * from processes"],     // optional
/// }
/// ```
#[macro_export]
macro_rules! table {
    (
        name: $name:literal,
        description: $description:literal,
        $(attributes: [$($attr:ident)|*],)?
        columns: {
            $($col:ident : $ty:ident [$($opt:ident)|*] $doc:literal),+ $(,)?
        },
        $(column_aliases: { $($alias:ident => $target:ident),* $(,)? },)?
        $(aliases: [$($table_alias:literal),* $(,)?],)?
        $(examples: [$($example:literal),* $(,)?],)?
    ) => {
        /// The table's columns, in declaration order.
        #[allow(non_camel_case_types, dead_code, clippy::upper_case_acronyms)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(usize)]
        pub enum Col {
            $($col),+
        }

        impl From<Col> for usize {
            #[inline]
            // A binding named like no column can be (a column `c` would clash with `c`).
            fn from(__column: Col) -> usize {
                __column as usize
            }
        }

        pub static SPEC: $crate::TableSpec = $crate::TableSpec {
            name: ::std::borrow::Cow::Borrowed($name),
            description: ::std::borrow::Cow::Borrowed($description),
            columns: ::std::borrow::Cow::Borrowed(&[$(
                $crate::Column {
                    name: ::std::borrow::Cow::Borrowed($crate::column_name(stringify!($col))),
                    ty: $crate::ColumnType::$ty,
                    options: $crate::ColumnOptions::empty()
                        $(.with($crate::ColumnOptions::$opt))*,
                    description: ::std::borrow::Cow::Borrowed($doc),
                }
            ),+]),
            attributes: $crate::Attributes::NONE $($(.with($crate::Attributes::$attr))*)?,
            column_aliases: ::std::borrow::Cow::Borrowed(&[$($(
                $crate::ColumnAlias {
                    alias: ::std::borrow::Cow::Borrowed(stringify!($alias)),
                    target: ::std::borrow::Cow::Borrowed(stringify!($target)),
                }
            ),*)?]),
            aliases: ::std::borrow::Cow::Borrowed(&[$($(::std::borrow::Cow::Borrowed($table_alias)),*)?]),
            examples: &[$($($example),*)?],
            keeps_rowid: false,
            writable: false,
        };

        pub static TABLE: $crate::TableDef = $crate::TableDef {
            spec: &SPEC,
            generate,
        };
    };
}
