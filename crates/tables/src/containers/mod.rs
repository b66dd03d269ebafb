//! Tables of the `containers` domain: the Docker daemon's objects through its Engine API
//! on a unix socket (`--docker_socket`).
//!
//! [`engine_api`] is the bounded HTTP client every engine table shares; [`docker`] holds
//! what the docker_* tables share (the socket, logging a failed call, the id and name
//! filters pushed down to the API).

pub mod docker;
pub mod engine_api;

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
    ]
}
