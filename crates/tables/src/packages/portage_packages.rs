//! `portage_packages`: the packages Gentoo's portage has installed, one row per
//! directory `/var/db/pkg/<category>/<package>-<version>/`, with its `SLOT`, `BUILD_TIME`,
//! `repository`, `EAPI` and `SIZE` files, and whether the package is in the world set
//! (`/var/lib/portage/world`), as osquery lists them. osquery lists nothing when the world
//! file cannot be read; here the packages are still listed, with `world` 0, since the
//! world set only says which were asked for explicitly. Only the files of the columns a
//! query reads are opened.

use super::portage::{self, InstalledPackage};
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::collections::HashSet;
use std::path::Path;

table! {
    name: "portage_packages",
    description: "Packages installed by Gentoo's portage, from its database /var/db/pkg/<category>/<package>-<version>/.",
    columns: {
        package: Text [] "Package name, <category>/<name>",
        version: Text [COLLATE_VERSION] "Installed version",
        slot: Text [] "Slot the package is installed in",
        build_time: BigInt [] "When the package was built, in seconds since the epoch",
        repository: Text [] "Repository the package came from",
        eapi: BigInt [] "EAPI of the package's ebuild",
        size: BigInt [] "Size of the installed files, in bytes",
        world: Integer [] "1 if the package is in the world set (installed explicitly, /var/lib/portage/world), else 0",
    },
    examples: [
        "select package, version, world from portage_packages",
    ],
}

const WORLD: &str = "var/lib/portage/world";

/// The packages of the world set under `root`.
fn world_set(ctx: &QueryContext, root: &Path) -> HashSet<String> {
    portage::config_lines(ctx, root, WORLD)
        .iter()
        .filter_map(|l| portage::config_fields(l))
        .map(|(atom, _)| portage::split_package_version(atom).0)
        .collect()
}

fn integer(text: Option<String>) -> Option<i64> {
    text?.parse().ok()
}

/// The rows of the portage database under `root` (`/`, a test's fixture).
fn packages_under(ctx: &QueryContext, root: &Path, rows: &mut Rows) -> TableResult {
    let packages = portage::installed_packages("portage_packages", root);
    if packages.is_empty() {
        return Ok(());
    }
    let world = if ctx.is_used(Col::world) {
        world_set(ctx, root)
    } else {
        HashSet::new()
    };
    for InstalledPackage { dir, atom } in packages {
        ctx.check()?;
        let (package, version) = portage::split_package_version(&atom);
        let mut row = rows.row();
        let file = |name| portage::package_file(ctx, &dir, name);
        row.set_with(Col::slot, || file("SLOT"));
        row.set_with(Col::build_time, || integer(file("BUILD_TIME")));
        row.set_with(Col::repository, || file("repository"));
        row.set_with(Col::eapi, || integer(file("EAPI")));
        row.set_with(Col::size, || integer(file("SIZE")));
        row.set(Col::world, i64::from(world.contains(&package)));
        row.set(Col::package, package);
        row.set(Col::version, version);
    }
    Ok(())
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    packages_under(ctx, Path::new("/"), rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packages::portage::testing::package;
    use crate::testing::text;
    use oxquery_table::{Host, Value};

    fn rows_under(ctx: &QueryContext, root: &Path) -> Vec<Vec<Value>> {
        let mut rows = Rows::for_context(ctx);
        packages_under(ctx, root, &mut rows).unwrap();
        rows.iter().map(<[Value]>::to_vec).collect()
    }

    #[test]
    fn fixture_database() {
        let root = tempfile::tempdir().unwrap();
        package(
            root.path(),
            "dev-lang/python-3.11.4-r1",
            &[
                ("SLOT", "3.11\n"),
                ("BUILD_TIME", "1690000000\n"),
                ("repository", "gentoo\n"),
                ("EAPI", "8\n"),
                ("SIZE", "123456\n"),
                ("USE", "ssl sqlite"),
            ],
        );
        package(
            root.path(),
            "app-misc/tool-1.0",
            &[("SLOT", "0"), ("SIZE", "garbage")],
        );
        let world = root.path().join(WORLD);
        std::fs::create_dir_all(world.parent().unwrap()).unwrap();
        std::fs::write(&world, "# explicit\ndev-lang/python\n\nsys-apps/other\n").unwrap();
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = rows_under(&ctx, root.path());
        assert_eq!(rows.len(), 2);
        let (tool, python) = (&rows[0], &rows[1]);
        assert_eq!(text(&tool[Col::package as usize]), "app-misc/tool");
        assert_eq!(text(&tool[Col::version as usize]), "1.0");
        assert_eq!(tool[Col::size as usize], Value::Null);
        assert_eq!(tool[Col::repository as usize], Value::Null);
        assert_eq!(tool[Col::world as usize], Value::Integer(0));
        assert_eq!(text(&python[Col::package as usize]), "dev-lang/python");
        assert_eq!(text(&python[Col::version as usize]), "3.11.4-r1");
        assert_eq!(text(&python[Col::slot as usize]), "3.11");
        assert_eq!(
            python[Col::build_time as usize],
            Value::Integer(1_690_000_000)
        );
        assert_eq!(text(&python[Col::repository as usize]), "gentoo");
        assert_eq!(python[Col::eapi as usize], Value::Integer(8));
        assert_eq!(python[Col::size as usize], Value::Integer(123_456));
        assert_eq!(python[Col::world as usize], Value::Integer(1));
        // Without the world file the packages are still listed.
        std::fs::remove_file(&world).unwrap();
        assert_eq!(rows_under(&ctx, root.path()).len(), 2);
        // A FIFO in place of a package file gives NULL, not a hang.
        let dir = root.path().join("var/db/pkg/app-misc/tool-1.0");
        crate::common::testing::mkfifo(&dir.join("repository"));
        let rows = rows_under(&ctx, root.path());
        assert_eq!(rows[0][Col::repository as usize], Value::Null);
    }

    #[test]
    fn no_rows_on_a_host_without_portage() {
        if Path::new("/var/db/pkg").exists() {
            return;
        }
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        assert!(crate::testing::rows_of(&ctx, generate).is_empty());
    }
}
