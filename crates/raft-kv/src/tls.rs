//! TLS of a node and of its clients, on rustls with the ring provider.
//!
//! A node has one certificate, signed by the cluster's CA, that it presents on all its ports
//! (client API, gRPC, raft) and as a client when it sends raft RPCs, forwards a request to the
//! leader or asks to join. The certificate names the node: a SAN URI `raft-kv://node/<id>`
//! (see [`node_uri`]); `raft-kv certs` writes such certificates.
//!
//! - The raft port requires mutual TLS: a peer must present a certificate chaining to the
//!   cluster CA, and its node id is handed to the raft handlers as [`PeerNode`], which check it
//!   against the sender id inside the message.
//! - The client API and gRPC ask for a client certificate but accept a connection without one
//!   (normal clients have none); one that is presented must chain to the CA. `/join` uses the
//!   [`PeerNode`] to check that the joining node is who it says.
//!
//! The handshake runs as its own step after a connection is accepted, bounded by
//! [`HANDSHAKE_TIMEOUT`], so a client that never finishes it holds nothing for long.

use std::io;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject as _;
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::TlsConnector;

use crate::Error;

/// The start of the SAN URI that names a node in its certificate; the id follows in decimal.
pub const NODE_URI_PREFIX: &str = "raft-kv://node/";

/// How long a TLS handshake may take after the connection was accepted.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The SAN URI that names node `id` in its certificate.
pub fn node_uri(id: u64) -> String {
    format!("{NODE_URI_PREFIX}{id}")
}

/// The node a connection's peer proved to be: the id in the client certificate it presented,
/// verified against the cluster CA during the handshake. A request extension on every request
/// of such a connection (HTTP), and the connect info of a gRPC connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerNode(pub u64);

/// In the extensions of every request that came over TLS: the node the client certificate
/// names, if any (so a check can tell "no TLS" from "TLS without a node certificate").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsSession(pub Option<PeerNode>);

/// The files of a node's TLS settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The node's certificate chain (PEM), leaf first.
    pub cert: PathBuf,
    /// The node's private key (PEM).
    pub key: PathBuf,
    /// The cluster CA's certificate (PEM).
    pub ca: PathBuf,
}

/// The node id a certificate names (its `raft-kv://node/<id>` SAN URI), if it names one.
pub fn cert_node_id(der: &CertificateDer<'_>) -> Result<Option<u64>, String> {
    let uris = san_uris(der).ok_or("an unreadable certificate (not DER X.509)")?;
    let mut ids = uris
        .iter()
        .filter_map(|uri| uri.strip_prefix(NODE_URI_PREFIX.as_bytes()));
    let Some(id) = ids.next() else {
        return Ok(None);
    };
    if ids.next().is_some() {
        return Err("a certificate naming more than one node".into());
    }
    std::str::from_utf8(id)
        .ok()
        .and_then(|id| id.parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| {
            format!(
                "a certificate naming node {:?}, not a number",
                String::from_utf8_lossy(id)
            )
        })
}

/// One DER element of `input`: its tag, its contents and what follows it. Single-byte tags
/// (all an X.509 certificate needs up to its extensions) and definite lengths only.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let (bytes, rest) = rest.split_at_checked(count)?;
        let len = bytes.iter().fold(0usize, |len, &b| (len << 8) | usize::from(b));
        (len, rest)
    };
    let (contents, rest) = rest.split_at_checked(len)?;
    Some((tag, contents, rest))
}

/// The elements of a DER sequence's contents, `None` at the first malformed one.
fn der_elements(mut contents: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut out = Vec::new();
    while !contents.is_empty() {
        let (tag, value, rest) = der_element(contents)?;
        out.push((tag, value));
        contents = rest;
    }
    Some(out)
}

