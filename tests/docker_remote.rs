//! The examples on a remote Docker daemon: `informer --docker tcp://HOST:PORT` with
//! `DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=DIR` in its environment (as the `docker` CLI reads
//! them) speaks mutual TLS with `DIR/{ca,cert,key}.pem`, and a certificate the daemon
//! refuses makes it exit 1 with an error that names TLS and the certificate. On a private
//! dockerd with `--tlsverify` (the harness of `crates/docker/tests`). With `CI` set this
//! must run; elsewhere it skips when dockerd, docker, busybox or root is missing. The
//! informer runs over `ssh://` too (a private sshd whose `docker` reaches the private
//! daemon). And every example takes `--docker [URL]`.

mod common;
#[path = "../crates/docker/tests/common/mod.rs"]
mod engine;
#[path = "../crates/docker/tests/remote/mod.rs"]
mod remote;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::example;
use engine::{Kind, Seen, engine_or_skip, engine_or_skip_with, skip};
use hypersh::watch::Container;
use remote::{Pki, TempDir, free_port, sshd_or_skip};

/// `informer --docker URL --filter label=contract --run-for SECS --quiet --dump-cache
/// FILE` with the `docker` CLI's TLS environment for `cert_path`; killed after a minute.
fn informer(url: &str, cert_path: &Path, run_for: &str, dump: &Path) -> Output {
    let mut cmd = Command::new(example("informer"));
    cmd.env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", cert_path);
    informer_with(cmd, url, run_for, dump)
}

/// As [`informer`], with `cmd`'s environment.
fn informer_with(mut cmd: Command, url: &str, run_for: &str, dump: &Path) -> Output {
    let mut child = cmd
        .args(["--docker", url, "--filter", "label=contract"])
        .args(["--run-for", run_for, "--quiet", "--dump-cache"])
        .arg(dump)
        .env_remove("DOCKER_HOST")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("informer runs");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("informer did not stop within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

#[test]
fn informer_speaks_mutual_tls_from_the_docker_environment() {
    let pki = Pki::new(None);
    let port = free_port("127.0.0.1");
    let args = pki.dockerd_args(&[format!("127.0.0.1:{port}")]);
    let Some(engine) = engine_or_skip_with("informer --docker over TLS", args) else {
        return;
    };
    engine.run("ta", &["contract=1"], &["sleep", "600"]);
    engine.run("tb", &["contract=2"], &["true"]);
    engine.run("tc", &["other=1"], &["true"]);
    let url = format!("tcp://127.0.0.1:{port}");

    let dump = pki.dir.0.join("dump.json");
    let out = informer(&url, &pki.client("good"), "2", &dump);
    assert!(
        out.status.success(),
        "informer over TLS failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cached: Vec<Container> = common::read_dump_of(&dump, &url);
    let got: BTreeMap<String, Seen> = cached.iter().map(engine::seen).collect();
    let want = engine.containers(Some("contract")).expect("docker inspect");
    assert_eq!(got, want);
    assert_eq!(got.len(), 2);

    // A client certificate of another CA: refused by the daemon.
    let foreign = pki.client("foreign");
    let out = informer(&url, &foreign, "3", &pki.dir.0.join("refused.json"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "exit 1: {stderr}");
    assert!(
        stderr.contains("TLS") && stderr.contains("client certificate"),
        "the error names TLS and the certificate: {stderr}"
    );
    assert!(
        stderr.contains(&foreign.join("cert.pem").display().to_string()),
        "the error names the certificate file: {stderr}"
    );
}

/// `informer --docker ssh://root@127.0.0.1:PORT`: the dump equals the engine's list. The
/// informer runs the `ssh` of its PATH, as the `docker` CLI: here a script that adds the
/// test's key and known hosts.
#[test]
fn informer_runs_over_ssh() {
    let Some(engine) = engine_or_skip(Kind::Docker, "informer --docker over ssh") else {
        return;
    };
    let Some(sshd) = sshd_or_skip("informer --docker over ssh", &engine.url()) else {
        return;
    };
    engine.run("sa", &["contract=1"], &["sleep", "600"]);
    engine.run("sb", &["other=1"], &["true"]);
    let bin = TempDir::new("hdbin");
    let script = bin.0.join("ssh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nexec /usr/bin/ssh {} \"$@\"\n",
            sshd.ssh_args("good", true).join(" ")
        ),
    )
    .expect("write");
    let mut perms = std::fs::metadata(&script).expect("stat").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).expect("chmod");
    let path = format!(
        "{}:{}",
        bin.0.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new(example("informer"));
    cmd.env("PATH", path).env_remove("DOCKER_TLS_VERIFY");
    let dump = bin.0.join("dump.json");
    let out = informer_with(cmd, &sshd.url(), "3", &dump);
    assert!(
        out.status.success(),
        "informer over ssh failed: {}\nsshd: {}",
        String::from_utf8_lossy(&out.stderr),
        sshd.log()
    );
    let cached: Vec<Container> = common::read_dump_of(&dump, &sshd.url());
    let got: BTreeMap<String, Seen> = cached.iter().map(engine::seen).collect();
    assert_eq!(
        got,
        engine.containers(Some("contract")).expect("docker inspect")
    );
    assert_eq!(got.len(), 1);
}

/// Each example's `--help` shows `--docker [<URL>]`, and says which URLs it takes.
#[test]
fn every_example_takes_docker_url() {
    for name in ["informer", "controller", "metrics", "watch"] {
        let out = Command::new(example(name))
            .arg("--help")
            .output()
            .expect("the example runs");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name} --help: {help}");
        assert!(help.contains("--docker [<URL>]"), "{name}: {help}");
        for form in [
            "unix:///PATH",
            "tcp://HOST:PORT",
            "ssh://[USER@]HOST[:PORT]",
        ] {
            assert!(help.contains(form), "{name} --help names {form}: {help}");
        }
    }
}
