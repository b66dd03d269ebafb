//! EFI variables as Linux's efivarfs shows them (`/sys/firmware/efi/efivars/<Name>-<GUID>`:
//! four bytes of attributes, then the data), for `secureboot` and
//! `secureboot_certificates`.

use oxquery_sys::safe_read::{self, Policy};
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
