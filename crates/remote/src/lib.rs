//! osquery's TLS remote API, as fleet servers (Fleet, Kolide, Zentral...) speak it:
//! [`client`] makes the requests (osquery's headers, verification and answer rules),
//! [`enroll`] keeps the node key, [`carve`] uploads carve archives. [`aws`]: the AWS
//! services of the Kinesis and Firehose loggers, over the same HTTP stack.

pub mod aws;
pub mod carve;
pub mod client;
pub mod config;
mod connector;
pub mod distributed;
pub mod enroll;
pub mod signatures;
#[cfg(feature = "testing")]
pub mod testing;
mod verify;

pub use client::{RequestError, TlsClient, TlsSettings};
pub use enroll::{EnrollSettings, NodeKeys};
pub use signatures::SignatureFetcher;
