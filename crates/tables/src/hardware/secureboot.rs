//! `secureboot`: whether UEFI Secure Boot is on and whether the firmware is in setup
//! mode, from the `SecureBoot` and `SetupMode` EFI variables.
//!
//! As osquery: one row; each column is the variable's one data byte (0 or 1, -1 for any
//! other value) and NULL when the variable is missing or unreadable. Unlike osquery,
//! which always gives its row, a machine not booted through EFI (no
//! `/sys/firmware/efi`: BIOS boot, most VMs and containers) gives no rows and a verbose
//! log, as every table here does when the firmware is absent.

use super::efivars::{self, EfiVars, GLOBAL_GUID};
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::path::Path;

table! {
    name: "secureboot",
    description: "UEFI Secure Boot state from the SecureBoot and SetupMode EFI variables; no rows on a machine not booted through EFI.",
    columns: {
        secure_boot: Integer [] "1 if Secure Boot is enabled, 0 if not, -1 for an unexpected value; NULL if the variable is missing",
        secure_mode: Integer [OTHER_PLATFORM] "macOS only: Secure Boot policy level",
        description: Text [OTHER_PLATFORM] "macOS only: description of the secure_mode value",
        kernel_extensions: Integer [OTHER_PLATFORM] "macOS only: whether third-party kernel extensions are allowed",
        mdm_operations: Integer [OTHER_PLATFORM] "macOS only: whether MDM may manage software updates",
        setup_mode: Integer [] "1 if the firmware is in setup mode (no platform key enrolled), 0 if not, -1 for an unexpected value; NULL if the variable is missing",
    },
    examples: ["select secure_boot, setup_mode from secureboot"],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    generate_under(ctx, Path::new(efivars::EFI_DIR), rows)
}

fn generate_under(ctx: &QueryContext, efi: &Path, rows: &mut Rows) -> TableResult {
    let Some(vars) = EfiVars::open(SPEC.name.as_ref(), efi, ctx) else {
        return Ok(());
    };
    let mut row = rows.row();
    row.set(Col::secure_boot, bool_var(&vars, "SecureBoot"));
    row.set(Col::setup_mode, bool_var(&vars, "SetupMode"));
    Ok(())
}

/// A one-byte boolean variable: 0, 1, -1 for another value, `None` when missing,
/// unreadable or empty.
fn bool_var(vars: &EfiVars, name: &str) -> Option<i64> {
    let path = vars.path(name, GLOBAL_GUID);
    let data = match vars.read(&path) {
        Ok(data) => data,
        Err(e) => {
            log::info!("Table secureboot: cannot read {}: {e}", path.display());
            return None;
        }
    };
    match data.first() {
        Some(0) => Some(0),
        Some(1) => Some(1),
        Some(v) => {
            log::info!(
                "Table secureboot: unexpected value {v} in {}",
                path.display()
            );
            Some(-1)
        }
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::Value;

    fn rows_under(efi: &Path) -> (Vec<Vec<Value>>, Vec<(log::Level, String)>) {
        efivars::testing::rows_under(&SPEC, generate_under, efi)
    }

    fn write_var(efi: &Path, name: &str, bytes: &[u8]) {
        efivars::testing::write_var_file(efi, name, GLOBAL_GUID, bytes);
    }

    #[test]
    fn variables_give_the_row() {
        let efi = tempfile::tempdir().unwrap();
        // Attributes NV+BS+RT (0x06 little-endian), then the value.
        write_var(efi.path(), "SecureBoot", &[6, 0, 0, 0, 1]);
        write_var(efi.path(), "SetupMode", &[6, 0, 0, 0, 0]);
        let (rows, _) = rows_under(efi.path());
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][Col::secure_boot as usize], Value::Integer(1));
        assert_eq!(rows[0][Col::setup_mode as usize], Value::Integer(0));
        assert_eq!(rows[0][Col::secure_mode as usize], Value::Null);

        write_var(efi.path(), "SecureBoot", &[6, 0, 0, 0, 7]);
        write_var(efi.path(), "SetupMode", &[6, 0]);
        let (rows, logged) = rows_under(efi.path());
        assert_eq!(rows[0][Col::secure_boot as usize], Value::Integer(-1));
        assert_eq!(rows[0][Col::setup_mode as usize], Value::Null);
        assert!(logged.iter().any(|(_, m)| m.contains("SetupMode")));
    }

    #[test]
    fn missing_variables_are_null_and_no_efi_is_no_rows() {
        let efi = tempfile::tempdir().unwrap();
        std::fs::create_dir(efi.path().join("efivars")).unwrap();
        let (rows, _) = rows_under(efi.path());
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][Col::secure_boot as usize], Value::Null);

        efivars::testing::assert_no_efi_gives_no_rows(&SPEC, generate_under);
    }

    /// The host: a row exactly when it booted through EFI, agreeing with the variable's
    /// byte read directly.
    #[test]
    fn host_matches_efivarfs() {
        let (rows, _) = rows_under(Path::new(efivars::EFI_DIR));
        let efi = Path::new(efivars::EFI_DIR);
        assert_eq!(rows.len(), usize::from(efi.is_dir()));
        if let Some(row) = rows.first() {
            let path = efivars::var_path(&efi.join("efivars"), "SecureBoot", GLOBAL_GUID);
            let want = std::fs::read(path).ok().and_then(|b| b.get(4).copied());
            let got = &row[Col::secure_boot as usize];
            match want {
                Some(b @ (0 | 1)) => assert_eq!(*got, Value::Integer(i64::from(b))),
                Some(_) => assert_eq!(*got, Value::Integer(-1)),
                None => assert_eq!(*got, Value::Null),
            }
        }
    }
}
