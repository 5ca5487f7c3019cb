//! The body of `GET /containers/json`, decoded as it arrives: the shared
//! [`ArraySplitter`] finds each container in the chunks, [`Container::from_list_element`]
//! decodes it (serde's result, by a faster path), and the sink gets it before the next
//! chunk is read. Memory holds one chunk and one container, not the body; two bounds in
//! bytes hold against a daemon (or proxy) that sends too much.

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hypersh_watch::Container;
use hypersh_watch::list::{ArraySplitter, SplitError};
use serde::de::Error as _;

use crate::error::DockerError;

/// The bounds of one list, in bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ListLimits {
    /// The whole body (the builder's `max_body`).
    pub(crate) max_body: usize,
    /// One container of it (the builder's `max_line`).
    pub(crate) max_container: usize,
}

/// Why decoding stopped.
enum Stop {
    Split(SplitError),
    Decode(serde_json::Error),
}

impl From<SplitError> for Stop {
    fn from(e: SplitError) -> Self {
        Self::Split(e)
    }
}

impl Stop {
    fn into_error(self, what: &str, limits: ListLimits) -> DockerError {
        match self {
            Self::Split(SplitError::ListTooLarge { .. }) => DockerError::BodyTooLarge {
                what: what.to_owned(),
                limit: limits.max_body,
            },
            Self::Split(SplitError::ElementTooLarge { .. }) => DockerError::ContainerTooLarge {
                limit: limits.max_container,
            },
            Self::Split(e) => DockerError::List(serde_json::Error::custom(e)),
            Self::Decode(e) => DockerError::List(e),
        }
    }
}

/// Reads `body` (the answer to `what`, `GET /v1.41/containers/json`) and hands each
/// container to `sink` as soon as it is whole. When it fails, `sink` may already have seen
/// some containers.
pub(crate) async fn read(
    mut body: Incoming,
    what: &str,
    endpoint: &str,
    limits: ListLimits,
    mut sink: impl FnMut(Container),
) -> Result<(), DockerError> {
    let mut splitter = ArraySplitter::new(limits.max_container).max_bytes(limits.max_body);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|source| DockerError::Http {
            endpoint: endpoint.to_owned(),
            source,
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        splitter
            .feed(&data, |element| {
                sink(Container::from_list_element(element).map_err(Stop::Decode)?);
                Ok::<_, Stop>(())
            })
            .map_err(|stop| stop.into_error(what, limits))?;
    }
    splitter
        .finish()
        .map_err(|e| Stop::Split(e).into_error(what, limits))
}

#[cfg(test)]
mod tests {
    use super::*;

