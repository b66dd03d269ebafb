//! The RPM package database, read without librpm: each installed package is one RPM
//! header ([`header`]), kept by one of rpm's storage backends in the database directory
//! (`%_dbpath`, `/var/lib/rpm` or `/usr/lib/sysimage/rpm`):
//!
//! * `rpmdb.sqlite`: rpm ≥ 4.16's SQLite database, table `Packages(hnum, blob)`, with
//!   a `Name(key, hnum)` index that a lookup by name uses;
//! * `Packages.db`: rpm's own NDB format, openSUSE's default ([`ndb`]);
//! * `Packages`: the Berkeley DB hash file of older rpm ([`bdb`]).

pub mod bdb;
pub mod header;
pub mod ndb;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

pub use header::{Header, HeaderError, tag};

/// Where rpm keeps its database, in the order they are tried (on current Fedora and
/// openSUSE the first is a link to the second).
pub const DEFAULT_DIRS: [&str; 2] = ["/var/lib/rpm", "/usr/lib/sysimage/rpm"];

/// rpm's limit on a package's file count in osquery's `rpm_package_files`: a package
/// with more files is skipped (osquery's `MAX_RPM_FILES`).
pub const MAX_FILES: usize = 64 * 1024;

/// A file backend's reader: calls `visit` with each record of the file at the path.
#[cfg(test)]
type ForEachRecord<E> = fn(&Path, &mut dyn FnMut(&[u8]) -> ControlFlow<()>) -> Result<(), E>;

/// Every record `for_each_record` reads from `path`, in file order (the file backends'
/// tests compare them with what their fixtures wrote).
#[cfg(test)]
fn all_records<E>(for_each_record: ForEachRecord<E>, path: &Path) -> Result<Vec<Vec<u8>>, E> {
    let mut out = Vec::new();
    for_each_record(path, &mut |v| {
        out.push(v.to_vec());
        ControlFlow::Continue(())
    })?;
    Ok(out)
}

/// The largest record either file backend holds: rpm's limit on a header's data plus its
/// index. A longer length in a file is damage, refused before anything is allocated.
const MAX_HEADER_BYTES: usize = 0x1100_0000;

/// How the database stores its headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Ndb,
    BerkeleyDb,
}

/// A package database found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Database {
    pub backend: Backend,
    /// The file holding the headers.
    pub path: PathBuf,
}

