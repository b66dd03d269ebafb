//! Tables of the `containers` domain: the Docker daemon's objects through its Engine API
//! on a unix socket (`--docker_socket`), and the LXD daemon's through its REST API
//! (`--lxd_socket`).
//!
//! [`engine_api`] is the bounded HTTP client every engine table shares; [`docker`] holds
//! what the docker_* tables share (the socket, logging a failed call, the id and name
//! filters pushed down to the API), [`lxd`] what the lxd_* tables share.

pub mod docker;
pub mod engine_api;
pub mod lxd;

pub mod docker_container_envs;
pub mod docker_container_fs_changes;
pub mod docker_container_labels;
pub mod docker_container_mounts;
pub mod docker_container_networks;
pub mod docker_container_ports;
pub mod docker_container_processes;
pub mod docker_container_stats;
pub mod docker_containers;
pub mod docker_image_history;
pub mod docker_image_labels;
pub mod docker_image_layers;
pub mod docker_images;
pub mod docker_info;
pub mod docker_network_labels;
pub mod docker_networks;
pub mod docker_version;
pub mod docker_volume_labels;
pub mod docker_volumes;
pub mod lxd_certificates;
pub mod lxd_cluster;
pub mod lxd_cluster_members;
pub mod lxd_images;
pub mod lxd_instance_config;
pub mod lxd_instance_devices;
pub mod lxd_instances;
pub mod lxd_networks;
pub mod lxd_storage_pools;

use oxquery_table::TableDef;

/// The tables of this domain.
pub fn tables() -> Vec<&'static TableDef> {
    vec![
        &docker_container_envs::TABLE,
        &docker_container_fs_changes::TABLE,
        &docker_container_labels::TABLE,
        &docker_container_mounts::TABLE,
        &docker_container_networks::TABLE,
        &docker_container_ports::TABLE,
        &docker_container_processes::TABLE,
        &docker_container_stats::TABLE,
        &docker_containers::TABLE,
        &docker_image_history::TABLE,
        &docker_image_labels::TABLE,
        &docker_image_layers::TABLE,
        &docker_images::TABLE,
        &docker_info::TABLE,
        &docker_network_labels::TABLE,
        &docker_networks::TABLE,
        &docker_version::TABLE,
        &docker_volume_labels::TABLE,
        &docker_volumes::TABLE,
        &lxd_certificates::TABLE,
        &lxd_cluster::TABLE,
        &lxd_cluster_members::TABLE,
        &lxd_images::TABLE,
        &lxd_instance_config::TABLE,
        &lxd_instance_devices::TABLE,
        &lxd_instances::TABLE,
        &lxd_networks::TABLE,
        &lxd_storage_pools::TABLE,
    ]
}

/// For the docker_* and lxd_* tests: a server on a fresh socket answering every connection
/// with `answer` (after reading the request head); with `answer` `None` it accepts and
/// never says a word.
#[cfg(test)]
pub(crate) fn hostile_server(
    answer: Option<&'static [u8]>,
) -> (tempfile::TempDir, std::path::PathBuf) {
    use std::io::{BufRead, Write};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("api.socket");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            match answer {
                Some(a) => {
                    let _ = stream.write_all(a);
                }
                None => held.push(stream),
            }
        }
    });
    (dir, path)
}

/// What a test scan of one table gives: its row count or error, and what it logged.
#[cfg(test)]
pub(crate) type ScanOutcome = (
    Result<usize, oxquery_table::TableError>,
    Vec<(log::Level, String)>,
);

/// For the docker_* and lxd_* tests: each of `tables`, scanned (by `scan`) against a
/// [`hostile_server`] giving each of `answers`, returns no rows and warns naming the table.
#[cfg(test)]
pub(crate) fn assert_hostile_answers_warn(
    answers: &[(&str, &'static [u8])],
    tables: &[&oxquery_table::TableDef],
    host_for: fn(&std::path::Path) -> oxquery_table::Host,
    scan: fn(&oxquery_table::TableDef, &oxquery_table::Host) -> ScanOutcome,
) {
    for (what, answer) in answers {
        let (_dir, path) = hostile_server(Some(answer));
        let host = host_for(&path);
        for def in tables {
            let (rows, logged) = scan(def, &host);
            assert_eq!(rows.unwrap(), 0, "{} / {what}", def.spec.name);
            assert!(
                logged
                    .iter()
                    .any(|(l, m)| *l == log::Level::Warn && m.contains(def.spec.name.as_ref())),
                "{} / {what}: {logged:?}",
                def.spec.name
            );
        }
    }
}

/// For the docker_* and lxd_* tests: each of `tables`, scanned (by `scan`) against a
/// [`hostile_server`] giving each of `answers` (well-formed JSON of the wrong shape),
/// finishes without an error or a panic.
#[cfg(test)]
pub(crate) fn assert_odd_shapes_survive(
    answers: &[&'static [u8]],
    tables: &[&oxquery_table::TableDef],
    host_for: fn(&std::path::Path) -> oxquery_table::Host,
    scan: fn(&oxquery_table::TableDef, &oxquery_table::Host) -> ScanOutcome,
) {
    for answer in answers {
        let (_dir, path) = hostile_server(Some(answer));
        let host = host_for(&path);
        for def in tables {
            let (rows, _) = scan(def, &host);
            assert!(rows.is_ok(), "{}", def.spec.name);
        }
    }
}