    use bytes::Bytes;
    use http_body_util::Full;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    /// `body` served over a real HTTP/1.1 connection (an in-memory pipe), in chunks, and
    /// read back with [`read`].
    async fn list(body: Vec<u8>, limits: ListLimits) -> (Vec<Container>, Result<(), DockerError>) {
        let (client, server) = tokio::io::duplex(4096);
        let body = Bytes::from(body);
        tokio::spawn(async move {
            let service = service_fn(move |_req| {
                let body = body.clone();
                async move { Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(body))) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(server), service)
                .await;
        });
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(client))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        let request = http::Request::get("/containers/json")
            .body(http_body_util::Empty::<Bytes>::new())
            .expect("request");
        let response = sender.send_request(request).await.expect("response");
        let mut got = Vec::new();
        let result = read(
            response.into_body(),
            "GET /containers/json",
            "test",
            limits,
            |c| got.push(c),
        )
        .await;
        (got, result)
    }

    const ROOMY: ListLimits = ListLimits {
        max_body: 1 << 20,
        max_container: 1 << 16,
    };

    #[tokio::test]
    async fn the_list_decodes_one_container_at_a_time() {
        let body = br#"[{"Id":"a","Names":["/x"],"State":"running","Labels":{"k":"v"}},
            {"Id":"b","State":"exited","Labels":{}}]"#;
        let (got, result) = list(body.to_vec(), ROOMY).await;
        result.expect("decodes");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].label("k"), Some("v"));
        assert_eq!(got[1].id(), "b");
        for bad in [&b"{}"[..], b"[1]", b"[] x", b"[{\"Id\":\"a\"}", b""] {
            let (_, result) = list(bad.to_vec(), ROOMY).await;
            assert!(
                matches!(result, Err(DockerError::List(_))),
                "{:?}: {result:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    /// List items as each engine writes them: Docker 20.10 and Podman 4.3.1 (read off
    /// the engines on this machine; Podman adds fields of its create config and writes
    /// `"Networks":null`, and its `stopped` state), and a `ContainerSummary` shaped as
    /// Docker's API reference describes it for 1.57 (`ImageManifestDescriptor`, `Health`
    /// since 1.52, `HostConfig.Annotations`, `GwPriority`).
    #[tokio::test]
    async fn list_items_of_each_engine_and_of_newer_apis_decode() {
        let body = br#"[
{"Id":"65385103b63addba59f3e7671cbc7899f945f78b64ad594ce461c265d85fa6cd","Names":["/l1"],"Image":"hde-busybox:1","ImageID":"sha256:43581d679076abb56c12a6a53217cf4217c48faee14f0ef299d85bf49fd728f3","Command":"sleep 600","Created":1796641853,"Ports":[],"Labels":{"app":"web"},"State":"running","Status":"Up Less than a second","HostConfig":{"NetworkMode":"none"},"NetworkSettings":{"Networks":{"none":{"IPAMConfig":null,"Links":null,"Aliases":null,"NetworkID":"bed2e6945deef37a309dcdbd362217c1f83df13a6cab0cc800c7570d23593d2c","EndpointID":"5dab03bc7988b6055edb29c249ca1e6968cf971ad9822c330169799b8f9b85b5","Gateway":"","IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"MacAddress":"","DriverOpts":null}}},"Mounts":[]},
{"Id":"5fee1281a04fe557a188ee867d81c622281a9141bea96e613163d56b36693f82","Names":["/l1"],"Image":"localhost/bb:1","ImageID":"sha256:7b35fa3490e43f0b883a0910a90c856f29e65ceb5e242b0354c1f440d9717443","Command":"sleep 600","Created":1796641853,"Ports":[],"Labels":{"app":"web"},"State":"stopped","Status":"Exited (137) Less than a second ago","NetworkSettings":{"Networks":null},"Mounts":[],"Name":"","Config":null,"NetworkingConfig":null,"Platform":null,"AdjustCPUShares":false},
{"Id":"8dfafdbc3a40","Names":["/boring_feynman"],"Image":"ubuntu","ImageID":"sha256:d74508fb6632491cea586a1fd7d748dfc5274cd6fdfedee309ecdcbc2bf5cb82","ImageManifestDescriptor":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:c0537ff6a5218ef531ece93d4984efc99bbf3f7497c0a7726c88e2bb7584dc96","size":424,"platform":{"architecture":"arm","os":"windows","os.version":"10.0.19041.1165","variant":"v7"}},"Command":"echo 1","Created":1739811096,"Ports":[{"IP":"0.0.0.0","PrivatePort":8080,"PublicPort":80,"Type":"tcp"}],"SizeRw":122880,"SizeRootFs":1653948416,"Labels":{"com.example.vendor":"Acme"},"State":"running","Status":"Up 4 days","HostConfig":{"NetworkMode":"mynetwork","Annotations":{"io.kubernetes.docker.type":"container"}},"NetworkSettings":{"Networks":{"mynetwork":{"NetworkID":"08754567f1f40222263eab4102e1c733ae697e8e354aa9cd6e18d7402835292a","IPAddress":"172.17.0.4","Gateway":"172.17.0.1","MacAddress":"02:42:ac:11:00:04","IPPrefixLen":16,"GwPriority":10}}},"Mounts":[{"Type":"volume","Name":"myvolume","Source":"/var/lib/docker/volumes/myvolume/_data","Destination":"/usr/share/nginx/html/","Driver":"local","Mode":"z","RW":true,"Propagation":""}],"Health":{"Status":"healthy","FailingStreak":0}}
]"#;
        let (got, result) = list(body.to_vec(), ROOMY).await;
        result.expect("decodes");
        let states: Vec<_> = got.iter().map(|c| c.state().as_str()).collect();
        assert_eq!(states, ["running", "stopped", "running"]);
        assert_eq!(got[1].image(), "localhost/bb:1");
        assert_eq!(got[2].label("com.example.vendor"), Some("Acme"));
        assert_eq!(got[2].name(), Some("boring_feynman"));
    }

    #[tokio::test]
    async fn a_large_list_streams_through_small_chunks() {
        let containers: Vec<serde_json::Value> = (0..2000)
            .map(|i| serde_json::json!({"Id": format!("{i:064x}"), "Names": [format!("/c{i}")], "State": "running", "Labels": {"app": "web"}}))
            .collect();
        let body = serde_json::to_vec(&containers).expect("json");
        let (got, result) = list(body, ROOMY).await;
        result.expect("decodes");
        assert_eq!(got.len(), 2000);
        assert_eq!(got[1999].name(), Some("c1999"));
    }

    #[tokio::test]
    async fn the_bounds_name_their_settings() {
        let big = format!(r#"[{{"Id":"a","Labels":{{"k":"{}"}}}}]"#, "v".repeat(5000));
        let small = ListLimits {
            max_body: 1 << 20,
            max_container: 1000,
        };
        let (got, result) = list(big.clone().into_bytes(), small).await;
        let err = result.expect_err("a container over max_line");
        assert!(
            matches!(err, DockerError::ContainerTooLarge { limit: 1000 }),
            "{err:?}"
        );
        assert!(err.to_string().contains("max_line"), "{err}");
        assert!(got.is_empty());

        let many = format!("[{}]", vec![r#"{"Id":"a"}"#; 200].join(","));
        let tight = ListLimits {
            max_body: 1000,
            max_container: 1000,
        };
        let (got, result) = list(many.into_bytes(), tight).await;
        let err = result.expect_err("a list over max_body");
        assert!(
            matches!(err, DockerError::BodyTooLarge { limit: 1000, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("max_body"), "{err}");
        assert!(got.len() < 200, "stopped at the bound, not at the end");
    }
}
