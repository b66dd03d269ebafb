//! `intel_me_info`: the Intel Management Engine firmware version, asked of the ME
//! through the kernel's `mei` driver (`/dev/mei0`), as osquery does.
//!
//! The exchange: connect to the ME's update client (`IOCTL_MEI_CONNECT_CLIENT` with its
//! GUID; the reply must say protocol version 1), send the 4-byte "get firmware version"
//! request, read the reply: seven 32-bit words, then the version's major, minor, hotfix
//! and build as little-endian 16-bit numbers. The read waits at most two seconds for the
//! firmware. Without the device (no ME, the `mei_me` module not loaded, a VM) or when
//! the ME does not answer as expected: no rows and a verbose log saying why.

use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

table! {
    name: "intel_me_info",
    description: "Intel Management Engine firmware version, asked of the ME through /dev/mei0 (the mei_me driver); no rows without an ME.",
    columns: {
        version: Text [COLLATE_VERSION] "ME firmware version: major.minor.hotfix.build",
    },
    examples: ["select version from intel_me_info"],
}

const MEI_DEVICE: &str = "/dev/mei0";

/// `_IOWR('H', 0x01, struct mei_connect_client_data)` (16 bytes).
const IOCTL_MEI_CONNECT_CLIENT: libc::c_ulong = 0xC010_4801;

/// The ME's firmware update client (`{309dcde8-ccb1-4062-8f78-600115a34327}`), in the
/// byte order of the connect request.
const MEI_UPDATE_CLIENT: [u8; 16] = [
    0xe8, 0xcd, 0x9d, 0x30, 0xb1, 0xcc, 0x62, 0x40, 0x8f, 0x78, 0x60, 0x01, 0x15, 0xa3, 0x43, 0x27,
];

/// How long the firmware may take to answer.
const REPLY_WAIT_MS: libc::c_int = 2000;

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    generate_at(ctx, Path::new(MEI_DEVICE), rows)
}

fn generate_at(_ctx: &QueryContext, device: &Path, rows: &mut Rows) -> TableResult {
    match ask_version(device) {
        Ok(version) => rows.row().set(Col::version, version),
        Err(why) => log::info!("Table intel_me_info: {}: {why}", device.display()),
    }
    Ok(())
}

/// The firmware version the ME behind `device` reports.
fn ask_version(device: &Path) -> Result<String, String> {
    let mut dev = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(device)
        .map_err(|e| {
            format!("cannot open the MEI device ({e}): no Intel ME or mei_me not loaded")
        })?;
    let mut connect = MEI_UPDATE_CLIENT;
    // SAFETY: the request reads and writes exactly the 16 bytes of `connect`.
    let ret = unsafe {
        libc::ioctl(
            dev.as_raw_fd(),
            IOCTL_MEI_CONNECT_CLIENT,
            connect.as_mut_ptr(),
        )
    };
    if ret == -1 {
        return Err(format!(
            "the ME update client does not connect ({})",
            std::io::Error::last_os_error()
        ));
    }
    check_connect_reply(&connect)?;
    dev.write_all(&[0u8; 4])
        .map_err(|e| format!("cannot send the version request: {e}"))?;
    let mut pollfd = libc::pollfd {
        fd: dev.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let ready = unsafe { libc::poll(&mut pollfd, 1, REPLY_WAIT_MS) };
    if ready != 1 {
        return Err("the ME did not answer the version request".to_owned());
    }
    let mut reply = [0u8; 512];
    let n = dev
        .read(&mut reply)
        .map_err(|e| format!("cannot read the version reply: {e}"))?;
    parse_version_reply(&reply[..n])
}

/// The connect reply: the client's largest message (32 bits), then its protocol version,
/// which must be 1.
fn check_connect_reply(reply: &[u8]) -> Result<(), String> {
    match reply.get(4) {
        Some(1) => Ok(()),
        Some(v) => Err(format!("unsupported ME update protocol version {v}")),
        None => Err("short connect reply".to_owned()),
    }
}

/// The version in a "get firmware version" reply: after seven 32-bit words, four
/// little-endian 16-bit numbers.
fn parse_version_reply(reply: &[u8]) -> Result<String, String> {
    let field = |i: usize| -> Option<u16> {
        let at = 28 + 2 * i;
        Some(u16::from_le_bytes([*reply.get(at)?, *reply.get(at + 1)?]))
    };
    match (field(0), field(1), field(2), field(3)) {
        (Some(major), Some(minor), Some(hotfix), Some(build)) => {
            Ok(format!("{major}.{minor}.{hotfix}.{build}"))
        }
        _ => Err(format!(
            "version reply of {} bytes is too short",
            reply.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Value};

    fn rows_at(device: &Path) -> (Vec<Vec<Value>>, Vec<(log::Level, String)>) {
        crate::common::testing::capture_log(|| {
            let host = Host::default();
            let ctx = QueryContext::everything(&SPEC, &host);
            let rows = {
                let mut rows = Rows::for_context(&ctx);
                generate_at(&ctx, device, &mut rows).unwrap();
                rows
            };
            rows.iter().map(<[Value]>::to_vec).collect()
        })
    }

    #[test]
    fn version_reply_fixture() {
        let mut reply = vec![0xaau8; 28];
        for n in [11u16, 8, 92, 4222] {
            reply.extend_from_slice(&n.to_le_bytes());
        }
        reply.extend_from_slice(&[0; 20]);
        assert_eq!(parse_version_reply(&reply).unwrap(), "11.8.92.4222");
        for cut in 0..36 {
            assert!(parse_version_reply(&reply[..cut]).is_err());
        }
        assert_eq!(parse_version_reply(&reply[..36]).unwrap(), "11.8.92.4222");
    }

    #[test]
    fn connect_reply_needs_protocol_one() {
        assert!(check_connect_reply(&[0, 2, 0, 0, 1, 0, 0, 0]).is_ok());
        assert!(check_connect_reply(&[0, 2, 0, 0, 2]).is_err());
        assert!(check_connect_reply(&[0, 2]).is_err());
    }

    /// No device, or a file that is not the MEI driver's: no rows, a log, no hang.
    #[test]
    fn absent_or_wrong_device_gives_no_rows() {
        let (rows, logged) = rows_at(Path::new("/nonexistent/mei0"));
        assert!(rows.is_empty());
        assert!(
            logged
                .iter()
                .any(|(l, m)| *l == log::Level::Info && m.contains("no Intel ME"))
        );
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("mei0");
        std::fs::write(&fake, [0u8; 64]).unwrap();
        let (rows, logged) = crate::common::testing::within_10s(move || rows_at(&fake));
        assert!(rows.is_empty());
        assert!(
            logged.iter().any(|(_, m)| m.contains("does not connect")),
            "{logged:?}"
        );
    }

    /// The host: a version when it has an ME, else nothing.
    #[test]
    fn host_has_a_row_only_with_a_device() {
        let (rows, _) = crate::common::testing::within_10s(|| rows_at(Path::new(MEI_DEVICE)));
        if !Path::new(MEI_DEVICE).exists() {
            assert!(rows.is_empty());
        }
        assert!(rows.len() <= 1);
    }
}