/// Why the database could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RpmDbError {
    #[error(transparent)]
    Sqlite(#[from] crate::sqlite_file::SqliteFileError),
    #[error(transparent)]
    Ndb(#[from] ndb::NdbError),
    #[error(transparent)]
    BerkeleyDb(#[from] bdb::BdbError),
}

impl Database {
    /// The database in `dir`, newest backend first (rpm's own choice when several
    /// files are left after a conversion); `None` when `dir` holds none.
    pub fn in_dir(dir: &Path) -> Option<Database> {
        [
            ("rpmdb.sqlite", Backend::Sqlite),
            ("Packages", Backend::BerkeleyDb),
        ]
        .into_iter()
        .map(|(file, backend)| Database {
            backend,
            path: dir.join(file),
        })
        .find(|db| db.path.is_file())
    }

    /// The database of the first of [`DEFAULT_DIRS`] that has one.
    pub fn find() -> Option<Database> {
        DEFAULT_DIRS
            .iter()
            .find_map(|d| Database::in_dir(Path::new(d)))
    }

    /// Calls `visit` with the installed packages' headers that `lookup` selects.
    /// Records that are not valid headers are skipped and counted in the log. `visit`
    /// may stop the walk with `Break`.
    pub fn for_each_header(
        &self,
        lookup: Lookup<'_>,
        mut visit: impl FnMut(&Header<'_>) -> ControlFlow<()>,
    ) -> Result<(), RpmDbError> {
        let mut bad = 0usize;
        let mut each = |blob: &[u8]| match Header::parse(blob) {
            Ok(h) => {
                let wanted = match lookup {
                    Lookup::Names(names) => h
                        .string(tag::NAME)
                        .is_some_and(|n| names.iter().any(|w| w.as_bytes() == n)),
                    Lookup::All | Lookup::Basenames(_) => true,
                };
                if wanted {
                    visit(&h)
                } else {
                    ControlFlow::Continue(())
                }
            }
            Err(e) => {
                bad += 1;
                log::debug!("{}: skipped a record: {e}", self.path.display());
                ControlFlow::Continue(())
            }
        };
        let result = match self.backend {
            Backend::Sqlite => sqlite_headers(&self.path, lookup, &mut each),
            Backend::Ndb => ndb::for_each_record(&self.path, &mut each).map_err(Into::into),
            Backend::BerkeleyDb => bdb::for_each_record(&self.path, &mut each).map_err(Into::into),
        };
        if bad > 0 {
            log::info!(
                "{}: skipped {bad} records that are not RPM headers",
                self.path.display()
            );
        }
        result
    }
}

/// Opens a database file without blocking: a FIFO or device put in its place (inside
/// a container whose database `pid_with_namespace` reads) is refused, not waited on.
/// Readers bound what they read themselves.
fn open(path: &Path) -> std::io::Result<std::fs::File> {
    use crate::safe_read::{Policy, SafeFile};
    Ok(SafeFile::open(path, &Policy::user_file(u64::MAX))?.into_file())
}

/// Which headers [`Database::for_each_header`] hands over.
#[derive(Debug, Clone, Copy)]
pub enum Lookup<'a> {
    /// Every package.
    All,
    /// The packages with these names, found through rpm's name index where the
    /// backend has one; the name is checked either way.
    Names(&'a [String]),
    /// At least the packages with a file of one of these base names (rpm's base-name
    /// index where the backend has one, else every package): a superset the caller
    /// filters.
    Basenames(&'a [String]),
}

fn sqlite_headers(
    path: &Path,
    lookup: Lookup<'_>,
    each: &mut dyn FnMut(&[u8]) -> ControlFlow<()>,
) -> Result<(), RpmDbError> {
    use crate::sqlite_file::for_each_blob;
    const ALL: &str = "SELECT blob FROM Packages ORDER BY hnum";
    // rpm's index tables: (key TEXT, hnum, idx).
    let (index, keys) = match lookup {
        Lookup::All => {
            for_each_blob(path, ALL, &[], each)?;
            return Ok(());
        }
        Lookup::Names(names) => ("Name", names),
        Lookup::Basenames(names) => ("Basenames", names),
    };
    if keys.is_empty() {
        return Ok(());
    }
    let placeholders: Vec<String> = (1..=keys.len()).map(|i| format!("?{i}")).collect();
    let by_key = format!(
        "SELECT blob FROM Packages WHERE hnum IN \
         (SELECT hnum FROM {index} WHERE key IN ({})) ORDER BY hnum",
        placeholders.join(", ")
    );
    let params: Vec<&str> = keys.iter().map(String::as_str).collect();
    let mut delivered = false;
    let looked_up = for_each_blob(path, &by_key, &params, |b| {
        delivered = true;
        each(b)
    });
    match looked_up {
        Err(e) if !delivered => {
            // No usable index (a damaged or partial database): every header; the
            // caller's check picks the packages.
            log::debug!(
                "{}: {index} lookup failed ({e}); reading every package",
                path.display()
            );
            for_each_blob(path, ALL, &[], each)?;
            Ok(())
        }
        other => other.map_err(Into::into),
    }
}

/// One file of a package, as its header lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageFile<'a> {
    /// The directory (with its trailing `/`) and base name, as stored.
    pub dir: &'a [u8],
    pub base: &'a [u8],
    pub user: Option<&'a [u8]>,
    pub group: Option<&'a [u8]>,
    pub mode: Option<u16>,
    pub size: Option<u64>,
    /// The digest as rpm prints it (lowercase hex; all zeros for a file without one, such
    /// as a directory or a link), with rpm's algorithm number (`PGPHASHALGO_*`: 1 MD5,
    /// 2 SHA-1, 8 SHA-256).
    pub digest: Option<(String, u64)>,
}

impl PackageFile<'_> {
    /// The full path.
    pub fn path(&self) -> Vec<u8> {
        [self.dir, self.base].concat()
    }
}

/// Why a header's file list cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilesError {
    #[error("file tag {tag} has {found} values for {files} files")]
    CountMismatch {
        tag: u32,
        found: usize,
        files: usize,
    },
    #[error("file {file} names directory {index} of {dirs}")]
    BadDirIndex {
        file: usize,
        index: u64,
        dirs: usize,
    },
}

/// Digest lengths of rpm's hash algorithms, in bytes.
fn digest_len(algo: u64) -> Option<usize> {
    match algo {
        1 => Some(16),
        2 => Some(20),
        8 => Some(32),
        9 => Some(48),
        10 => Some(64),
        11 => Some(28),
        _ => None,
    }
}

/// The files of a package header (none when it has no file list). Per-file attributes
/// must have one value per file or the list is refused.
pub fn package_files<'a>(h: &Header<'a>) -> Result<Vec<PackageFile<'a>>, FilesError> {
    // Current packages store directories and base names apart; very old ones full paths.
    let (dirs, bases, indexes) = match h.strings(tag::BASENAMES) {
        Some(bases) => (
            h.strings(tag::DIRNAMES).unwrap_or_default(),
            bases,
            h.integers(tag::DIRINDEXES),
        ),
        None => (
            Vec::new(),
            h.strings(tag::OLDFILENAMES).unwrap_or_default(),
            None,
        ),
    };
    let files = bases.len();
    let check = |tag: u32, found: usize| {
        if found == files {
            Ok(())
        } else {
            Err(FilesError::CountMismatch { tag, found, files })
        }
    };
    if let Some(ix) = &indexes {
        check(tag::DIRINDEXES, ix.len())?;
    } else if !dirs.is_empty() {
        check(tag::DIRINDEXES, 0)?;
    }
    let strings = |tag: u32| -> Result<Option<Vec<&'a [u8]>>, FilesError> {
        h.strings(tag)
            .map(|v| check(tag, v.len()).map(|()| v))
            .transpose()
    };
    let integers = |tag: u32| -> Result<Option<Vec<u64>>, FilesError> {
        h.integers(tag)
            .map(|v| check(tag, v.len()).map(|()| v))
            .transpose()
    };
    let users = strings(tag::FILEUSERNAME)?;
    let groups = strings(tag::FILEGROUPNAME)?;
    let digests = strings(tag::FILEDIGESTS)?;
    let modes = integers(tag::FILEMODES)?;
    let sizes = match integers(tag::LONGFILESIZES)? {
        Some(s) => Some(s),
        None => integers(tag::FILESIZES)?,
    };
    // rpm's default before the tag existed: MD5.
    let algo = h.integer(tag::FILEDIGESTALGO).unwrap_or(1);
    let zeros = digest_len(algo).map(|n| "0".repeat(2 * n));
    let mut out = Vec::with_capacity(files);
    for (i, &base) in bases.iter().enumerate() {
        let dir = match &indexes {
            Some(ix) => *dirs.get(ix[i] as usize).ok_or(FilesError::BadDirIndex {
                file: i,
                index: ix[i],
                dirs: dirs.len(),
            })?,
            None => &b""[..],
        };
        let digest = digests.as_ref().map(|d| {
            let hex = if d[i].is_empty() {
                zeros.clone().unwrap_or_default()
            } else {
                String::from_utf8_lossy(d[i]).to_ascii_lowercase()
            };
            (hex, algo)
        });
        out.push(PackageFile {
            dir,
            base,
            user: users.as_ref().map(|u| u[i]),
            group: groups.as_ref().map(|g| g[i]),
            mode: modes.as_ref().map(|m| m[i] as u16),
            size: sizes.as_ref().map(|s| s[i]),
            digest,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::header::build::{Data, header};
    use super::*;

    #[test]
    fn file_list_joins_dirs_and_checks_counts() {
        let blob = header(&[
            (tag::DIRNAMES, Data::Strings(vec![b"/etc/", b"/usr/bin/"])),
            (
                tag::BASENAMES,
                Data::Strings(vec![b"x.conf", b"tool", b"bin"]),
            ),
            (tag::DIRINDEXES, Data::Int32(vec![0, 1, 1])),
            (
                tag::FILEMODES,
                Data::Int16(vec![0o100640, 0o104755, 0o40755]),
            ),
            (tag::FILESIZES, Data::Int32(vec![12, 3000, 0])),
            (
                tag::FILEUSERNAME,
                Data::Strings(vec![b"root", b"root", b"bin"]),
            ),
            (
                tag::FILEGROUPNAME,
                Data::Strings(vec![b"wheel", b"root", b"bin"]),
            ),
            (tag::FILEDIGESTS, Data::Strings(vec![b"AB12", b"cd34", b""])),
            (tag::FILEDIGESTALGO, Data::Int32(vec![8])),
        ]);
        let h = Header::parse(&blob).unwrap();
        let files = package_files(&h).unwrap();
        let paths: Vec<Vec<u8>> = files.iter().map(PackageFile::path).collect();
        assert_eq!(
            paths,
            [&b"/etc/x.conf"[..], b"/usr/bin/tool", b"/usr/bin/bin"]
        );
        assert_eq!(files[1].mode, Some(0o104755));
        assert_eq!(files[1].size, Some(3000));
        assert_eq!(files[0].group, Some(&b"wheel"[..]));
        assert_eq!(files[0].digest, Some(("ab12".to_owned(), 8)));
        assert_eq!(files[2].digest, Some(("0".repeat(64), 8)));

        let bad_index = header(&[
            (tag::DIRNAMES, Data::Strings(vec![b"/etc/"])),
            (tag::BASENAMES, Data::Strings(vec![b"a"])),
            (tag::DIRINDEXES, Data::Int32(vec![5])),
        ]);
        assert!(matches!(
            package_files(&Header::parse(&bad_index).unwrap()),
            Err(FilesError::BadDirIndex { .. })
        ));
        let short_modes = header(&[
            (tag::DIRNAMES, Data::Strings(vec![b"/etc/"])),
            (tag::BASENAMES, Data::Strings(vec![b"a", b"b"])),
            (tag::DIRINDEXES, Data::Int32(vec![0, 0])),
            (tag::FILEMODES, Data::Int16(vec![0o644])),
        ]);
        assert!(matches!(
            package_files(&Header::parse(&short_modes).unwrap()),
            Err(FilesError::CountMismatch {
                tag: tag::FILEMODES,
                ..
            })
        ));
        let none = header(&[(tag::NAME, Data::String("empty"))]);
        assert!(
            package_files(&Header::parse(&none).unwrap())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_fifo_is_refused_not_waited_on() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("Packages");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert_eq!(Database::in_dir(dir.path()), None);
        let mut visit = |_: &[u8]| ControlFlow::Continue(());
        assert!(bdb::for_each_record(&fifo, &mut visit).is_err());
        assert!(ndb::for_each_record(&fifo, &mut visit).is_err());
    }

    #[test]
    fn finds_no_database_in_an_empty_dir() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Database::in_dir(dir.path()), None);
        std::fs::create_dir(dir.path().join("rpmdb.sqlite")).unwrap();
        assert_eq!(
            Database::in_dir(dir.path()),
            None,
            "a directory is not a database"
        );
    }
}
