//! Extended attributes of a path: listxattr(2) and getxattr(2), following symbolic links.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::ErrorKind::InvalidInput.into())
}

/// Calls a size-then-fill pair of system calls until the value fits (it may grow between
/// the two calls, which the kernel reports as ERANGE).
fn fill(mut call: impl FnMut(*mut libc::c_void, usize) -> isize) -> io::Result<Vec<u8>> {
    for _ in 0..8 {
        let size = call(std::ptr::null_mut(), 0);
        if size < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; size as usize];
        if size == 0 {
            return Ok(buf);
        }
        let got = call(buf.as_mut_ptr().cast(), buf.len());
        if got >= 0 {
            buf.truncate(got as usize);
            return Ok(buf);
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ERANGE) {
            return Err(err);
        }
    }
    Err(io::Error::from_raw_os_error(libc::ERANGE))
}

/// The names of every extended attribute of `path` that this process may see.
pub fn list(path: &Path) -> io::Result<Vec<Vec<u8>>> {
    let cpath = c_path(path)?;
    let raw = fill(|buf, len| {
        // SAFETY: cpath is NUL-terminated; buf is null with len 0 or points to len bytes.
        unsafe { libc::listxattr(cpath.as_ptr(), buf.cast(), len) }
    })?;
    Ok(raw
        .split(|&b| b == 0)
        .filter(|name| !name.is_empty())
        .map(<[u8]>::to_vec)
        .collect())
}

/// The value of the extended attribute `name` of `path`.
pub fn get(path: &Path, name: &[u8]) -> io::Result<Vec<u8>> {
    let cpath = c_path(path)?;
    let cname = CString::new(OsStr::from_bytes(name).as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    fill(|buf, len| {
        // SAFETY: both strings are NUL-terminated; buf is null with len 0 or points to
        // len writable bytes.
        unsafe { libc::getxattr(cpath.as_ptr(), cname.as_ptr(), buf, len) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
        let cpath = c_path(path)?;
        let cname = CString::new(name).unwrap();
        // SAFETY: valid C strings and a value buffer of value.len() bytes.
        let rc = unsafe {
            libc::setxattr(
                cpath.as_ptr(),
                cname.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    #[test]
    fn lists_and_reads_user_attributes() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("f");
        std::fs::write(&f, b"").unwrap();
        if let Err(e) = set(&f, "user.one", b"1") {
            // A file system without user xattrs (some tmpfs builds) cannot run this test.
            assert_eq!(e.raw_os_error(), Some(libc::ENOTSUP), "{e}");
            return;
        }
        set(&f, "user.bin", &[0, 255, 10]).unwrap();
        set(&f, "user.empty", b"").unwrap();
        let mut names = list(&f).unwrap();
        names.retain(|n| n.starts_with(b"user."));
        names.sort();
        assert_eq!(
            names,
            vec![
                b"user.bin".to_vec(),
                b"user.empty".to_vec(),
                b"user.one".to_vec()
            ]
        );
        assert_eq!(get(&f, b"user.bin").unwrap(), vec![0, 255, 10]);
        assert_eq!(get(&f, b"user.empty").unwrap(), Vec::<u8>::new());
        assert!(get(&f, b"user.none").is_err());
        assert!(list(&tmp.path().join("missing")).is_err());
    }
}
