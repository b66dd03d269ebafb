//! `kernel_info`: the running kernel's release and boot command line.

use oxquery_sys::fs::FileReader;
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "kernel_info",
    description: "Release of the running kernel and the command line it booted with.",
    attributes: [CACHEABLE],
    columns: {
        version: Text [COLLATE_VERSION] "Release string from uname(2), as printed by uname -r",
        arguments: Text [] "Words of /proc/cmdline other than BOOT_IMAGE= and root=, space-separated",
        path: Text [] "Image the boot loader started (BOOT_IMAGE= value); NULL if absent",
        device: Text [] "Root file system device (root= value); NULL if absent",
    },
    examples: ["select * from kernel_info"],
}

const PROC_CMDLINE: &str = "/proc/cmdline";

/// The command line split as osquery does: `BOOT_IMAGE=` gives the path, `root=` the
/// device, every other word goes to the arguments (joined by single spaces).
#[derive(Debug, Default, PartialEq, Eq)]
struct Cmdline {
    arguments: String,
    path: Option<String>,
    device: Option<String>,
}

fn parse_cmdline(text: &[u8]) -> Cmdline {
    let text = String::from_utf8_lossy(text);
    let mut out = Cmdline::default();
    let mut rest = Vec::new();
    for word in text.split_ascii_whitespace() {
        if let Some(path) = word.strip_prefix("BOOT_IMAGE=") {
            out.path = Some(path.to_owned());
        } else if let Some(device) = word.strip_prefix("root=") {
            out.device = Some(device.to_owned());
        } else {
            rest.push(word);
        }
    }
    out.arguments = rest.join(" ");
    out
}

fn generate(_ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let mut reader = FileReader::new();
    let cmdline = match reader.read(PROC_CMDLINE) {
        Ok(text) => Some(parse_cmdline(text)),
        Err(e) => {
            log::warn!("kernel_info: cannot read {PROC_CMDLINE}: {e}");
            None
        }
    };
    let release = oxquery_sys::host::uname().map(|u| u.release);
    if release.is_none() {
        log::warn!("kernel_info: uname failed");
    }
    let mut row = rows.row();
    row.set(Col::version, release);
    if let Some(cmdline) = cmdline {
        row.set(Col::arguments, cmdline.arguments);
        row.set(Col::path, cmdline.path);
        row.set(Col::device, cmdline.device);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Value};

    #[test]
    fn splits_boot_image_and_root_out_of_the_arguments() {
        let got =
            parse_cmdline(b"BOOT_IMAGE=/boot/vmlinuz-6.1.0 root=UUID=abcd ro  quiet splash\n");
        assert_eq!(
            got,
            Cmdline {
                arguments: "ro quiet splash".into(),
                path: Some("/boot/vmlinuz-6.1.0".into()),
                device: Some("UUID=abcd".into()),
            }
        );
        assert_eq!(parse_cmdline(b""), Cmdline::default());
        assert_eq!(parse_cmdline(b"\xff quiet").arguments, "\u{fffd} quiet");
    }

    #[test]
    fn agrees_with_uname_and_proc_cmdline() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        assert_eq!(rows.len(), 1);
        let row = rows.get(0).unwrap();
        let uname = std::process::Command::new("uname")
            .arg("-r")
            .output()
            .unwrap();
        let release = String::from_utf8(uname.stdout).unwrap();
        assert_eq!(row[Col::version as usize], Value::from(release.trim()));

        let cmdline = std::fs::read_to_string(PROC_CMDLINE).unwrap();
        let words: Vec<&str> = cmdline.split_whitespace().collect();
        let find = |prefix: &str| {
            words
                .iter()
                .rev()
                .find_map(|w| w.strip_prefix(prefix))
                .map(Value::from)
                .unwrap_or(Value::Null)
        };
        assert_eq!(row[Col::path as usize], find("BOOT_IMAGE="));
        assert_eq!(row[Col::device as usize], find("root="));
        let others: Vec<&str> = words
            .iter()
            .copied()
            .filter(|w| !w.starts_with("BOOT_IMAGE=") && !w.starts_with("root="))
            .collect();
        assert_eq!(row[Col::arguments as usize], Value::from(others.join(" ")));
    }
}