/// The URIs of a certificate's subject alternative names (RFC 5280: `Certificate` ->
/// `tbsCertificate` -> `[3] extensions` -> the extension `2.5.29.17` -> `GeneralNames`, whose
/// `uniformResourceIdentifier` is `[6]`). `None` if the DER is malformed on that path. A
/// peer's certificate reaches this only after webpki verified (and so parsed) it.
fn san_uris(der: &[u8]) -> Option<Vec<&[u8]>> {
    const SEQUENCE: u8 = 0x30;
    const EXTENSIONS: u8 = 0xa3;
    const OID: u8 = 0x06;
    const OCTET_STRING: u8 = 0x04;
    const URI: u8 = 0x86;
    const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
    let (SEQUENCE, cert, _) = der_element(der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = der_element(cert)? else {
        return None;
    };
    let Some((_, extensions)) = der_elements(tbs)?.into_iter().find(|(tag, _)| *tag == EXTENSIONS) else {
        return Some(Vec::new());
    };
    let (SEQUENCE, extensions, _) = der_element(extensions)? else {
        return None;
    };
    let mut uris = Vec::new();
    for (tag, extension) in der_elements(extensions)? {
        if tag != SEQUENCE {
            return None;
        }
        let fields = der_elements(extension)?;
        if fields.first() != Some(&(OID, SUBJECT_ALT_NAME)) {
            continue;
        }
        // extnID, an optional `critical` BOOLEAN, then the OCTET STRING holding GeneralNames.
        let (OCTET_STRING, value) = *fields.last()? else {
            return None;
        };
        let (SEQUENCE, names, _) = der_element(value)? else {
            return None;
        };
        uris.extend(
            der_elements(names)?
                .into_iter()
                .filter(|(tag, _)| *tag == URI)
                .map(|(_, uri)| uri),
        );
    }
    Some(uris)
}

/// The node a verified peer certificate chain names, if any (a chain that names none, or
/// cannot be read, makes the peer no node).
pub fn peer_node(chain: Option<&[CertificateDer<'static>]>) -> Option<PeerNode> {
    let leaf = chain?.first()?;
    cert_node_id(leaf).ok().flatten().map(PeerNode)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| Error::setup(format!("{what} {}", path.display()), e))?;
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "{what} {}: no PEM certificate in the file",
            path.display()
        )));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| Error::setup(format!("--tls-key {}", path.display()), e))
}

fn read_roots(path: &Path) -> Result<Arc<RootCertStore>, Error> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path, "--tls-ca")? {
        roots
            .add(cert)
            .map_err(|e| Error::setup(format!("--tls-ca {}", path.display()), e))?;
    }
    Ok(Arc::new(roots))
}

/// The TLS of a running node: an acceptor per kind of port and its client side.
#[derive(Clone)]
pub struct NodeTls {
    /// The raft port: mutual TLS, a client certificate from the cluster CA required.
    pub raft: TlsAcceptor,
    /// The HTTP client API: a client certificate optional (ALPN `http/1.1`).
    pub api: TlsAcceptor,
    /// The gRPC API: a client certificate optional (ALPN `h2`).
    pub grpc: TlsAcceptor,
    /// The client side: trusts the cluster CA, presents the node's certificate.
    pub client: ClientTls,
}

impl NodeTls {
    /// Load the node's certificate, key and CA; the certificate must name node `id`.
    pub fn load(files: &TlsFiles, id: u64) -> Result<NodeTls, Error> {
        let chain = read_certs(&files.cert, "--tls-cert")?;
        let named = cert_node_id(&chain[0])
            .map_err(|e| Error::setup(format!("--tls-cert {}", files.cert.display()), e))?;
        if named != Some(id) {
            let named = named.map_or_else(|| "no node".to_string(), |n| format!("node {n}"));
            return Err(Error::Config(format!(
                "--tls-cert {} names {named}, but this is node {id}: its certificate must carry the SAN URI {} (see `raft-kv certs`)",
                files.cert.display(),
                node_uri(id)
            )));
        }
        let key = read_key(&files.key)?;
        let roots = read_roots(&files.ca)?;
        let server = |required: bool, alpn: &[u8]| -> Result<TlsAcceptor, Error> {
            let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider());
            let verifier = if required {
                verifier
            } else {
                verifier.allow_unauthenticated()
            }
            .build()
            .map_err(|e| Error::setup(format!("--tls-ca {}", files.ca.display()), e))?;
            let mut config = ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| Error::setup("TLS", e))?
                .with_client_cert_verifier(verifier)
                .with_single_cert(chain.clone(), key.clone_key())
                .map_err(|e| {
                    Error::setup(
                        format!(
                            "--tls-cert {} with --tls-key {}",
                            files.cert.display(),
                            files.key.display()
                        ),
                        e,
                    )
                })?;
            config.alpn_protocols = vec![alpn.to_vec()];
            Ok(TlsAcceptor::from(Arc::new(config)))
        };
        Ok(NodeTls {
            raft: server(true, b"http/1.1")?,
            api: server(false, b"http/1.1")?,
            grpc: server(false, b"h2")?,
            client: ClientTls::build(&roots, Some(&(chain, key)))?,
        })
    }
}

