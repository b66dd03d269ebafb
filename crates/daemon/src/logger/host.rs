//! `hostIdentifier`: how this host names itself in every log line (`--host_identifier`).

use std::sync::OnceLock;

/// The resolved `--host_identifier` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostIdentifier {
    /// The host name, read again for every line: a renamed host logs its new name (osquery
    /// deliberately does not cache it).
    Hostname,
    /// A value fixed for the process (uuid, instance, ephemeral, specified).
    Fixed(String),
}

impl HostIdentifier {
    /// Resolves `--host_identifier` the way osquery does. `instance_id` is the daemon's
    /// persistent instance UUID (stored in its database). Unknown modes, a `specified`
    /// mode without `--specified_identifier`, and identities that cannot be obtained fall
    /// back to the host name.
    pub fn resolve(mode: &str, specified: &str, instance_id: &str) -> HostIdentifier {
        let fixed = match mode {
            "uuid" => oxquery_sys::host::host_uuid(),
            "instance" => Some(instance_id.to_owned()),
            "ephemeral" => ephemeral_id(),
            "specified" => Some(specified.to_owned()),
            _ => None,
        };
        match fixed {
            Some(id) if !id.is_empty() => HostIdentifier::Fixed(id),
            _ => HostIdentifier::Hostname,
        }
    }

    /// The identifier to write now.
    pub fn current(&self) -> String {
        match self {
            HostIdentifier::Fixed(id) => id.clone(),
            HostIdentifier::Hostname => oxquery_sys::host::hostname().unwrap_or_default(),
        }
    }
}

/// A random UUID made once per process: `ephemeral` identifies this run only.
pub fn ephemeral_id() -> Option<String> {
    static ID: OnceLock<Option<String>> = OnceLock::new();
    ID.get_or_init(oxquery_sys::host::random_uuid).clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        let host = oxquery_sys::host::hostname().unwrap();
        assert_eq!(HostIdentifier::resolve("hostname", "", "i").current(), host);
        assert_eq!(HostIdentifier::resolve("bogus", "x", "i").current(), host);
        assert_eq!(
            HostIdentifier::resolve("specified", "box-7", "i"),
            HostIdentifier::Fixed("box-7".into())
        );
        assert_eq!(
            HostIdentifier::resolve("specified", "", "i"),
            HostIdentifier::Hostname
        );
        assert_eq!(
            HostIdentifier::resolve("instance", "", "abc-123"),
            HostIdentifier::Fixed("abc-123".into())
        );
        assert_eq!(
            HostIdentifier::resolve("uuid", "", "i").current(),
            oxquery_sys::host::host_uuid().unwrap()
        );
        let e1 = HostIdentifier::resolve("ephemeral", "", "i").current();
        let e2 = HostIdentifier::resolve("ephemeral", "", "i").current();
        assert_eq!(e1, e2, "ephemeral is stable within the process");
        assert_eq!(e1.len(), 36);
        assert_ne!(e1, oxquery_sys::host::host_uuid().unwrap());
    }
}
