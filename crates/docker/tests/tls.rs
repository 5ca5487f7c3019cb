//! The Docker source over mutual TLS, on a private dockerd started with `--tlsverify` and
//! certificates the test makes (rcgen): a CA, the daemon's certificate for 127.0.0.1 and
//! localhost, a client certificate of the CA with an `openssl genrsa`-style PKCS#1 key,
//! and a client certificate of another CA. The daemon listens on 127.0.0.1 and 127.0.0.2
//! (an address its certificate does not name) besides its private socket. With `CI` set
//! this must run; elsewhere it skips (with a message) when dockerd, docker, busybox or
//! root is missing.
#![cfg(feature = "tls")]

mod common;
mod remote;

use std::time::Duration;

use common::{Seen, engine_or_skip_with, skip};
use hypersh_docker::{DockerError, DockerHost, DockerSource, DockerTls, TlsProblem};
use hypersh_reflector::{BackoffConfig, Informer};
use hypersh_watch::Filters;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use remote::{Pki, free_port};
use tokio::task::block_in_place;

/// A source on `url` with `tls` and short timeouts.
async fn source(url: &str, tls: Option<DockerTls>) -> Result<DockerSource, DockerError> {
    let mut builder = DockerSource::builder(DockerHost::parse(url).expect("url"))
        .connect_timeout(Duration::from_secs(2))
        .request_timeout(Duration::from_secs(10))
        .ping_interval(Duration::from_secs(1))
        .ping_timeout(Duration::from_secs(2));
    if let Some(tls) = tls {
        builder = builder.tls(tls);
    }
    builder.connect().await
}

/// An RSA key as (PKCS#8 for rcgen, PKCS#1 as `openssl genrsa` writes it).
fn rsa_key() -> (String, String) {
    let key = PKey::from_rsa(Rsa::generate(2048).expect("RSA")).expect("key");
    let pkcs8 = key.private_key_to_pem_pkcs8().expect("PKCS#8");
    let pkcs1 = key
        .rsa()
        .expect("RSA")
        .private_key_to_pem()
        .expect("PKCS#1");
    (
        String::from_utf8(pkcs8).expect("PEM"),
        String::from_utf8(pkcs1).expect("PEM"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_lists_and_watches_and_each_refusal_says_which_certificate() {
    let pki = Pki::new(Some(rsa_key()));
    let (port, other_port) = (free_port("127.0.0.1"), free_port("127.0.0.2"));
    let listen = [
        format!("127.0.0.1:{port}"),
        format!("127.0.0.2:{other_port}"),
    ];
    let Some(engine) = engine_or_skip_with("mutual TLS", pki.dockerd_args(&listen)) else {
        return;
    };
    let url = format!("tcp://127.0.0.1:{port}");

    // Mutual TLS with the good files: the informer lists, then sees what happens.
    let before = block_in_place(|| engine.run("before", &["tls=1"], &["sleep", "600"]));
    let good = DockerTls::from_cert_path(pki.client("good"));
    let informer = Informer::builder(source(&url, Some(good.clone())).await.expect("mutual TLS"))
        .filters(Filters::new().label("tls"))
        .backoff(BackoffConfig::default().initial(Duration::from_millis(100)))
        .build()
        .expect("informer");
    informer
        .wait_synced(Duration::from_secs(20))
        .await
        .expect("ready over TLS within 20 s");
    assert!(informer.store().get(&before).is_some(), "listed over TLS");
    let after = block_in_place(|| engine.run("after", &["tls=1"], &["true"]));
    let want = || block_in_place(|| engine.containers(Some("tls")).expect("the engine's list"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let cached: std::collections::BTreeMap<String, Seen> = common::cached(&informer);
        if cached == want() && cached.contains_key(&after) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cache did not follow the events over TLS: {cached:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    informer.shutdown().await;
    // `localhost` is in the daemon's certificate too.
    source(&format!("tcp://localhost:{port}"), Some(good.clone()))
        .await
        .expect("localhost is a name of the daemon's certificate");

    // Each refusal: a TLS error that names its certificate and says what to do.
    let refused = |result: Result<DockerSource, DockerError>| match result {
        Err(e @ DockerError::Tls { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("TLS") && text.contains("certificate"),
                "{text}"
            );
            e
        }
        other => panic!("expected a TLS error, got {other:?}"),
    };
    let problem = |e: &DockerError| match e {
        DockerError::Tls { problem, .. } => problem.clone(),
        _ => unreachable!(),
    };

    let wrong_ca = pki.client("wrong-ca");
    let e = refused(source(&url, Some(DockerTls::from_cert_path(&wrong_ca))).await);
    assert_eq!(
        problem(&e),
        TlsProblem::UntrustedServer {
            ca: Some(wrong_ca.join("ca.pem"))
        },
        "{e}"
    );
    assert!(!e.is_auth());

    let e = refused(source(&format!("tcp://127.0.0.2:{other_port}"), Some(good.clone())).await);
    assert_eq!(
        problem(&e),
        TlsProblem::NameMismatch {
            host: "127.0.0.2".to_owned()
        },
        "{e}"
    );

    let e = refused(source(&url, Some(DockerTls::from_cert_path(pki.client("no-cert")))).await);
    assert_eq!(problem(&e), TlsProblem::ClientCertRequired, "{e}");
    assert!(
        e.is_auth(),
        "a missing client certificate is an auth failure"
    );

    let foreign = pki.client("foreign");
    let e = refused(source(&url, Some(DockerTls::from_cert_path(&foreign))).await);
    assert_eq!(
        problem(&e),
        TlsProblem::ClientCertRefused {
            cert: foreign.join("cert.pem")
        },
        "{e}"
    );
    assert!(
        e.to_string()
            .contains(&foreign.join("cert.pem").display().to_string())
    );
    assert!(
        e.is_auth(),
        "a refused client certificate is an auth failure"
    );

    // Plain HTTP to the TLS port.
    let e = refused(source(&url, None).await);
    assert_eq!(problem(&e), TlsProblem::TlsRequired, "{e}");
    assert!(e.to_string().contains("DOCKER_TLS_VERIFY"), "{e}");
}

/// A client key that does not fit: refused before any connection, naming the file.
#[tokio::test]
async fn unusable_files_are_named_before_connecting() {
    let pki = Pki::new(None);
    let dir = pki.client("good");
    std::fs::write(dir.join("key.pem"), "not a key").expect("write");
    // Nothing listens there: the files are read first.
    let url = format!("tcp://127.0.0.1:{}", free_port("127.0.0.1"));
    match source(&url, Some(DockerTls::from_cert_path(&dir))).await {
        Err(DockerError::TlsFile { path, reason }) => {
            assert_eq!(path, dir.join("key.pem"));
            assert!(reason.contains("not a PEM private key"), "{reason}");
        }
        other => panic!("expected a TLS file error, got {other:?}"),
    }
    std::fs::remove_file(dir.join("cert.pem")).expect("rm");
    match source(&url, Some(DockerTls::from_cert_path(&dir))).await {
        Err(e @ DockerError::TlsFile { .. }) => {
            assert!(e.to_string().contains("cert.pem"), "{e}");
        }
        other => panic!("expected a TLS file error, got {other:?}"),
    }
}
