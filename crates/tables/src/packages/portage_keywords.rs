//! `portage_keywords`: the keyword, mask and unmask settings of Gentoo's portage, one row
//! per package atom named in `/etc/portage/package.accept_keywords` (and its older name
//! `package.keywords`), `package.mask` or `package.unmask`; each may be a file or a
//! directory of files. As osquery, an atom named in several files is one row (its
//! keywords, and `mask`/`unmask` 1 where it is listed); osquery keeps only the first
//! keyword of a line, here all of them are kept, space-separated.

use super::portage;
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::collections::HashMap;
use std::path::Path;

table! {
    name: "portage_keywords",
    description: "Package keywords, masks and unmasks set in Gentoo's /etc/portage (package.accept_keywords, package.keywords, package.mask, package.unmask).",
    columns: {
        package: Text [] "Package name, <category>/<name>",
        version: Text [COLLATE_VERSION] "Version the setting applies to, with its operator (>=1.2), empty for every version",
        keyword: Text [] "Keywords accepted for the package (~amd64 ...), space-separated; empty when none is set",
        mask: Integer [] "1 if the package is masked in package.mask, else 0",
        unmask: Integer [] "1 if the package is unmasked in package.unmask, else 0",
    },
    examples: [
        "select package, keyword from portage_keywords where keyword like '%~amd64%'",
    ],
}

/// One atom's settings.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Setting {
    atom: String,
    keywords: Vec<String>,
    mask: bool,
    unmask: bool,
}

/// The settings under `root`, in the order their atoms first appear.
fn settings_under(ctx: &QueryContext, root: &Path) -> Vec<Setting> {
    let mut settings: Vec<Setting> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut entry = |atom: &str| -> usize {
        *index.entry(atom.to_owned()).or_insert_with(|| {
            settings.push(Setting {
                atom: atom.to_owned(),
                ..Setting::default()
            });
            settings.len() - 1
        })
    };
    let mut updates: Vec<(usize, &'static str, Vec<String>)> = Vec::new();
    for (file, what) in [
        ("etc/portage/package.keywords", "keywords"),
        ("etc/portage/package.accept_keywords", "keywords"),
        ("etc/portage/package.mask", "mask"),
        ("etc/portage/package.unmask", "unmask"),
    ] {
        for line in portage::config_lines(ctx, root, file) {
            let Some((atom, rest)) = portage::config_fields(&line) else {
                continue;
            };
            let i = entry(atom);
            updates.push((i, what, rest.into_iter().map(str::to_owned).collect()));
        }
    }
    for (i, what, rest) in updates {
        let s = &mut settings[i];
        match what {
            "keywords" => s.keywords.extend(rest),
            "mask" => s.mask = true,
            _ => s.unmask = true,
        }
    }
    settings
}

fn keywords_under(ctx: &QueryContext, root: &Path, rows: &mut Rows) {
    let settings = settings_under(ctx, root);
    if settings.is_empty() {
        log::info!(
            "portage_keywords: no settings under {}/etc/portage",
            root.display()
        );
    }
    for s in settings {
        let (package, version) = portage::split_package_version(&s.atom);
        let mut row = rows.row();
        row.set(Col::package, package);
        row.set(Col::version, version);
        row.set(Col::keyword, s.keywords.join(" "));
        row.set(Col::mask, i64::from(s.mask));
        row.set(Col::unmask, i64::from(s.unmask));
    }
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    keywords_under(ctx, Path::new("/"), rows);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::text;
    use oxquery_table::{Host, Value};
    use std::fs;

    #[test]
    fn files_and_directories_of_a_fixture() {
        let root = tempfile::tempdir().unwrap();
        let etc = root.path().join("etc/portage");
        fs::create_dir_all(etc.join("package.accept_keywords")).unwrap();
        fs::write(
            etc.join("package.keywords"),
            "# old style\n=dev-lang/rust-1.75.0 ~amd64\n",
        )
        .unwrap();
        fs::write(
            etc.join("package.accept_keywords/b-tools"),
            "app-misc/tool ~amd64 ~x86 # comment\n\n>=sys-apps/foo-2.0\n",
        )
        .unwrap();
        fs::write(
            etc.join("package.accept_keywords/a-first"),
            "dev-libs/bar-1.0-r2 **\n",
        )
        .unwrap();
        fs::write(
            etc.join("package.accept_keywords/.hidden"),
            "x/hidden ~amd64\n",
        )
        .unwrap();
        fs::write(
            etc.join("package.accept_keywords/backup~"),
            "x/backup ~amd64\n",
        )
        .unwrap();
        fs::write(
            etc.join("package.mask"),
            ">=sys-apps/foo-2.0\nwww-client/bad\n",
        )
        .unwrap();
        fs::write(
            etc.join("package.unmask"),
            "app-misc/tool\n\u{0}\u{1}garbage\n",
        )
        .unwrap();
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let mut rows = Rows::for_context(&ctx);
        keywords_under(&ctx, root.path(), &mut rows);
        let got: Vec<(String, String, String, i64, i64)> = rows
            .iter()
            .map(|r: &[Value]| {
                (
                    text(&r[0]),
                    text(&r[1]),
                    text(&r[2]),
                    r[3].as_i64().unwrap(),
                    r[4].as_i64().unwrap(),
                )
            })
            .collect();
        let w = |p: &str, v: &str, k: &str, m: i64, u: i64| {
            (p.to_owned(), v.to_owned(), k.to_owned(), m, u)
        };
        assert_eq!(
            got,
            [
                w("dev-lang/rust", "1.75.0", "~amd64", 0, 0),
                w("dev-libs/bar", "1.0-r2", "**", 0, 0),
                w("app-misc/tool", "", "~amd64 ~x86", 0, 1),
                w("sys-apps/foo", ">=2.0", "", 1, 0),
                w("www-client/bad", "", "", 1, 0),
                w("\u{0}\u{1}garbage", "", "", 0, 1),
            ]
        );
    }

    #[test]
    fn no_rows_on_a_host_without_portage() {
        if Path::new("/etc/portage").exists() {
            return;
        }
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        assert!(crate::testing::rows_of(&ctx, generate).is_empty());
    }
}
