//! The client's connection chain: an optional HTTP CONNECT proxy (`--proxy_hostname`),
//! a TCP socket, then TLS with the client's own rustls configuration. ureq's `TlsConfig`
//! cannot carry a custom certificate verifier, so the TLS step here replaces ureq's
//! rustls connector (through ureq's `unversioned` transport API) and does what it does:
//! handshake within the connection timeout, then buffered reads and writes.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::time::Duration as UreqDuration;
use ureq::unversioned::transport::{
    Buffers, ConnectProxyConnector, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout,
    TcpConnector, Transport, TransportAdapter,
};

use crate::verify::ServerVerifier;

/// An agent with `config` whose connections go through the proxy, if `config` names
/// one, and TLS with `tls`.
pub(crate) fn agent(config: ureq::config::Config, tls: Arc<ClientConfig>) -> ureq::Agent {
    let chain =
        ().chain(ConnectProxyConnector::default())
            .chain(TcpConnector::default())
            .chain(RustlsConnector { config: tls });
    ureq::Agent::with_parts(config, chain, DefaultResolver::default())
}

/// A client certificate chain and its private key.
pub(crate) type ClientIdentity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// The rustls configuration: the server verified against `roots` (with the legacy CN
/// fallback of [`ServerVerifier`]), TLS 1.2 and 1.3, the client certificate when given.
/// Session tickets are kept in memory (rustls' default), so a new connection to the
/// same server resumes the TLS session.
pub(crate) fn client_config(
    roots: RootCertStore,
    client_cert: Option<ClientIdentity>,
) -> Result<Arc<ClientConfig>, String> {
    // ring, as ureq's rustls feature uses it (rustls deprecates it only for lacking
    // post-quantum key exchange, which fleet servers do not offer yet).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = ServerVerifier::new(roots, &provider)?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| format!("TLS versions: {e}"))?
        .dangerous()
        // Not dangerous: ServerVerifier is webpki's verifier plus one checked fallback.
        .with_custom_certificate_verifier(Arc::new(verifier));
    let config = match client_cert {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("--tls_client_key: {e}"))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Every certificate in the PEM file at `path`.
pub(crate) fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in the PEM file at `path`.
pub(crate) fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| format!("{}: {e}", path.display()))
}

/// Wraps an `https` connection in TLS with the client's configuration.
#[derive(Debug)]
struct RustlsConnector {
    config: Arc<ClientConfig>,
}

impl<In: Transport> Connector<In> for RustlsConnector {
    type Out = Either<In, TlsTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        // A plain connection (to the proxy itself) or one already in TLS passes.
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details
            .uri
            .host()
            .ok_or(ureq::Error::Tls("no host to verify the certificate for"))?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(bare.to_owned())
            .map_err(|_| ureq::Error::Tls("the host is not a valid DNS name or address"))?;
        let mut conn = ClientConnection::new(Arc::clone(&self.config), name)?;
        let mut socket =
            TransportAdapter::new(transport.boxed(), Arc::clone(&details.current_time));
        socket.set_timeout(remaining(details));
        conn.complete_io(&mut socket)?;
        Ok(Some(Either::B(TlsTransport {
            buffers: LazyBuffers::new(
                details.config.input_buffer_size(),
                details.config.output_buffer_size(),
            ),
            stream: StreamOwned::new(conn, socket),
        })))
    }
}

/// What is left of the connection's time budget, which TCP (and a proxy) used part of.
fn remaining(details: &ConnectionDetails) -> NextTimeout {
    let mut timeout = details.timeout;
    let elapsed = match (details.now, (details.current_time)()) {
        (
            ureq::unversioned::transport::time::Instant::Exact(start),
            ureq::unversioned::transport::time::Instant::Exact(now),
        ) => now.saturating_duration_since(start),
        _ => std::time::Duration::ZERO,
    };
    if let UreqDuration::Exact(limit) = timeout.after {
        timeout.after = UreqDuration::Exact(limit.saturating_sub(elapsed));
    }
    timeout
}

/// A TLS connection as ureq's transport.
struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl std::fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTransport")
            .field("chained", &self.stream.sock.inner())
            .finish()
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}
