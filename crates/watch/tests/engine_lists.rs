//! The list as real engines send it, decoded into `Container`s: ports, networks and mounts
//! of containers in every state, on Docker Engine 20.10.24 (API 1.41) and Podman 4.3.1
//! (`tests/data/lists/`, captured from a private daemon of each on a bridge network, with
//! published, exposed-only and loopback ports, two networks, `none` and `host`, volumes,
//! bind mounts and a tmpfs), and an element in the shape of Docker's API 1.52 reference.
//! Each decodes, keeps what a proxy needs, and survives a dump and a second decode.

use hypersh_watch::container::{
    Container, ContainerState, MAX_KEPT_BYTES, Mount, MountType, Network, Port, PortType,
};

const DOCKER: &str = include_str!("data/lists/docker-20.10.24.json");
const PODMAN: &str = include_str!("data/lists/podman-4.3.1.json");

fn decode(list: &str) -> Vec<Container> {
    serde_json::from_str(list).expect("the engine's list decodes")
}

fn named<'a>(list: &'a [Container], name: &str) -> &'a Container {
    list.iter()
        .find(|c| c.name() == Some(name))
        .unwrap_or_else(|| panic!("no container {name}"))
}

/// A dump of `list` (the examples' `--dump-cache`) decodes back to the same containers.
fn round_trips(list: &[Container]) {
    let dump = serde_json::to_string(list).expect("serialise");
    let back: Vec<Container> = serde_json::from_str(&dump).expect("the dump decodes");
    assert_eq!(back, list);
}

#[test]
fn docker_running_containers_keep_ports_addresses_and_mounts() {
    let list = decode(DOCKER);
    assert_eq!(list.len(), 11);
    let web = named(&list, "web");
    assert_eq!(web.state(), ContainerState::Running);
    // Published on all addresses: one entry for IPv4 and one for IPv6, per port.
    assert_eq!(
        web.ports(),
        [
            Port::new(53, PortType::Udp).published("0.0.0.0", 53),
            Port::new(53, PortType::Udp).published("::", 53),
            Port::new(80, PortType::Tcp).published("0.0.0.0", 8081),
            Port::new(80, PortType::Tcp).published("::", 8081),
        ]
    );
    assert_eq!(web.ports()[3].to_string(), "[::]:8081->80/tcp");
    let bridge = web.network("bridge").expect("on the bridge");
    assert_eq!(
        *bridge,
        Network::new("bridge")
            .with_network_id("17e46f547a6cf8848be2781a1d22070a277221f621eafc38e63fde823ef0075f")
            .with_ip_address("10.99.0.2")
            .with_gateway("10.99.0.1")
            .with_mac_address("02:42:0a:63:00:02")
    );
    assert_eq!(bridge.ip(), Some("10.99.0.2".parse().unwrap()));
    // By destination: Docker writes them in a Go map's order, which changes between lists.
    assert_eq!(
        web.mounts(),
        [
            Mount::new(
                MountType::Volume,
                "/tmp/hdm-23870/data/volumes/data/_data",
                "/data"
            ),
            Mount::new(MountType::Tmpfs, "", "/tmp"),
            Mount::new(MountType::Bind, "/tmp/hdm-23870/html", "/www").with_rw(false),
        ]
    );
    let reordered = web
        .clone()
        .into_builder()
        .mounts(web.mounts().iter().rev().cloned());
    assert_eq!(reordered.build(), *web);

    // An exposed port without publishing has neither IP nor PublicPort; a loopback one.
    let rexp = named(&list, "rexp");
    assert_eq!(
        rexp.ports(),
        [
            Port::new(7001, PortType::Tcp),
            Port::new(7002, PortType::Tcp).published("127.0.0.1", 9999),
        ]
    );
    // Two networks, in name order, each with its own address.
    let multi = named(&list, "multi");
    let addresses: Vec<(&str, &str)> = multi
        .networks()
        .iter()
        .map(|n| (n.name(), n.ip_address()))
        .collect();
    assert_eq!(
        addresses,
        [("appnet", "10.98.0.2"), ("bridge", "10.99.0.3")]
    );
    // `none` and `host` never carry an address.
    for name in ["none", "host"] {
        let c = named(&list, name);
        assert_eq!(c.networks().len(), 1);
        assert_eq!(c.networks()[0].name(), name);
        assert_eq!(c.networks()[0].ip(), None, "{name}");
        assert!(c.ports().is_empty());
    }
    // Containers of one list on the same network keep one copy of its 64-character id.
    let ids: Vec<&str> = list
        .iter()
        .filter_map(|c| c.network("bridge"))
        .map(Network::network_id)
        .filter(|id| !id.is_empty())
        .collect();
    assert!(ids.len() > 3);
    assert!(ids.iter().all(|id| id.as_ptr() == ids[0].as_ptr()));
    // Paused: still holds its address and ports.
    let paused = named(&list, "paused");
    assert_eq!(paused.state(), ContainerState::Paused);
    assert_eq!(paused.ports().len(), 2);
    assert_eq!(paused.networks()[0].ip_address(), "10.99.0.5");
    round_trips(&list);
}

