//! `raft-kv certs`: throwaway certificates for a TLS cluster (a CA and one certificate per
//! node), made with rcgen.
//!
//! Writes into `--dir`: `ca.pem` and `ca-key.pem` (the CA; keep the key secret, it makes
//! nodes), and for every node `i` of `1..=N` `node-<i>.pem` and `node-<i>-key.pem`. A node's
//! certificate names it with the SAN URI `raft-kv://node/<i>` and is valid for `127.0.0.1`,
//! `::1`, `localhost` and every `--host`, as a server and as a client. Files that exist are
//! kept: run it again with a larger `--nodes` and the existing CA signs the new nodes only.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::path::PathBuf;

use rcgen::BasicConstraints;
use rcgen::CertificateParams;
use rcgen::DnType;
use rcgen::ExtendedKeyUsagePurpose;
use rcgen::IsCa;
use rcgen::Issuer;
use rcgen::KeyPair;
use rcgen::KeyUsagePurpose;
use rcgen::SanType;

use crate::Error;
use crate::tls::node_uri;

/// The arguments of `raft-kv certs`.
#[derive(Debug, Clone, clap::Args)]
pub struct CertsArgs {
    /// Directory to write the certificates into (created if missing).
    #[arg(long)]
    pub dir: PathBuf,
    /// Make certificates for nodes 1 to N.
    #[arg(long)]
    pub nodes: u64,
    /// Another name or IP address every node certificate is valid for (repeatable); 127.0.0.1,
    /// `::1` and localhost always are.
    #[arg(long = "host")]
    pub hosts: Vec<String>,
}

/// The common name of the CA `raft-kv certs` makes.
const CA_NAME: &str = "raft-kv cluster CA";

/// The file of node `id`'s certificate in `dir`.
pub fn node_cert(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("node-{id}.pem"))
}

/// The file of node `id`'s private key in `dir`.
pub fn node_key(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("node-{id}-key.pem"))
}

/// The file of the CA certificate in `dir`.
pub fn ca_cert(dir: &Path) -> PathBuf {
    dir.join("ca.pem")
}

fn rc(what: &str) -> impl Fn(rcgen::Error) -> Error + '_ {
    move |e| Error::setup(what, e)
}

/// Write `text` to a new file at `path`, readable by its owner only if `secret`.
fn write_new(path: &Path, text: &str, secret: bool) -> Result<(), Error> {
    let io = |e| Error::Io(format!("writing {}", path.display()), e);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(path)
        .map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

/// Make what `args` asks for; returns the files written.
pub fn generate(args: &CertsArgs) -> Result<Vec<PathBuf>, Error> {
    if args.nodes == 0 {
        return Err(Error::Config(
            "--nodes 0: no node to make a certificate for".into(),
        ));
    }
    fs::create_dir_all(&args.dir).map_err(|e| Error::Io(format!("creating {}", args.dir.display()), e))?;
    let mut written = Vec::new();
    let ca_path = ca_cert(&args.dir);
    let ca_key_path = args.dir.join("ca-key.pem");
    // The CA's subject and constraints, the same at every run: a later run signs with the CA
    // key it reads back, and its certificates name this issuer.
    let mut ca = CertificateParams::new(Vec::new()).map_err(rc("the CA"))?;
    ca.distinguished_name.push(DnType::CommonName, CA_NAME);
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = if ca_path.exists() {
        let text = fs::read_to_string(&ca_key_path)
            .map_err(|e| Error::Io(format!("reading {}", ca_key_path.display()), e))?;
        KeyPair::from_pem(&text).map_err(rc("the CA key"))?
    } else {
        let key = KeyPair::generate().map_err(rc("making the CA key"))?;
        let cert = ca.self_signed(&key).map_err(rc("signing the CA"))?;
        write_new(&ca_key_path, &key.serialize_pem(), true)?;
        write_new(&ca_path, &cert.pem(), false)?;
        written.extend([ca_path.clone(), ca_key_path.clone()]);
        key
    };
    let issuer = Issuer::new(ca, key);
    for id in 1..=args.nodes {
        let (cert_path, key_path) = (node_cert(&args.dir, id), node_key(&args.dir, id));
        if cert_path.exists() {
            continue;
        }
        let mut names = vec!["127.0.0.1".to_string(), "::1".into(), "localhost".into()];
        names.extend(args.hosts.iter().cloned());
        let mut params = CertificateParams::new(names).map_err(rc("a --host"))?;
        params
            .subject_alt_names
            .push(SanType::URI(node_uri(id).try_into().map_err(rc("the node URI"))?));
        params
            .distinguished_name
            .push(DnType::CommonName, format!("raft-kv-node-{id}"));
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().map_err(rc("making a node key"))?;
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(rc("signing a node certificate"))?;
        write_new(&key_path, &key.serialize_pem(), true)?;
        write_new(&cert_path, &cert.pem(), false)?;
        written.extend([cert_path, key_path]);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;

    use super::*;

    #[test]
    fn node_certificates_name_their_node_and_a_rerun_adds_only_new_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut args = CertsArgs {
            dir: dir.path().to_path_buf(),
            nodes: 2,
            hosts: vec!["db.example".into()],
        };
        assert_eq!(generate(&args).unwrap().len(), 6);
        for id in 1..=2 {
            let cert = CertificateDer::from_pem_file(node_cert(dir.path(), id)).unwrap();
            assert_eq!(crate::tls::cert_node_id(&cert), Ok(Some(id)));
        }
        let before = fs::read(node_cert(dir.path(), 1)).unwrap();
        args.nodes = 3;
        assert_eq!(
            generate(&args).unwrap(),
            vec![node_cert(dir.path(), 3), node_key(dir.path(), 3)]
        );
        assert_eq!(fs::read(node_cert(dir.path(), 1)).unwrap(), before);
        // The new node's certificate is signed by the same CA.
        let roots = {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_file(ca_cert(dir.path())).unwrap())
                .unwrap();
            std::sync::Arc::new(roots)
        };
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots,
            std::sync::Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        let leaf = CertificateDer::from_pem_file(node_cert(dir.path(), 3)).unwrap();
        verifier
            .verify_client_cert(&leaf, &[], rustls::pki_types::UnixTime::now())
            .unwrap();
        let files = crate::tls::TlsFiles {
            cert: node_cert(dir.path(), 3),
            key: node_key(dir.path(), 3),
            ca: ca_cert(dir.path()),
        };
        assert!(crate::tls::NodeTls::load(&files, 3).is_ok());
        let err = crate::tls::NodeTls::load(&files, 2).err().unwrap().to_string();
        assert!(err.contains("names node 3, but this is node 2"), "{err}");
    }
}
