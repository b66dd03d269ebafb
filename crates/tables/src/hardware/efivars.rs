//! EFI variables as Linux's efivarfs shows them (`/sys/firmware/efi/efivars/<Name>-<GUID>`:
//! four bytes of attributes, then the data), for `secureboot` and
//! `secureboot_certificates`.

use oxquery_sys::safe_read::{self, Policy};
use oxquery_table::QueryContext;
use std::io;
use std::path::{Path, PathBuf};

/// Present only when the kernel was booted through EFI.
pub const EFI_DIR: &str = "/sys/firmware/efi";

/// The variables' directory under [`EFI_DIR`].
pub const EFIVARS: &str = "efivars";

/// `EFI_GLOBAL_VARIABLE`: SecureBoot, SetupMode, PK, KEK.
pub const GLOBAL_GUID: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";

/// `EFI_IMAGE_SECURITY_DATABASE_GUID`: db, dbx.
pub const IMAGE_SECURITY_GUID: &str = "d719b2cb-3d3a-4596-a3bc-dad00e67656f";

/// The variables of a system booted through EFI, read under the query's policy for
/// files users control.
pub struct EfiVars {
    dir: PathBuf,
    policy: Policy,
}

impl EfiVars {
    /// The variables under `efi` (normally [`EFI_DIR`]), or `None` with a log naming
    /// `table` when the system was not booted through EFI (no `efi`).
    pub fn open(table: &str, efi: &Path, ctx: &QueryContext) -> Option<EfiVars> {
        if !efi.is_dir() {
            log::info!(
                "Table {table}: no {}: the system was not booted through EFI",
                efi.display()
            );
            return None;
        }
        Some(EfiVars {
            dir: efi.join(EFIVARS),
            policy: crate::common::user_file_policy(ctx),
        })
    }

    /// The file of variable `name` in vendor `guid`'s namespace.
    pub fn path(&self, name: &str, guid: &str) -> PathBuf {
        var_path(&self.dir, name, guid)
    }

    /// The data of the variable in `path` ([`read_var`] under the query's policy).
    pub fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        read_var(path, &self.policy)
    }
}

/// The file of variable `name` in vendor `guid`'s namespace.
pub fn var_path(efivars: &Path, name: &str, guid: &str) -> PathBuf {
    efivars.join(format!("{name}-{guid}"))
}

/// A variable's data (without the attributes), at most `policy.limit` bytes of file.
/// The kernel limits unprivileged readers to 100 variable reads a second; a table reads
/// at most four.
pub fn read_var(path: &Path, policy: &Policy) -> io::Result<Vec<u8>> {
    let mut bytes = safe_read::read_bounded(path, policy)?;
    if bytes.len() < 4 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{} bytes, shorter than the attributes", bytes.len()),
        ));
    }
    bytes.drain(..4);
    Ok(bytes)
}

#[cfg(test)]
pub mod testing {
    //! Fixture EFI directories for the EFI tables' tests.

    use oxquery_table::{Host, QueryContext, Rows, TableResult, TableSpec, Value};
    use std::path::{Path, PathBuf};

    /// A table's generator over an EFI directory.
    pub type GenerateUnder = fn(&QueryContext, &Path, &mut Rows) -> TableResult;

    /// Every row `generate_under` gives for `efi`, every column used, and what it logged.
    pub fn rows_under(
        spec: &TableSpec,
        generate_under: GenerateUnder,
        efi: &Path,
    ) -> (Vec<Vec<Value>>, Vec<(log::Level, String)>) {
        crate::common::testing::capture_log(|| {
            let host = Host::default();
            let ctx = QueryContext::everything(spec, &host);
            let mut rows = Rows::for_context(&ctx);
            generate_under(&ctx, efi, &mut rows).unwrap();
            rows.iter().map(<[Value]>::to_vec).collect()
        })
    }

    /// Asserts that `generate_under` gives no rows, and logs why at info level, where the
    /// system was not booted through EFI.
    pub fn assert_no_efi_gives_no_rows(spec: &TableSpec, generate_under: GenerateUnder) {
        let (rows, logged) = rows_under(spec, generate_under, Path::new("/nonexistent/efi"));
        assert!(rows.is_empty());
        assert!(
            logged
                .iter()
                .any(|(l, m)| *l == log::Level::Info && m.contains("not booted through EFI"))
        );
    }

    /// Writes variable `name` of vendor `guid` under `efi` as efivarfs shows it: `bytes`
    /// are the file's whole content, attributes included.
    pub fn write_var_file(efi: &Path, name: &str, guid: &str, bytes: &[u8]) -> PathBuf {
        let dir = efi.join(super::EFIVARS);
        std::fs::create_dir_all(&dir).unwrap();
        let path = super::var_path(&dir, name, guid);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}
