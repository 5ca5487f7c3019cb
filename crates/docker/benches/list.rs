//! The Docker source's container list, end to end and without a daemon: a thread serves a
//! synthetic `GET /containers/json` body of `--containers` entries (about 1.5 KiB each,
//! the shape a 20.10 engine writes) on a Unix socket, and `Source::list` reads it,
//! handing each container to a sink that drops it.
//!
//! ```text
//! cargo bench -p hypersh-docker --bench list -- [--containers 30000] [--runs 5]
//! ```
//!
//! Prints, for each run and as medians: the wall time of the list, containers/s, the CPU
//! time of the thread that reads it (`/proc/thread-self/schedstat`; the serving thread is
//! another), and the peak heap the list itself held above what was allocated before it (sampled in the sink,
//! with a counting global allocator): the body buffered whole, or one chunk and one
//! container when it is decoded as it arrives.

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cap::Cap;
use hypersh_docker::{ApiVersion, DockerHost, DockerSource};
use hypersh_reflector::Source;
use hypersh_watch::Filters;

#[global_allocator]
static ALLOCATOR: Cap<std::alloc::System> = Cap::new(std::alloc::System, usize::MAX);

fn main() -> Result<(), String> {
    let mut containers = 30_000usize;
    let mut runs = 5usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> Result<usize, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} takes a number"))
        };
        match arg.as_str() {
            "--containers" => containers = value("--containers")?,
            "--runs" => runs = value("--runs")?,
            // `cargo bench` passes `--bench`.
            "--bench" => {}
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let body = Arc::new(list_body(containers));
    let dir = PathBuf::from(format!("/tmp/hdl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let socket = dir.join("d.sock");
    let listener = UnixListener::bind(&socket).map_err(|e| e.to_string())?;
    let served = body.clone();
    std::thread::spawn(move || serve(&listener, &served));

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let result = rt.block_on(async {
        let source = DockerSource::builder(
            DockerHost::parse(&format!("unix://{}", socket.display()))
                .map_err(|e| e.to_string())?,
        )
        .api_version(ApiVersion::MINIMUM)
        .request_timeout(Duration::from_secs(120))
        .connect()
        .await
        .map_err(|e| e.to_string())?;
        println!(
            "list of {containers} containers, {:.1} MB body, {runs} runs",
            body.len() as f64 / 1e6
        );
        let (mut walls, mut cpus, mut peaks) = (Vec::new(), Vec::new(), Vec::new());
        for run in 0..runs {
            let before = ALLOCATOR.allocated();
            let peak = AtomicUsize::new(0);
            let mut seen = 0usize;
            let started = Instant::now();
            let cpu_before = thread_cpu_seconds();
            source
                .list(&Filters::new(), |c| {
                    seen += 1;
                    drop(c);
                    peak.fetch_max(ALLOCATOR.allocated(), Ordering::Relaxed);
                })
                .await
                .map_err(|e| e.to_string())?;
            let wall = started.elapsed().as_secs_f64();
            let cpu = thread_cpu_seconds() - cpu_before;
            if seen != containers {
                return Err(format!("listed {seen} of {containers}"));
            }
            let peak = peak.load(Ordering::Relaxed).saturating_sub(before);
            println!(
                "run {run}: {wall:.3} s, {:.0} containers/s, cpu {cpu:.3} s, peak heap {:.2} MB",
                containers as f64 / wall,
                peak as f64 / 1e6
            );
            walls.push(wall);
            cpus.push(cpu);
            peaks.push(peak as f64);
        }
        let wall = median(&mut walls);
        println!(
            "median: {wall:.3} s, {:.0} containers/s, cpu {:.3} s, peak heap {:.2} MB",
            containers as f64 / wall,
            median(&mut cpus),
            median(&mut peaks) / 1e6
        );
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// CPU time of the calling thread, from the first field of its schedstat (nanoseconds).
fn thread_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns / 1e9)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A JSON array of `n` containers as a 20.10 engine lists them.
fn list_body(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 1600 + 2);
    out.push(b'[');
    for i in 0..n {
        if i > 0 {
            out.push(b',');
        }
        let id = format!("{:064x}", i + 0xc414_0a06);
        let state = ["running", "exited", "paused", "created"][i % 4];
        out.extend_from_slice(
            format!(
                r#"{{"Id":"{id}","Names":["/web-{i}"],"Image":"registry.example.com/team/web:1.{v}","ImageID":"sha256:{id}","Command":"/docker-entrypoint.sh nginx -g 'daemon off;'","Created":{created},"Ports":[{{"IP":"0.0.0.0","PrivatePort":80,"PublicPort":{port},"Type":"tcp"}},{{"PrivatePort":443,"Type":"tcp"}}],"Labels":{{"app":"web-{app}","com.docker.compose.project":"shop","com.docker.compose.service":"web","com.docker.compose.version":"2.20.2","maintainer":"NGINX Docker Maintainers <docker-maint@nginx.com>","tier":"frontend"}},"State":"{state}","Status":"Up 3 hours","HostConfig":{{"NetworkMode":"shop_default"}},"NetworkSettings":{{"Networks":{{"shop_default":{{"IPAMConfig":null,"Links":null,"Aliases":null,"NetworkID":"{id}","EndpointID":"{id}","Gateway":"172.18.0.1","IPAddress":"172.18.0.5","IPPrefixLen":16,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"MacAddress":"02:42:ac:12:00:05","DriverOpts":null}}}}}},"Mounts":[{{"Type":"bind","Source":"/srv/shop/web/conf","Destination":"/etc/nginx/conf.d","Mode":"ro","RW":false,"Propagation":"rprivate"}}]}}"#,
                v = i % 7,
                created = 1_700_000_000 + i,
                port = 30_000 + i % 20_000,
                app = i % 50,
            )
            .as_bytes(),
        );
    }
    out.push(b']');
    out
}

/// Answers each connection's request with the whole list, delimited by closing.
fn serve(listener: &UnixListener, body: &[u8]) {
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { return };
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let _ = conn.write_all(
            b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n",
        );
        let _ = conn.write_all(body);
    }
}