#[test]
fn docker_created_and_stopped_containers_have_no_address_nor_ports() {
    let list = decode(DOCKER);
    for name in ["created", "cexp", "sexp"] {
        let c = named(&list, name);
        assert_ne!(c.state(), ContainerState::Running, "{name}");
        assert!(
            c.ports().is_empty(),
            "{name}: Docker lists no port unless running"
        );
        let bridge = c.network("bridge").expect("still attached");
        assert_eq!(
            (bridge.ip_address(), bridge.gateway(), bridge.mac_address()),
            ("", "", ""),
            "{name}"
        );
    }
    // Never started: not even the network's id. Stopped: the id stays.
    assert_eq!(named(&list, "created").networks()[0].network_id(), "");
    assert_eq!(named(&list, "sexp").networks()[0].network_id().len(), 64);
    // The bind mount of a created container is listed already.
    assert_eq!(
        named(&list, "created").mounts(),
        [Mount::new(MountType::Bind, "/tmp/hdm-23870/html", "/www").with_rw(false)]
    );
    // The spec's own element (docker.md): the `none` network with every field empty.
    let spec: Container = serde_json::from_str(
        r#"{"Id": "5b778df99cbd1850c7b7be9d34fc5a14f13418d152cc1c8f6d712e02d235f86e", "Names": ["/c1"], "Image": "localbb:1", "ImageID": "sha256:65086c63123166993d58036d9b5a362bf68c1e37f53c25a4bf24fa59edffb75b", "Command": "true", "Created": 1796462791, "Ports": [], "Labels": {}, "State": "created", "Status": "Created", "HostConfig": {"NetworkMode": "none"}, "NetworkSettings": {"Networks": {"none": {"IPAMConfig": null, "Links": null, "Aliases": null, "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": null}}}, "Mounts": []}"#,
    )
    .expect("the spec's element decodes");
    assert_eq!(spec.networks(), [Network::new("none")]);
    assert!(spec.ports().is_empty() && spec.mounts().is_empty());
}

#[test]
fn podman_lists_ports_in_every_state_and_names_for_network_ids() {
    let list = decode(PODMAN);
    assert_eq!(list.len(), 5);
    // Published ports without `IP` when bound to all addresses, and in every state;
    // an exposed-only port (`--expose 7000`) is not listed.
    let prun = named(&list, "prun");
    assert_eq!(
        prun.ports(),
        [
            Port::new(53, PortType::Udp).published("127.0.0.1", 5353),
            Port::new(80, PortType::Tcp).published("", 8181),
        ]
    );
    assert_eq!(prun.ports()[1].ip(), None);
    assert_eq!(prun.ports()[1].to_string(), "8181->80/tcp");
    assert_eq!(
        named(&list, "pcreated").ports(),
        [Port::new(80, PortType::Tcp).published("", 8180)]
    );
    assert_eq!(
        named(&list, "pstopped").ports(),
        [Port::new(80, PortType::Tcp).published("", 8182)]
    );
    // `NetworkID` is the network's name; a stopped container has no address.
    let podman = prun.network("podman").expect("on podman's network");
    assert_eq!(podman.network_id(), "podman");
    assert_eq!(podman.ip_address(), "10.88.0.2");
    assert_eq!(podman.gateway(), "10.88.0.1");
    assert_eq!(podman.mac_address(), "f2:a5:27:fe:ea:d1");
    assert_eq!(named(&list, "pstopped").networks()[0].ip(), None);
    let multi: Vec<&str> = named(&list, "pmulti")
        .networks()
        .iter()
        .map(Network::name)
        .collect();
    assert_eq!(multi, ["pnet", "podman"]);
    // `--network none`: `"Networks": null`.
    assert!(named(&list, "pnone").networks().is_empty());
    // The tmpfs of `--mount type=tmpfs` is not listed by Podman.
    assert_eq!(
        prun.mounts(),
        [
            Mount::new(
                MountType::Volume,
                "/tmp/hdm-23870/pm/storage/volumes/pvol/_data",
                "/data"
            ),
            Mount::new(MountType::Bind, "/tmp/hdm-23870/html", "/www").with_rw(false),
        ]
    );
    round_trips(&list);
}

