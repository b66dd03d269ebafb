//! `jetbrains_plugins`: plugins users installed in JetBrains IDEs, from the
//! `META-INF/plugin.xml` inside each plugin's jar.
//!
//! As osquery on Linux: for each user, every `~/.local/share/JetBrains/<Product><version>`
//! directory of the products osquery knows (CLion, DataGrip, GoLand, IntelliJIdea,
//! IdeaIC, PhpStorm, PyCharm, PyCharmCE, ReSharper, Rider, RubyMine, RustRover,
//! WebStorm). In it, a plugin is either a jar directly in the directory (the row's path
//! is the jar) or a folder whose `lib/*.jar` hold it (the path is the folder; its jars
//! are tried in IntelliJ's own order of likelihood, the first with a `plugin.xml` wins).
//! `name`, `version` and `vendor` are the first such elements of `plugin.xml`. Jars are
//! opened with the user's permissions through the safe opener, so a FIFO, a device or a
//! jar over `--read_max` is refused, and `plugin.xml` is read only up to
//! [`MAX_PLUGIN_XML`] bytes (a zip bomb stops there).
//!
//! Differences, on purpose: osquery's `PyCharm%` pattern also matches `PyCharmCE*`
//! directories, reporting Community Edition plugins twice (once as `pycharm`); we report
//! them once, as `pycharm_community_edition`. Element text is trimmed and the five XML
//! entities are decoded (osquery keeps the raw text). `product_type` values are
//! osquery's, `rust_rov` for RustRover included.

use crate::common;
use oxquery_sys::safe_read::{Policy, SafeFile};
use oxquery_sys::users::Passwd;
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::io::Read;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

table! {
    name: "jetbrains_plugins",
    description: "Plugins installed in JetBrains IDEs (IntelliJ IDEA, PyCharm, GoLand, CLion, ...) by every user (or the uids a query names), one row per plugin jar or plugin folder under ~/.local/share/JetBrains/<Product><version>, with name, version and vendor from its META-INF/plugin.xml.",
    attributes: [USER_BASED],
    columns: {
        product_type: Text [] "The IDE: clion, datagrip, goland, intellij_idea, intellij_idea_community_edition, phpstorm, pycharm, pycharm_community_edition, resharper, rider, rubymine, rust_rov (RustRover) or webstorm",
        uid: BigInt [INDEX] "Owner of the home the plugin is installed in",
        name: Text [] "Plugin name (<name> of plugin.xml)",
        version: Text [COLLATE_VERSION] "Plugin version (<version>)",
        vendor: Text [] "Plugin vendor (<vendor>)",
        path: Text [] "The plugin's jar, or its folder when it has a lib directory",
    },
    examples: [
        "select product_type, name, version, vendor from jetbrains_plugins",
        "select name, version, path from jetbrains_plugins where uid = 1000",
    ],
}

/// Where the IDEs keep user plugins, under a home.
const PLUGINS_ROOT: &str = ".local/share/JetBrains";

/// Directory name prefixes and the product each stands for.
const PRODUCTS: [(&str, &str); 13] = [
    ("CLion", "clion"),
    ("DataGrip", "datagrip"),
    ("GoLand", "goland"),
    ("IntelliJIdea", "intellij_idea"),
    ("IdeaIC", "intellij_idea_community_edition"),
    ("PhpStorm", "phpstorm"),
    ("PyCharm", "pycharm"),
    ("PyCharmCE", "pycharm_community_edition"),
    ("ReSharper", "resharper"),
    ("Rider", "rider"),
    ("RubyMine", "rubymine"),
    ("RustRover", "rust_rov"),
    ("WebStorm", "webstorm"),
];

/// Most bytes of `plugin.xml` read from a jar (real ones are tens of kilobytes).
const MAX_PLUGIN_XML: u64 = 4 << 20;