/// The client side of TLS: the cluster CA to trust and, for a node, the certificate it
/// presents. Cheap to clone.
#[derive(Clone)]
pub struct ClientTls {
    /// For HTTP/1 (reqwest): no ALPN.
    http: Arc<ClientConfig>,
    /// For gRPC: ALPN `h2`.
    grpc: Arc<ClientConfig>,
    /// What [`ClientTls::reqwest_to_node`] builds a per-node configuration from.
    roots: Arc<RootCertStore>,
    identity: Option<Arc<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>>,
}

/// Verifies a server's certificate as `WebPKI` does (chain to the cluster CA, name of the host)
/// and then that it names the node the connection is for: every node's certificate is valid
/// for the same hosts, so the chain alone would let any node of the CA (one removed, say)
/// answer in another's place, granting votes and acknowledging appends it never stored.
#[derive(Debug)]
struct NodeServerVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    node: u64,
}

impl rustls::client::danger::ServerCertVerifier for NodeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let verified =
            self.inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        match cert_node_id(end_entity) {
            Ok(Some(id)) if id == self.node => Ok(verified),
            Ok(Some(id)) => Err(rustls::Error::General(format!(
                "the server's certificate names node {id}, but this connection is for node {}",
                self.node
            ))),
            Ok(None) => Err(rustls::Error::General(format!(
                "the server's certificate names no node; this connection is for node {}",
                self.node
            ))),
            Err(e) => Err(rustls::Error::General(format!("the server's certificate: {e}"))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientTls")
    }
}

impl ClientTls {
    /// Trust the CA certificates in `ca` (PEM); present the certificate and key of `identity`
    /// (PEM files) if given.
    pub fn from_files(ca: &Path, identity: Option<(&Path, &Path)>) -> Result<ClientTls, Error> {
        let roots = read_roots(ca)?;
        let identity = match identity {
            Some((cert, key)) => Some((read_certs(cert, "--tls-cert")?, read_key(key)?)),
            None => None,
        };
        Self::build(&roots, identity.as_ref())
    }

    fn build(
        roots: &Arc<RootCertStore>,
        identity: Option<&(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    ) -> Result<ClientTls, Error> {
        let config = |alpn: Option<&[u8]>| -> Result<Arc<ClientConfig>, Error> {
            let builder = ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| Error::setup("TLS", e))?
                .with_root_certificates(roots.clone());
            let mut config = match identity {
                Some((chain, key)) => builder
                    .with_client_auth_cert(chain.clone(), key.clone_key())
                    .map_err(|e| Error::setup("the client certificate", e))?,
                None => builder.with_no_client_auth(),
            };
            config.alpn_protocols = alpn.map(|a| vec![a.to_vec()]).unwrap_or_default();
            Ok(Arc::new(config))
        };
        Ok(ClientTls {
            http: config(None)?,
            grpc: config(Some(b"h2"))?,
            roots: roots.clone(),
            identity: identity.map(|(chain, key)| Arc::new((chain.clone(), key.clone_key()))),
        })
    }

