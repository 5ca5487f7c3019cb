//! `ssh://` hosts, as the `docker` CLI reaches them: one `ssh ... -- HOST docker system
//! dial-stdio` process per connection, the HTTP connection over its stdin and stdout. The
//! process is killed when the connection is dropped; what it says on stderr (bounded) is
//! read, and when a request fails it is turned into an [`SshProblem`] that says what to do.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::process::Stdio;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;

use crate::error::DockerError;
use crate::host::SshHost;

/// How much of ssh's stderr is kept for an error message: the last bytes, where ssh says
/// why it gave up (what came before is read and dropped). Not configurable.
pub const MAX_SSH_STDERR: usize = 4096;

/// How long a failed request waits for ssh's stderr to end (the process exits).
const STDERR_WAIT: Duration = Duration::from_secs(2);

/// What went wrong with `ssh`, and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SshProblem {
    /// There is no `ssh` program to run.
    NotInstalled,
    /// The host's key is unknown or changed (`Host key verification failed`).
    HostKeyRefused,
    /// The host refused the login (`Permission denied`).
    AuthRefused,
    /// The ssh server cannot be reached (no such host, refused, timed out).
    Unreachable,
    /// The login worked, and the remote host has no `docker` command.
    RemoteDockerMissing,
    /// The remote `docker` CLI cannot reach its daemon.
    RemoteDaemonDown,
    /// Something else (ssh's words follow).
    Other,
}

impl fmt::Display for SshProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotInstalled => "there is no `ssh` program in PATH (install openssh-client)",
            Self::HostKeyRefused => {
                "the host's key is not known or has changed (add it to known_hosts, e.g. by one `ssh` to it, or check the host)"
            }
            Self::AuthRefused => {
                "the host refused the login (check the user, the key or ssh-agent, and the host's authorized_keys)"
            }
            Self::Unreachable => "cannot reach the ssh server (check the host name and port)",
            Self::RemoteDockerMissing => {
                "the remote host has no `docker` command in the PATH of a non-interactive login (install the docker CLI there)"
            }
            Self::RemoteDaemonDown => {
                "the remote `docker` CLI cannot reach its daemon (is dockerd running there, and may this user use it?)"
            }
            Self::Other => "ssh failed",
        })
    }
}

/// The problem ssh's stderr (lowercased) tells of; `None` when it says nothing.
fn classify(stderr: &str) -> Option<SshProblem> {
    let has = |s: &str| stderr.contains(s);
    Some(if has("host key verification failed") {
        SshProblem::HostKeyRefused
    } else if has("failed to open the raw stream connection")
        || has("cannot connect to the docker daemon")
        || has("is the docker daemon running")
    {
        // `docker system dial-stdio` could not open its daemon's socket (missing, refused,
        // or not this user's): before "permission denied", which it may say too.
        SshProblem::RemoteDaemonDown
    } else if has("permission denied") {
        SshProblem::AuthRefused
    } else if has("could not resolve hostname")
        || has("connection refused")
        || has("connection timed out")
        || has("no route to host")
        || has("network is unreachable")
    {
        SshProblem::Unreachable
    } else if has("docker: command not found")
        || has("docker: not found")
        || (has("docker") && has("no such file or directory") && !has("sock"))
    {
        SshProblem::RemoteDockerMissing
    } else if has("cannot connect to the docker daemon") || has("is the docker daemon running") {
        SshProblem::RemoteDaemonDown
    } else if stderr.trim().is_empty() {
        return None;
    } else {
        SshProblem::Other
    })
}

/// How to start the ssh process of a connection.
#[derive(Clone, Debug)]
pub(crate) struct SshCommand {
    program: String,
    args: Vec<String>,
}

