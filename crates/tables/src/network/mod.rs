//! Tables of the `network` domain.

pub mod listening_ports;
pub mod process_open_sockets;

use oxquery_table::TableDef;

/// The tables of this domain.
pub fn tables() -> Vec<&'static TableDef> {
    vec![&process_open_sockets::TABLE, &listening_ports::TABLE]
}
