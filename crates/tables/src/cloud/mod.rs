//! Tables of the `cloud` domain: what the instance metadata services of EC2, Azure and
//! Yandex Cloud say about the machine.
//!
//! A table asks its link-local service only when the machine identifies as that cloud
//! (see [`instance`]); elsewhere it gives no rows at once and says why at verbose level.

pub mod azure_instance_metadata;
pub mod azure_instance_tags;
pub mod ec2_instance_metadata;
pub mod ec2_instance_tags;
/// Identification of the cloud and the metadata requests the tables share (the
/// cancellable wait is [`crate::fetch::http::cancellable`]).
pub(crate) mod instance;
pub mod ycloud_instance_metadata;

use oxquery_table::TableDef;

/// The tables of this domain.
pub fn tables() -> Vec<&'static TableDef> {
    vec![
        &azure_instance_metadata::TABLE,
        &azure_instance_tags::TABLE,
        &ec2_instance_metadata::TABLE,
        &ec2_instance_tags::TABLE,
        &ycloud_instance_metadata::TABLE,
    ]
}
