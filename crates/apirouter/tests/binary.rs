//! The `apirouter` binary: the first stdout line announces the real address.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

async fn first_line(args: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_apirouter"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("no first line in time")
        .unwrap()
        .expect("stdout closed");
    child.kill().await.unwrap();
    line
}

fn port_of(line: &str, scheme: &str) -> u16 {
    let rest = line
        .strip_prefix(&format!("listening on {scheme}://127.0.0.1:"))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    rest.parse().unwrap()
}

#[tokio::test]
async fn prints_the_real_address_first() {
    let line = first_line(&["--listen", "127.0.0.1:0"]).await;
    assert_ne!(port_of(&line, "https"), 0);
    let line = first_line(&[
        "--listen",
        "127.0.0.1:0",
        "--tls",
        "off",
        "--credentials",
        "a:b",
        "--containers",
        "3",
        "--churn",
        "5",
        "--churn-for",
        "1",
        "--seed",
        "4",
        "--shape",
        "k8s",
        "--emit",
        "10",
        "--region",
        "us-west-1",
    ])
    .await;
    assert_ne!(port_of(&line, "http"), 0);
}

#[tokio::test]
async fn serves_a_given_certificate() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = std::env::temp_dir().join(format!("apirouter-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let line = first_line(&[
        "--listen",
        "127.0.0.1:0",
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ])
    .await;
    std::fs::remove_dir_all(&dir).unwrap();
    assert_ne!(port_of(&line, "https"), 0);
}

#[tokio::test]
async fn bad_arguments_fail() {
    let status = Command::new(env!("CARGO_BIN_EXE_apirouter"))
        .args(["--shape", "yaml"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .unwrap();
    assert!(!status.success());
}

#[tokio::test]
async fn its_log_has_no_colour_codes_when_stderr_is_not_a_terminal() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_apirouter"))
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match lines.next_line().await {
                Ok(Some(line)) if line.contains("router listening") => break line,
                Ok(Some(_)) => {}
                other => panic!("stderr ended before the listening line: {other:?}"),
            }
        }
    })
    .await
    .expect("the listening line in time");
    child.kill().await.unwrap();
    assert!(line.contains(" INFO "), "{line:?}");
    assert!(!line.contains('\u{1b}'), "colour codes in a pipe: {line:?}");
}