/// The product a directory under [`PLUGINS_ROOT`] belongs to: the longest matching
/// prefix, so `PyCharmCE2024.1` is Community Edition only.
fn product_of(dir_name: &[u8]) -> Option<&'static str> {
    PRODUCTS
        .iter()
        .filter(|(prefix, _)| dir_name.starts_with(prefix.as_bytes()))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, product)| *product)
}

/// What a plugin.xml says about the plugin.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Plugin {
    name: String,
    version: String,
    vendor: String,
}

/// The text of the first `<tag ...>text</tag>` element of `xml` (trimmed, entities
/// decoded); "" when there is none or it is empty (`<tag/>`).
fn element_text(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}");
    let mut from = 0;
    while let Some(at) = xml[from..].find(&open) {
        let start = from + at + open.len();
        from = start;
        // `<name>` or `<name attr=...>`, not `<names>` or `<namespace>`.
        let Some(next) = xml[start..].chars().next() else {
            break;
        };
        if !(next == '>' || next == '/' || next.is_whitespace()) {
            continue;
        }
        let Some(gt) = xml[start..].find('>') else {
            break;
        };
        let body_start = start + gt + 1;
        if xml[..body_start - 1].ends_with('/') {
            return String::new();
        }
        let close = format!("</{tag}>");
        let Some(end) = xml[body_start..].find(&close) else {
            break;
        };
        return decode_entities(xml[body_start..body_start + end].trim());
    }
    String::new()
}

fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn parse_plugin_xml(xml: &str) -> Plugin {
    Plugin {
        name: element_text(xml, "name"),
        version: element_text(xml, "version"),
        vendor: element_text(xml, "vendor"),
    }
}

/// Why a jar gave no plugin.
#[derive(Debug)]
enum JarError {
    /// It could not be opened (refused by the safe opener, or gone).
    Open(std::io::Error),
    /// It is not a zip, or its `plugin.xml` is unreadable or too large.
    Archive(String),
    /// A zip without `META-INF/plugin.xml` (a library jar).
    NoPluginXml,
}

/// The plugin described by `jar`'s `META-INF/plugin.xml`.
fn read_jar(jar: &Path, policy: &Policy) -> Result<Plugin, JarError> {
    // The opener refuses what is not a regular file and a file over --read_max; the
    // zip reader then seeks within that file.
    let file = SafeFile::open(jar, policy).map_err(JarError::Open)?;
    let mut archive =
        zip::ZipArchive::new(file.into_file()).map_err(|e| JarError::Archive(e.to_string()))?;
    let entry = match archive.by_name("META-INF/plugin.xml") {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => return Err(JarError::NoPluginXml),
        Err(e) => return Err(JarError::Archive(e.to_string())),
    };
    let mut xml = Vec::new();
    entry
        .take(MAX_PLUGIN_XML + 1)
        .read_to_end(&mut xml)
        .map_err(|e| JarError::Archive(format!("plugin.xml: {e}")))?;
    if xml.len() as u64 > MAX_PLUGIN_XML {
        return Err(JarError::Archive(format!(
            "plugin.xml is larger than {MAX_PLUGIN_XML} bytes"
        )));
    }
    Ok(parse_plugin_xml(&String::from_utf8_lossy(&xml)))
}

/// [`read_jar`], with failures other than "no plugin.xml" logged.
fn plugin_in(ctx: &QueryContext, jar: &Path, policy: &Policy) -> Option<Plugin> {
    match read_jar(jar, policy) {
        Ok(plugin) => Some(plugin),
        Err(JarError::Open(e)) => {
            common::report_read_error(ctx, jar, &e);
            None
        }
        Err(JarError::Archive(e)) => {
            log::warn!(
                "Table jetbrains_plugins: cannot read {}: {e}",
                jar.display()
            );
            None
        }
        Err(JarError::NoPluginXml) => None,
    }
}

/// Whether a jar's name ends like a versioned library (`gson-2.8.0.jar`, `junit-m5.jar`):
/// a `-` followed by a digit, or by `m`/`M` and a digit.
fn versioned_library_name(name: &str) -> bool {
    let Some(dash) = name.rfind('-') else {
        return false;
    };
    let rest = &name.as_bytes()[dash + 1..];
    match rest {
        [d, ..] if d.is_ascii_digit() => true,
        [b'm' | b'M', d, ..] => d.is_ascii_digit(),
        _ => false,
    }
}