impl SshCommand {
    /// `ssh EXTRA... -o ConnectTimeout=N -o BatchMode=yes -T [-l USER] [-p PORT] -- HOST
    /// docker [--host=unix://SOCKET] system dial-stdio`. `extra` comes first, so the
    /// user's options win (ssh keeps the first value of each); `BatchMode` makes a prompt
    /// for a password or a host key an error instead of a hang.
    pub(crate) fn new(host: &SshHost, extra: &[String], connect_timeout: Duration) -> Self {
        let mut args: Vec<String> = extra.to_vec();
        let given = extra.join(" ");
        if !given.contains("ConnectTimeout") {
            let secs = connect_timeout.as_secs() + u64::from(connect_timeout.subsec_nanos() > 0);
            args.push("-o".to_owned());
            args.push(format!("ConnectTimeout={}", secs.max(1)));
        }
        if !given.contains("BatchMode") {
            args.push("-o".to_owned());
            args.push("BatchMode=yes".to_owned());
        }
        args.push("-T".to_owned());
        if let Some(user) = host.user() {
            args.push("-l".to_owned());
            args.push(user.to_owned());
        }
        if let Some(port) = host.port() {
            args.push("-p".to_owned());
            args.push(port.to_string());
        }
        args.push("--".to_owned());
        args.push(host.host().to_owned());
        args.push("docker".to_owned());
        if let Some(socket) = host.socket() {
            args.push(format!("--host=unix://{}", socket.display()));
        }
        args.extend(["system", "dial-stdio"].map(str::to_owned));
        Self {
            program: "ssh".to_owned(),
            args,
        }
    }

    /// The arguments after `ssh`.
    #[cfg(test)]
    pub(crate) fn args(&self) -> &[String] {
        &self.args
    }

    /// Starts the process of one connection.
    pub(crate) fn spawn(&self, endpoint: &str) -> Result<(SshStream, Stderr), DockerError> {
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| DockerError::Ssh {
                endpoint: endpoint.to_owned(),
                problem: if e.kind() == io::ErrorKind::NotFound {
                    SshProblem::NotInstalled
                } else {
                    SshProblem::Other
                },
                stderr: e.to_string(),
            })?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(DockerError::Ssh {
                endpoint: endpoint.to_owned(),
                problem: SshProblem::Other,
                stderr: "the ssh process has no pipes".to_owned(),
            });
        };
        let endpoint = endpoint.to_owned();
        let stderr = tokio::spawn(async move {
            let mut stderr = stderr;
            let mut kept = Vec::new();
            let mut buf = [0u8; 1024];
            loop {
                match stderr.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        kept.extend_from_slice(&buf[..n]);
                        let over = kept.len().saturating_sub(MAX_SSH_STDERR);
                        kept.drain(..over);
                    }
                }
            }
            let text = String::from_utf8_lossy(&kept).trim().to_owned();
            if !text.is_empty() {
                tracing::debug!(%endpoint, stderr = %text, "ssh ended");
            }
            text
        });
        Ok((
            SshStream {
                stdin,
                stdout,
                _child: child,
            },
            Stderr(stderr),
        ))
    }
}

/// What the ssh process of a connection writes on stderr, its last [`MAX_SSH_STDERR`]
/// bytes.
pub(crate) struct Stderr(JoinHandle<String>);

impl Stderr {
    /// `error` (of a request on this connection) as an ssh error when ssh's stderr says
    /// why: waits (a little) for the process to end and its stderr with it.
    pub(crate) async fn explain(self, error: DockerError, endpoint: &str) -> DockerError {
        let stderr = match tokio::time::timeout(STDERR_WAIT, self.0).await {
            Ok(Ok(text)) => text,
            _ => return error,
        };
        match classify(&stderr.to_lowercase()) {
            Some(problem) => DockerError::Ssh {
                endpoint: endpoint.to_owned(),
                problem,
                stderr,
            },
            None => error,
        }
    }
}

/// The connection: ssh's stdout to read, its stdin to write; the process is killed when
/// this is dropped.
pub(crate) struct SshStream {
    stdin: ChildStdin,
    stdout: ChildStdout,
    _child: Child,
}

impl AsyncRead for SshStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdout).poll_read(cx, buf)
    }
}

