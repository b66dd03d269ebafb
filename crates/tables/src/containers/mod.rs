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