#[test]
fn newer_api_fields_are_tolerated() {
    // API 1.52's ContainerSummary (Docker's reference): `Health`,
    // `ImageManifestDescriptor`, and more endpoint fields (`GwPriority`, `DNSNames`), an
    // IPv6 address; older APIs' mounts without `Type`.
    let c: Container = serde_json::from_str(
        r#"{"Id":"aa","Names":["/api"],"Image":"nginx","ImageID":"sha256:1",
        "ImageManifestDescriptor":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:2","size":424},
        "Command":"nginx","Created":1739811096,"Ports":[{"IP":"::","PrivatePort":80,"PublicPort":8080,"Type":"tcp"},{"PrivatePort":9000,"Type":"sctp"}],
        "SizeRw":122880,"SizeRootFs":1653948416,"Labels":{},"State":"running","Status":"Up 4 days",
        "HostConfig":{"NetworkMode":"mynet","Annotations":{"io.kubernetes.docker.type":"container"}},
        "Health":{"Status":"healthy","FailingStreak":0},
        "NetworkSettings":{"Networks":{"mynet":{"IPAMConfig":{"IPv4Address":"172.28.5.4"},"Links":null,"MacAddress":"02:42:ac:1c:05:04","Aliases":["api"],"DriverOpts":null,"GwPriority":10,"NetworkID":"08754567f1f40222263eab4102e1c733ae697e8e354aa9cd6e18d7402835292a","EndpointID":"b88f8b","Gateway":"172.28.5.254","IPAddress":"172.28.5.4","IPPrefixLen":16,"IPv6Gateway":"2001:db8:2::100","GlobalIPv6Address":"2001:db8::5689","GlobalIPv6PrefixLen":64,"DNSNames":["api","aa"]}}},
        "Mounts":[{"Type":"volume","Name":"myvolume","Source":"/var/lib/docker/volumes/myvolume/_data","Destination":"/usr/share/nginx/html/","Driver":"local","Mode":"z","RW":true,"Propagation":""},
                  {"Name":"fac362","Source":"/data","Destination":"/data","Driver":"local","Mode":"ro,Z","RW":false,"Propagation":""},
                  {"Type":"image","Source":"","Destination":"/img","RW":false}]}"#,
    )
    .expect("decodes");
    assert_eq!(c.ports()[0].port_type(), PortType::Tcp);
    assert_eq!(c.ports()[1].port_type(), PortType::Sctp);
    let n = &c.networks()[0];
    assert_eq!(n.global_ipv6_address(), "2001:db8::5689");
    assert_eq!(n.ip(), Some("172.28.5.4".parse().unwrap()));
    assert_eq!(
        Network::new("v6only")
            .with_global_ipv6_address("2001:db8::5")
            .ip(),
        Some("2001:db8::5".parse().unwrap())
    );
    let kinds: Vec<MountType> = c.mounts().iter().map(Mount::mount_type).collect();
    assert_eq!(
        kinds,
        [MountType::Unknown, MountType::Image, MountType::Volume]
    );
    round_trips(std::slice::from_ref(&c));
}