    /// Make `builder` speak TLS to node `node` only: as [`ClientTls::reqwest`], and the
    /// server's certificate must name `node` (see `NodeServerVerifier`).
    pub fn reqwest_to_node(
        &self,
        builder: reqwest::ClientBuilder,
        node: u64,
    ) -> Result<reqwest::ClientBuilder, Error> {
        let inner =
            rustls::client::WebPkiServerVerifier::builder_with_provider(self.roots.clone(), provider())
                .build()
                .map_err(|e| Error::setup("TLS: the cluster CA", e))?;
        let builder_tls = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::setup("TLS", e))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NodeServerVerifier { inner, node }));
        let config = match self.identity.as_deref() {
            Some((chain, key)) => builder_tls
                .with_client_auth_cert(chain.clone(), key.clone_key())
                .map_err(|e| Error::setup("the client certificate", e))?,
            None => builder_tls.with_no_client_auth(),
        };
        Ok(builder.use_preconfigured_tls(config))
    }

    /// Make `builder` speak TLS with this configuration (for `https://` URLs).
    pub fn reqwest(&self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        builder.use_preconfigured_tls((*self.http).clone())
    }

    /// A gRPC channel to `addr` (`host:port`) over TLS, with `endpoint`'s settings.
    pub async fn grpc_channel(
        &self,
        endpoint: tonic::transport::Endpoint,
    ) -> Result<tonic::transport::Channel, tonic::transport::Error> {
        let connector = TlsConnector::from(self.grpc.clone());
        endpoint
            .connect_with_connector(tower::service_fn(move |uri: axum::http::Uri| {
                let connector = connector.clone();
                async move {
                    let host = uri.host().unwrap_or_default();
                    let port = uri.port_u16().unwrap_or(443);
                    let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
                    let name = ServerName::try_from(host.clone())
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{host}: {e}")))?;
                    let tcp = TcpStream::connect((host.as_str(), port)).await?;
                    let _ = tcp.set_nodelay(true);
                    let tls = connector.connect(name, tcp).await?;
                    Ok::<_, io::Error>(hyper_util::rt::TokioIo::new(tls))
                }
            }))
            .await
    }
}

/// Finish the TLS handshake of an accepted connection within [`HANDSHAKE_TIMEOUT`]: the
/// stream and the node its client certificate names, if any; `None` if the handshake failed
/// or took too long, logged through `conn`, so at the listener's rate limit: any client can
/// fail a handshake, thousands of times a second.
pub async fn accept(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    port: &str,
    conn: &crate::conn_limits::Conn,
) -> Option<(tokio_rustls::server::TlsStream<TcpStream>, Option<PeerNode>)> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => {
            let peer = peer_node(tls.get_ref().1.peer_certificates());
            Some((tls, peer))
        }
        Ok(Err(e)) => {
            conn.log(format_args!("TLS handshake on the {port} port failed: {e}"));
            None
        }
        Err(_) => {
            conn.log(format_args!(
                "TLS handshake on the {port} port not done within {HANDSHAKE_TIMEOUT:?}; closed"
            ));
            None
        }
    }
}

/// A TLS connection to the gRPC API under the listener's connection limits; its connect info
/// names the node its client certificate names (so a handler finds it in the request's
/// extensions).
pub type GrpcTlsStream = crate::conn_limits::GrpcIo<tokio_rustls::server::TlsStream<TcpStream>>;

/// The connect info of a gRPC connection over TLS: the node its client certificate names, if
/// any, and its place under the connection limits (which marks its calls busy).
#[derive(Clone)]
pub struct GrpcPeer(pub Option<PeerNode>, pub Option<crate::conn_limits::Conn>);

impl tonic::transport::server::Connected for GrpcTlsStream {
    type ConnectInfo = GrpcPeer;