/// Orders a plugin folder's lib jars the way IntelliJ looks for its plugin.xml: jars
/// whose name starts with the folder's name first; `resources*`, versioned libraries,
/// `*-idea.jar` and `database-plugin.jar` last; then shorter names first.
fn likely_plugin_jars_first(folder_name: &str, jars: &mut [PathBuf]) {
    let folder = folder_name.to_ascii_lowercase();
    jars.sort_by_cached_key(|jar| {
        let name = jar
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let lower = name.to_ascii_lowercase();
        (
            name.starts_with("resources"),
            versioned_library_name(&name),
            !lower.starts_with(&folder),
            lower.ends_with("-idea.jar"),
            name == "database-plugin.jar",
            name.len(),
        )
    });
}

/// Entries of `dir` (links followed) that are files or folders, in name order.
fn entries(dir: &Path, folders: bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let _ = oxquery_sys::pattern::children(dir, |path, _| {
        if std::fs::metadata(path).is_ok_and(|m| m.is_dir() == folders) {
            out.push(path.to_owned());
        }
        ControlFlow::Continue(())
    });
    out.sort();
    out
}

fn add_row(rows: &mut Rows, product: &str, uid: u32, path: &Path, plugin: Plugin) {
    let mut row = rows.row();
    row.set(Col::product_type, product);
    row.set(Col::uid, i64::from(uid));
    row.set(Col::name, plugin.name);
    row.set(Col::version, plugin.version);
    row.set(Col::vendor, plugin.vendor);
    row.set(Col::path, path);
}

/// The plugins of one IDE directory.
fn scan_product_dir(ctx: &QueryContext, user: &Passwd, product: &str, dir: &Path, rows: &mut Rows) {
    let policy = common::home_file_policy(ctx, user);
    for jar in entries(dir, false) {
        if ctx.is_stopped() {
            return;
        }
        match plugin_in(ctx, &jar, &policy) {
            Some(plugin) => add_row(rows, product, user.uid, &jar, plugin),
            None => log::debug!("jetbrains_plugins: no plugin.xml in {}", jar.display()),
        }
    }
    for folder in entries(dir, true) {
        if ctx.is_stopped() {
            return;
        }
        let mut jars = entries(&folder.join("lib"), false);
        let folder_name = folder
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        likely_plugin_jars_first(&folder_name, &mut jars);
        match jars.iter().find_map(|jar| plugin_in(ctx, jar, &policy)) {
            Some(plugin) => add_row(rows, product, user.uid, &folder, plugin),
            None => log::debug!("jetbrains_plugins: no plugin.xml in {}", folder.display()),
        }
    }
}