#[test]
fn nulls_and_missing_lists_are_empty_and_cost_nothing() {
    for json in [
        r#"{"Id":"a"}"#,
        r#"{"Id":"a","Ports":null,"NetworkSettings":null,"Mounts":null}"#,
        r#"{"Id":"a","Ports":[],"NetworkSettings":{"Networks":null},"Mounts":[]}"#,
        r#"{"Id":"a","NetworkSettings":{"Networks":{}}}"#,
        r#"{"Id":"a","NetworkSettings":{}}"#,
    ] {
        let c: Container = serde_json::from_str(json).expect(json);
        assert!(c.ports().is_empty() && c.networks().is_empty() && c.mounts().is_empty());
        assert_eq!(c, Container::builder("a").build(), "{json}");
    }
    // Nulls inside records are their defaults.
    let c: Container = serde_json::from_str(
        r#"{"Id":"a","Ports":[{"IP":null,"PrivatePort":80,"PublicPort":null,"Type":null}],
        "NetworkSettings":{"Networks":{"bridge":{"IPAddress":null}}},
        "Mounts":[{"Type":null,"Source":null,"Destination":"/d","RW":null}]}"#,
    )
    .expect("decodes");
    assert_eq!(c.ports(), [Port::new(80, PortType::Unknown)]);
    assert_eq!(c.networks(), [Network::new("bridge")]);
    assert_eq!(
        c.mounts(),
        [Mount::new(MountType::Unknown, "", "/d").with_rw(false)]
    );
}

#[test]
fn a_hostile_list_cannot_make_a_container_keep_unbounded_records() {
    // Three bytes of JSON a record, each kept record tens of bytes: refused past the bound.
    let many = MAX_KEPT_BYTES / 32 + 1;
    let ports = vec!["{}"; many].join(",");
    let err = serde_json::from_str::<Container>(&format!(r#"{{"Id":"a","Ports":[{ports}]}}"#))
        .expect_err("too many ports");
    assert!(err.to_string().contains("MAX_KEPT_BYTES"), "{err}");
    let networks: Vec<String> = (0..MAX_KEPT_BYTES / 100)
        .map(|i| format!(r#""n{i}":{{}}"#))
        .collect();
    let err = serde_json::from_str::<Container>(&format!(
        r#"{{"Id":"a","NetworkSettings":{{"Networks":{{{}}}}}}}"#,
        networks.join(",")
    ))
    .expect_err("too many networks");
    assert!(err.to_string().contains("Networks"), "{err}");
    let mounts = vec![r#"{"Destination":"/d"}"#; MAX_KEPT_BYTES / 40].join(",");
    let err = serde_json::from_str::<Container>(&format!(r#"{{"Id":"a","Mounts":[{mounts}]}}"#))
        .expect_err("too many mounts");
    assert!(err.to_string().contains("Mounts"), "{err}");
    // A long text counts by its length: one port whose IP is 2 MiB.
    let ip = "1".repeat(2 * MAX_KEPT_BYTES);
    assert!(
        serde_json::from_str::<Container>(&format!(
            r#"{{"Id":"a","Ports":[{{"IP":"{ip}","PrivatePort":1}}]}}"#
        ))
        .is_err()
    );
    // A real large range (10 000 published ports, IPv4 and IPv6) is kept.
    let range: Vec<String> = (10_000..20_000)
        .flat_map(|p| {
            [
                format!(r#"{{"IP":"0.0.0.0","PrivatePort":{p},"PublicPort":{p},"Type":"udp"}}"#),
                format!(r#"{{"IP":"::","PrivatePort":{p},"PublicPort":{p},"Type":"udp"}}"#),
            ]
        })
        .collect();
    let c: Container =
        serde_json::from_str(&format!(r#"{{"Id":"a","Ports":[{}]}}"#, range.join(",")))
            .expect("a real port range decodes");
    assert_eq!(c.ports().len(), 20_000);
}

#[test]
fn ports_out_of_range_are_an_error() {
    assert!(
        serde_json::from_str::<Container>(r#"{"Id":"a","Ports":[{"PrivatePort":70000}]}"#).is_err()
    );
    let c: Container =
        serde_json::from_str(r#"{"Id":"a","Ports":[{"PrivatePort":"443","PublicPort":4.43e2}]}"#)
            .expect("numbers as strings or floats, as elsewhere");
    assert_eq!(c.ports()[0].public_port(), Some(443));
}
