//! The yara tables' `sigurl` transport: rules fetched over the TLS flags' client
//! (`--tls_server_certs`, client certificate, `--proxy_hostname`), and with
//! `--yara_sigurl_authenticate` a POST of the node key, as osquery sends it.

use std::sync::Arc;

use oxquery_table::{Fetched, SignatureFetch};
use serde_json::json;

use crate::{NodeKeys, TlsClient};

/// Fetches signature URLs; the node key comes from the daemon's enrollment, when the
/// daemon has one.
#[derive(Clone)]
pub struct SignatureFetcher {
    client: TlsClient,
    keys: Option<Arc<NodeKeys>>,
}

impl std::fmt::Debug for SignatureFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureFetcher")
            .field("node_keys", &self.keys.is_some())
            .finish_non_exhaustive()
    }
}

impl SignatureFetcher {
    pub fn new(client: TlsClient, keys: Option<Arc<NodeKeys>>) -> SignatureFetcher {
        SignatureFetcher { client, keys }
    }
}

impl SignatureFetch for SignatureFetcher {
    fn fetch(&self, url: &str, authenticate: bool, max_body: u64) -> Result<Fetched, String> {
        let body = if authenticate {
            // The stored key only: a table scan does not wait out an enrollment.
            let key = self
                .keys
                .as_ref()
                .and_then(|k| k.stored())
                .ok_or("no node key to authenticate with (the daemon has not enrolled)")?;
            Some(json!({ "node_key": key }))
        } else {
            None
        };
        let (status, body) = self.client.fetch_url(url, body.as_ref(), max_body)?;
        Ok(Fetched { status, body })
    }
}