fn generate_for(ctx: &QueryContext, users: &[Passwd], rows: &mut Rows) {
    for user in users {
        let root = user.home().join(PLUGINS_ROOT);
        for dir in entries(&root, true) {
            let name = dir
                .file_name()
                .map(|n| n.as_encoded_bytes())
                .unwrap_or_default();
            if let Some(product) = product_of(name) {
                scan_product_dir(ctx, user, product, &dir, rows);
            }
        }
    }
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    generate_for(ctx, &common::users_by_uid(ctx, Col::uid), rows);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testing;
    use oxquery_table::Value;
    use std::fs;

    #[test]
    fn elements_and_products() {
        let xml = r#"<idea-plugin><id>x</id><namespace>no</namespace>
            <name>Osquery &amp; Friends</name>
            <vendor url="https://osquery.io" email="a@b">
                Osquery
            </vendor><version>1.3.18</version><idea-version since-build="1"/></idea-plugin>"#;
        let p = parse_plugin_xml(xml);
        assert_eq!(p.name, "Osquery & Friends");
        assert_eq!(p.vendor, "Osquery");
        assert_eq!(p.version, "1.3.18");
        assert_eq!(element_text("<vendor/>x</vendor>", "vendor"), "");
        assert_eq!(element_text("<name>unterminated", "name"), "");
        assert_eq!(element_text("<name", "name"), "");
        assert_eq!(
            product_of(b"PyCharmCE2024.1"),
            Some("pycharm_community_edition")
        );
        assert_eq!(product_of(b"PyCharm2024.1"), Some("pycharm"));
        assert_eq!(product_of(b"RustRover2024.2"), Some("rust_rov"));
        assert_eq!(product_of(b"consentOptions"), None);
        let mut jars: Vec<PathBuf> = [
            "resources_en.jar",
            "gson-2.8.0.jar",
            "aws-toolkit-jetbrains-standalone.jar",
            "jetbrains-ultimate.jar",
            "core-idea.jar",
            "a.jar",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        likely_plugin_jars_first("aws-toolkit-jetbrains-standalone", &mut jars);
        let order: Vec<_> = jars.iter().map(|j| j.to_str().unwrap()).collect();
        assert_eq!(
            order,
            [
                "aws-toolkit-jetbrains-standalone.jar",
                "a.jar",
                "jetbrains-ultimate.jar",
                "core-idea.jar",
                "gson-2.8.0.jar",
                "resources_en.jar",
            ]
        );
    }

    fn plugin_xml(name: &str, version: &str, vendor: &str) -> String {
        format!(
            "<idea-plugin>\n  <id>com.example.{name}</id>\n  <name>{name}</name>\n  \
             <version>{version}</version>\n  <vendor url=\"https://example.com\">{vendor}</vendor>\n\
             </idea-plugin>\n"
        )
    }

    /// Writes jars with Python's zipfile (an independent zip writer, deflated entries):
    /// each `(path, entries)` becomes a jar at `path` holding those (name, text) entries.
    fn make_jars(jars: &[(PathBuf, Vec<(String, String)>)]) -> bool {
        let Some(python) = oxquery_test_support::require_tool("python3") else {
            return false;
        };
        let spec: Vec<serde_json::Value> = jars
            .iter()
            .map(|(p, e)| serde_json::json!([p.to_str().unwrap(), e]))
            .collect();
        let script = "import json, sys, zipfile, os\n\
            for path, entries in json.loads(sys.stdin.read()):\n\
            \x20   os.makedirs(os.path.dirname(path), exist_ok=True)\n\
            \x20   with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as z:\n\
            \x20       for name, text in entries:\n\
            \x20           z.writestr(name, text)\n";
        let mut child = std::process::Command::new(python)
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(
            child.stdin.as_mut().unwrap(),
            serde_json::to_string(&spec).unwrap().as_bytes(),
        )
        .unwrap();
        drop(child.stdin.take());
        assert!(child.wait().unwrap().success());
        true
    }

    fn rows_as_text(rows: &Rows) -> Vec<Vec<String>> {
        rows.iter()
            .map(|r| r.iter().map(|v| v.to_string()).collect())
            .collect()
    }

    /// A fixture home with a plain jar plugin, a folder plugin whose plugin.xml is in
    /// its second-likeliest jar, a Community Edition directory and a library jar without
    /// plugin.xml: the rows are exactly the plugins written.
    #[test]
    fn plugins_of_a_fixture_home() {
        let home = tempfile::tempdir().unwrap();
        let idea = home.path().join(PLUGINS_ROOT).join("IntelliJIdea2024.3");
        let ce = home.path().join(PLUGINS_ROOT).join("PyCharmCE2024.1");
        let manifest = |n: &str| ("META-INF/MANIFEST.MF".to_owned(), format!("Name: {n}\n"));
        let xml =
            |n: &str, v: &str, w: &str| ("META-INF/plugin.xml".to_owned(), plugin_xml(n, v, w));
        let jars = vec![
            (
                idea.join("markdown.jar"),
                vec![manifest("md"), xml("Markdown", "243.1", "JetBrains")],
            ),
            (idea.join("not-a-plugin.jar"), vec![manifest("lib")]),
            (
                idea.join("aws-toolkit/lib/aws-toolkit.jar"),
                vec![manifest("core")],
            ),
            (
                idea.join("aws-toolkit/lib/jetbrains-core.jar"),
                vec![xml("AWS Toolkit", "3.40", "Amazon Web Services")],
            ),
            (
                idea.join("aws-toolkit/lib/gson-2.8.0.jar"),
                vec![xml("Gson", "2.8.0", "Google")],
            ),
            (
                ce.join("rainbow/lib/rainbow.jar"),
                vec![xml("Rainbow", "2024.1", "izhangzhihao")],
            ),
        ];
        if !make_jars(&jars) {
            return;
        }
        fs::create_dir_all(idea.join("empty-plugin/lib")).unwrap();
        let (rows, logged) = testing::generate_for_home(&SPEC, home.path(), generate_for);
        let uid = testing::FIXTURE_UID.to_string();
        let p = |x: &Path| x.to_str().unwrap().to_owned();
        let expected = vec![
            vec![
                "intellij_idea".into(),
                uid.clone(),
                "Markdown".into(),
                "243.1".into(),
                "JetBrains".into(),
                p(&idea.join("markdown.jar")),
            ],
            vec![
                "intellij_idea".into(),
                uid.clone(),
                "AWS Toolkit".into(),
                "3.40".into(),
                "Amazon Web Services".into(),
                p(&idea.join("aws-toolkit")),
            ],
            vec![
                "pycharm_community_edition".into(),
                uid,
                "Rainbow".into(),
                "2024.1".into(),
                "izhangzhihao".into(),
                p(&ce.join("rainbow")),
            ],
        ];
        assert_eq!(rows_as_text(&rows), expected);
        testing::assert_no_warnings(&logged);
    }

    /// Hostile jars: a FIFO, a link to /dev/zero, a 10 GiB sparse file, a truncated
    /// jar, garbage, and a zip bomb (a plugin.xml of 64 MiB of spaces): no row from them,
    /// a warning, no hang; the good plugin beside them is still read.
    #[test]
    fn hostile_jars_do_not_block() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join(PLUGINS_ROOT).join("GoLand2024.2");
        let good = dir.join("good.jar");
        let bomb = dir.join("bomb.jar");
        let big = " ".repeat(64 << 20);
        let jars = vec![
            (
                good.clone(),
                vec![(
                    "META-INF/plugin.xml".to_owned(),
                    plugin_xml("Good", "1", "Me"),
                )],
            ),
            (
                bomb.clone(),
                vec![(
                    "META-INF/plugin.xml".to_owned(),
                    format!("<name>{big}</name>"),
                )],
            ),
        ];
        if !make_jars(&jars) {
            return;
        }
        let whole = fs::read(&good).unwrap();
        fs::write(dir.join("truncated.jar"), &whole[..whole.len() / 2]).unwrap();
        fs::write(dir.join("garbage.jar"), b"PK\x03\x04 not really a zip").unwrap();
        let fifo = dir.join("fifo.jar");
        testing::mkfifo(&fifo);
        let zero = dir.join("zero.jar");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let huge = dir.join("huge.jar");
        testing::huge_sparse_file(&huge);
        let (rows, logged) = testing::generate_for_home(&SPEC, home.path(), generate_for);
        assert_eq!(rows.column(Col::name), [&Value::from("Good")]);
        testing::assert_logged(&logged, log::Level::Warn, &fifo, "FIFO");
        testing::assert_logged(&logged, log::Level::Warn, &zero, "character device");
        testing::assert_logged(&logged, log::Level::Warn, &huge, "read limit");
        testing::assert_logged(&logged, log::Level::Warn, &bomb, "larger than");
        testing::assert_logged(
            &logged,
            log::Level::Warn,
            &dir.join("garbage.jar"),
            "cannot read",
        );
    }
}
