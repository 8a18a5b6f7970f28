//! TLS settings of the session against a real TLS server on 127.0.0.1 whose certificate is
//! signed by a CA made for the test: trusted through a CA file (`OS_CACERT`), refused without
//! it, accepted by the insecure switch (`OS_INSECURE`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use openstack_client::{CloudConfig, Error, Session};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

struct Tls {
    url: String,
    ca_pem: String,
    /// Connections accepted so far.
    connections: Arc<AtomicUsize>,
}

/// A Keystone look-alike over TLS: every request gets a valid token answer.
async fn serve() -> Tls {
    let ca_params = {
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p
    };
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key")).expect("CA");
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("leaf params")
        .signed_by(&leaf_key, &ca)
        .expect("leaf");

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("https://{}", listener.local_addr().expect("addr"));
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake: nothing to answer.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let body = r#"{"token": {"expires_at": "2999-01-01T00:00:00.000000Z", "user": {"id": "u"}, "project": {"id": "p"}, "roles": [], "catalog": []}}"#;
                let head = format!(
                    "HTTP/1.1 201 Created\r\nX-Subject-Token: tls-token\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tls.write_all(head.as_bytes()).await;
                let _ = tls.write_all(body.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    Tls {
        url,
        ca_pem: ca.pem(),
        connections,
    }
}

fn config(url: &str) -> CloudConfig {
    CloudConfig::password(url, "u", "p", "proj")
}

#[tokio::test]
async fn a_ca_file_makes_the_server_trusted() {
    let tls = serve().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &tls.ca_pem).expect("write CA");
    let session = Session::new(config(&tls.url).with_cacert(&ca)).expect("session");
    assert_eq!(
        session.token().await.expect("token over TLS").value(),
        "tls-token"
    );
}

#[tokio::test]
async fn without_the_ca_the_certificate_is_refused() {
    let tls = serve().await;
    let session = Session::new(config(&tls.url)).expect("session");
    let err = session.token().await.expect_err("unknown CA");
    assert!(
        matches!(err, Error::Transport { ref url, .. } if url.starts_with(&tls.url)),
        "{err}"
    );
    // A refused certificate is final: no retry.
    assert_eq!(tls.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn insecure_accepts_any_certificate() {
    let tls = serve().await;
    let session = Session::new(config(&tls.url).with_insecure(true)).expect("session");
    assert_eq!(session.token().await.expect("token").value(), "tls-token");
}

#[test]
fn a_missing_or_empty_ca_file_is_a_settings_error() {
    let err = Session::new(config("https://127.0.0.1:1").with_cacert("/nonexistent/ca.pem"))
        .expect_err("missing");
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "no certificate here\n").expect("write");
    let err = Session::new(config("https://127.0.0.1:1").with_cacert(&empty)).expect_err("empty");
    assert!(matches!(err, Error::Config { .. }), "{err}");
}
