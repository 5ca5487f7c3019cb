//! The Docker source over `ssh://`, as the `docker` CLI: `ssh ... docker system
//! dial-stdio` to a private sshd on 127.0.0.1 (its own host key, keys only, `UsePAM no`)
//! whose `docker` CLI reaches a private dockerd through `DOCKER_HOST` set by the
//! authorized key's `environment=`. With `CI` set this must run; elsewhere it skips (with
//! a message) when dockerd, docker, busybox, sshd, ssh or root is missing.

mod common;
mod remote;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Kind, Seen, engine_or_skip, skip};
use hypersh_docker::{DockerError, DockerHost, DockerSource, SshProblem};
use hypersh_reflector::{BackoffConfig, Informer};
use hypersh_watch::Filters;
use remote::{free_port, sshd_or_skip};
use tokio::task::block_in_place;

/// A source on `url` with these ssh arguments and short timeouts.
async fn source(url: &str, ssh_args: Vec<String>) -> Result<DockerSource, DockerError> {
    DockerSource::builder(DockerHost::parse(url).expect("url"))
        .ssh_args(ssh_args)
        .connect_timeout(Duration::from_secs(5))
        .request_timeout(Duration::from_secs(20))
        .ping_interval(Duration::from_secs(2))
        .ping_timeout(Duration::from_secs(10))
        .connect()
        .await
}

/// The problem of an ssh error; panics on another result.
fn problem(result: Result<DockerSource, DockerError>) -> (SshProblem, DockerError) {
    match result {
        Err(e @ DockerError::Ssh { .. }) => {
            let DockerError::Ssh { problem, .. } = &e else {
                unreachable!()
            };
            (problem.clone(), e)
        }
        other => panic!("expected an ssh error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_informer_runs_over_ssh_and_each_refusal_says_what_to_do() {
    let Some(engine) = engine_or_skip(Kind::Docker, "docker over ssh") else {
        return;
    };
    let Some(sshd) = sshd_or_skip("docker over ssh", &engine.url()) else {
        return;
    };
    let url = sshd.url();

    let before = block_in_place(|| engine.run("before", &["ssh=1"], &["sleep", "600"]));
    let good = source(&url, sshd.ssh_args("good", true))
        .await
        .unwrap_or_else(|e| panic!("docker over ssh: {e}\nsshd: {}", sshd.log()));
    let informer = Informer::builder(good)
        .filters(Filters::new().label("ssh"))
        .backoff(BackoffConfig::default().initial(Duration::from_millis(100)))
        .build()
        .expect("informer");
    informer
        .wait_synced(Duration::from_secs(30))
        .await
        .expect("ready over ssh within 30 s");
    assert!(informer.store().get(&before).is_some(), "listed over ssh");
    let after = block_in_place(|| engine.run("after", &["ssh=1"], &["true"]));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let cached: BTreeMap<String, Seen> = common::cached(&informer);
        let want = block_in_place(|| engine.containers(Some("ssh")).expect("the engine's list"));
        if cached == want && cached.contains_key(&after) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cache did not follow the events over ssh: {cached:?} / {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(informer.status().reconnects, 0, "one watch all along");
    informer.shutdown().await;

    let (p, e) = problem(source(&url, sshd.ssh_args("good", false)).await);
    assert_eq!(p, SshProblem::HostKeyRefused, "{e}");
    assert!(
        e.to_string().contains("Host key verification failed"),
        "{e}"
    );
    assert!(e.is_auth());

    let (p, e) = problem(source(&url, sshd.ssh_args("stranger", true)).await);
    assert_eq!(p, SshProblem::AuthRefused, "{e}");
    assert!(e.to_string().contains("Permission denied"), "{e}");
    assert!(e.is_auth());

    let (p, e) = problem(source(&url, sshd.ssh_args("nodocker", true)).await);
    assert_eq!(p, SshProblem::RemoteDockerMissing, "{e}");
    assert!(!e.is_auth());

    let (p, e) = problem(source(&url, sshd.ssh_args("nodaemon", true)).await);
    assert_eq!(p, SshProblem::RemoteDaemonDown, "{e}");

    let nobody = format!("ssh://root@127.0.0.1:{}", free_port("127.0.0.1"));
    let (p, e) = problem(source(&nobody, sshd.ssh_args("good", true)).await);
    assert_eq!(p, SshProblem::Unreachable, "{e}");
}