    fn connect_info(&self) -> GrpcPeer {
        let peer = peer_node(self.get_ref().get_ref().1.peer_certificates());
        GrpcPeer(peer, Some(self.conn().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(sans: Vec<rcgen::SanType>) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.subject_alt_names.extend(sans);
        params.self_signed(&key).unwrap().der().clone()
    }

    fn uri(text: &str) -> rcgen::SanType {
        rcgen::SanType::URI(text.to_string().try_into().unwrap())
    }

    #[test]
    fn the_node_id_is_read_from_the_san_uri() {
        assert_eq!(cert_node_id(&cert(vec![uri("raft-kv://node/42")])), Ok(Some(42)));
        assert_eq!(
            cert_node_id(&cert(vec![uri("https://example.com/"), uri(&node_uri(u64::MAX))])),
            Ok(Some(u64::MAX))
        );
        assert_eq!(cert_node_id(&cert(vec![uri("https://example.com/")])), Ok(None));
        assert_eq!(cert_node_id(&cert(Vec::new())), Ok(None));
        let two = cert_node_id(&cert(vec![uri("raft-kv://node/1"), uri("raft-kv://node/2")]));
        assert!(two.is_err(), "{two:?}");
        let bad = cert_node_id(&cert(vec![uri("raft-kv://node/1x")]));
        assert!(bad.is_err(), "{bad:?}");
        let overflow = cert_node_id(&cert(vec![uri("raft-kv://node/18446744073709551616")]));
        assert!(overflow.is_err(), "{overflow:?}");
    }

    /// The TLS of node `id` from certificates `raft-kv certs` wrote to `dir`.
    fn node_tls(dir: &Path, id: u64) -> NodeTls {
        let files = TlsFiles {
            cert: crate::tools::certs::node_cert(dir, id),
            key: crate::tools::certs::node_key(dir, id),
            ca: crate::tools::certs::ca_cert(dir),
        };
        NodeTls::load(&files, id).expect("load the node's TLS")
    }

    /// A raft client of node 1 reaches node 2's raft port only when it expects node 2: every
    /// node certificate is valid for 127.0.0.1, so the chain alone would let node 2 answer for
    /// node 3.
    #[test]
    fn a_raft_client_accepts_only_the_certificate_of_the_node_it_targets() {
        let dir = tempfile::tempdir().expect("temporary directory");
        crate::tools::certs::generate(&crate::tools::certs::CertsArgs {
            dir: dir.path().to_path_buf(),
            nodes: 3,
            hosts: Vec::new(),
        })
        .expect("certificates");
        let server = node_tls(dir.path(), 2);
        let client = node_tls(dir.path(), 1).client;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("address");
            let acceptor = server.raft.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        return;
                    };
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        use tokio::io::AsyncReadExt as _;
                        use tokio::io::AsyncWriteExt as _;
                        let Ok(mut tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let mut buf = [0u8; 1024];
                        let _ = tls.read(&mut buf).await;
                        let _ = tls
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                            .await;
                        let _ = tls.shutdown().await;
                    });
                }
            });
            let get = |node: u64| {
                let client = client.clone();
                async move {
                    let http = client
                        .reqwest_to_node(reqwest::Client::builder(), node)
                        .expect("builder")
                        .build()
                        .expect("client");
                    http.get(format!("https://{addr}/")).send().await
                }
            };
            let to_2 = get(2).await.expect("node 2's own certificate is accepted");
            assert_eq!(to_2.status(), 200);
            let to_3 = get(3).await.expect_err("node 2's certificate for node 3");
            let chain = std::iter::successors(Some(&to_3 as &dyn std::error::Error), |e| e.source())
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(": ");
            assert!(chain.contains("names node 2"), "{chain}");
        });
    }

    #[test]
    fn a_cut_or_damaged_certificate_is_an_error_never_a_panic() {
        let der = cert(vec![uri("raft-kv://node/7")]);
        for len in 0..der.len() {
            let cut = CertificateDer::from(der[..len].to_vec());
            assert!(cert_node_id(&cut).is_err(), "a certificate cut to {len} bytes");
        }
        for at in 0..der.len() {
            let mut damaged = der.to_vec();
            damaged[at] ^= 0xff;
            let _ = cert_node_id(&CertificateDer::from(damaged));
        }
    }
}
