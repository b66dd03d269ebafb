//! Tables of the `fetch` domain: what servers a query or the config names answer
//! (`curl`, `curl_certificate`, `prometheus_metrics`).
//!
//! Only the server named is contacted; every exchange is bounded in time and size and
//! stops with the query (see [`http`]).

pub mod curl;
pub mod curl_certificate;
/// The bounded, cancellable HTTP fetch these tables and the cloud tables share.
pub(crate) mod http;
pub mod prometheus_metrics;

use oxquery_table::TableDef;

/// The tables of this domain.
pub fn tables() -> Vec<&'static TableDef> {
    vec![
        &curl::TABLE,
        &curl_certificate::TABLE,
        &prometheus_metrics::TABLE,
    ]
}