impl AsyncWrite for SshStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stdin).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::DockerHost;

    fn ssh_host(url: &str) -> SshHost {
        match DockerHost::parse(url).unwrap() {
            DockerHost::Ssh(s) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_command_is_the_docker_clis() {
        let cmd = SshCommand::new(
            &ssh_host("ssh://me@build-1:2222"),
            &[],
            Duration::from_millis(4500),
        );
        assert_eq!(
            cmd.args().join(" "),
            "-o ConnectTimeout=5 -o BatchMode=yes -T -l me -p 2222 -- build-1 docker system dial-stdio"
        );
        let extra = [
            "-i".to_owned(),
            "/k".to_owned(),
            "-o".to_owned(),
            "BatchMode=no".to_owned(),
        ];
        let cmd = SshCommand::new(
            &ssh_host("ssh://h/run/d.sock"),
            &extra,
            Duration::from_secs(5),
        );
        assert_eq!(
            cmd.args().join(" "),
            "-i /k -o BatchMode=no -o ConnectTimeout=5 -T -- h docker --host=unix:///run/d.sock system dial-stdio"
        );
    }

    #[test]
    fn stderr_says_the_problem() {
        let cases = [
            ("Host key verification failed.", SshProblem::HostKeyRefused),
            (
                "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\r\nHost key verification failed.",
                SshProblem::HostKeyRefused,
            ),
            (
                "root@127.0.0.1: Permission denied (publickey).",
                SshProblem::AuthRefused,
            ),
            (
                "ssh: connect to host 127.0.0.1 port 1: Connection refused",
                SshProblem::Unreachable,
            ),
            (
                "ssh: Could not resolve hostname nowhere: Name or service not known",
                SshProblem::Unreachable,
            ),
            (
                "bash: line 1: docker: command not found",
                SshProblem::RemoteDockerMissing,
            ),
            ("sh: 1: docker: not found", SshProblem::RemoteDockerMissing),
            (
                "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
                SshProblem::RemoteDaemonDown,
            ),
            (
                "failed to open the raw stream connection: dial unix /run/docker.sock: connect: no such file or directory",
                SshProblem::RemoteDaemonDown,
            ),
            (
                "failed to open the raw stream connection: dial unix /run/docker.sock: connect: permission denied",
                SshProblem::RemoteDaemonDown,
            ),
            (
                "kex_exchange_identification: read: reset",
                SshProblem::Other,
            ),
        ];
        for (stderr, want) in cases {
            assert_eq!(classify(&stderr.to_lowercase()), Some(want), "{stderr}");
        }
        assert_eq!(classify("  \n"), None);
    }

    #[tokio::test]
    async fn no_ssh_program_is_said_so() {
        let mut cmd = SshCommand::new(&ssh_host("ssh://h"), &[], Duration::from_secs(1));
        cmd.program = "/nonexistent/ssh".to_owned();
        match cmd.spawn("ssh://h").map(drop) {
            Err(
                e @ DockerError::Ssh {
                    problem: SshProblem::NotInstalled,
                    ..
                },
            ) => assert!(e.to_string().contains("openssh-client"), "{e}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn stderr_is_kept_up_to_its_bound() {
        let cmd = SshCommand {
            program: "sh".to_owned(),
            args: vec![
                "-c".to_owned(),
                "yes x | head -c 100000 >&2; echo ' Permission denied' >&2".to_owned(),
            ],
        };
        let (stream, stderr) = cmd.spawn("ssh://h").expect("sh runs");
        let e = stderr
            .explain(
                DockerError::StreamEnded {
                    endpoint: "ssh://h".to_owned(),
                },
                "ssh://h",
            )
            .await;
        drop(stream);
        match e {
            DockerError::Ssh {
                stderr, problem, ..
            } => {
                // The last bytes, trimmed of line ends.
                assert!(
                    (MAX_SSH_STDERR - 3..=MAX_SSH_STDERR).contains(&stderr.len()),
                    "{}",
                    stderr.len()
                );
                assert!(stderr.ends_with("x\n Permission denied"), "{stderr}");
                assert_eq!(problem, SshProblem::AuthRefused);
            }
            other => panic!("{other:?}"),
        }
    }
}
