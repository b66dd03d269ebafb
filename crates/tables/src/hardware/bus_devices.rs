//! What `pci_devices` and `usb_devices` share (not a table): listing the devices of a
//! sysfs bus (`/sys/bus/<bus>/devices`), reading their attributes, and loading the
//! host's id database (`pci.ids`, `usb.ids`) that names them.

use oxquery_sys::block::read_attr;
use oxquery_sys::hwids::IdDatabase;
use std::path::{Path, PathBuf};

/// One entry of a bus's device directory.
pub struct BusDevice {
    /// The entry's name (`0000:00:1f.2`, `1-2`, `usb1`).
    pub name: String,
    /// `devices_dir/name`, where its attributes are.
    pub dir: PathBuf,
}

impl BusDevice {
    /// One sysfs attribute of the device, trimmed; `None` when absent or empty.
    pub fn attr(&self, name: &str) -> Option<String> {
        read_attr(&self.dir.join(name))
    }
}

/// The entries of `devices_dir` sorted by name (so rows come in a stable order), or
/// `None` with a log naming `table` and saying `absent_because` when it cannot be read.
pub fn list(devices_dir: &Path, table: &str, absent_because: &str) -> Option<Vec<BusDevice>> {
    let Ok(entries) = std::fs::read_dir(devices_dir) else {
        log::info!("{table}: no {} ({absent_because})", devices_dir.display());
        return None;
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    Some(
        names
            .into_iter()
            .map(|name| BusDevice {
                dir: devices_dir.join(&name),
                name,
            })
            .collect(),
    )
}

/// The first readable id database of `ids_paths`, or `None` with the log `missing`
/// (which says what the table gives without one). Callers load it only when a name
/// column is used: parsing takes far longer than reading the devices.
pub fn load_ids(ids_paths: &[impl AsRef<Path>], missing: &str) -> Option<IdDatabase> {
    let db = IdDatabase::load_first(ids_paths).map(|(_, db)| db);
    if db.is_none() {
        log::info!("{missing}");
    }
    db
}

#[cfg(test)]
pub mod testing {
    //! Fixture buses for the bus tables' tests.

    use oxquery_table::{Host, QueryContext, Rows, TableResult, TableSpec, Value};
    use std::fs;
    use std::path::Path;

    /// Every row `scan` (a bus table's scan over a fixture) gives, every column used.
    pub fn scan_rows(
        spec: &TableSpec,
        scan: impl FnOnce(&QueryContext, &mut Rows) -> TableResult,
    ) -> Vec<Vec<Value>> {
        let host = Host::default();
        let ctx = QueryContext::everything(spec, &host);
        let mut rows = Rows::for_context(&ctx);
        scan(&ctx, &mut rows).unwrap();
        rows.iter().map(<[Value]>::to_vec).collect()
    }

    /// The device `name` under `dir` with these attribute files.
    pub fn write_device(dir: &Path, name: &str, attrs: &[(&str, &str)]) {
        let d = dir.join(name);
        fs::create_dir_all(&d).unwrap();
        for (attr, value) in attrs {
            fs::write(d.join(attr), value).unwrap();
        }
    }
}
