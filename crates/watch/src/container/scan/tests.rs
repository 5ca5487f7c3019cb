//! The list element scanner against serde (the reference), on the captured lists of
//! Docker 20.10 and Podman 4.3.1, elements as the API router writes them, and generated
//! elements of both shapes with escapes, duplicates, `null`s, values of other types,
//! truncations, changed bytes and random bytes.
//!
//! `PROPTEST_CASES=200000 cargo test -p hypersh-watch --release --lib container::scan`
//! runs the property test longer.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use super::*;
use crate::list::ArraySplitter;

/// What serde makes of `bytes`, the reference.
fn by_serde(bytes: &[u8]) -> Result<Container, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// The scanner's reading of `bytes`, when it reads them.
fn fast(bytes: &[u8]) -> Option<Container> {
    scan(std::str::from_utf8(bytes).ok()?)
}

/// The raw elements of a list body, as the list splitter hands them over.
fn elements(body: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut splitter = ArraySplitter::new(usize::MAX);
    splitter
        .feed(body, |element| {
            out.push(element.to_vec());
            Ok::<_, crate::list::SplitError>(())
        })
        .expect("a list");
    splitter.finish().expect("a whole list");
    out
}

fn captured() -> Vec<Vec<u8>> {
    let mut all = elements(include_bytes!(
        "../../../tests/data/lists/docker-20.10.24.json"
    ));
    all.extend(elements(include_bytes!(
        "../../../tests/data/lists/podman-4.3.1.json"
    )));
    all
}

/// Elements as the API router writes them (serde's serialisation of a `Container`).
fn router_elements() -> Vec<Vec<u8>> {
    let id = "817a6894c67e51446e2b4f5af01f23f6dd35b8c0ca64a6129f749b43b742e777";
    let labeled = Container::builder(id)
        .name("gifted_ritchie")
        .image("alpine:3.19")
        .image_id("sha256:6457d53fb065d6f250e1504b9bc42d5b6c65941d57532c072d929dd0628977d0")
        .command("sleep 86400")
        .created(1_796_644_555)
        .state(super::super::ContainerState::Running)
        .status("Up 3 minutes")
        .label("app", "worker")
        .label("team", "search")
        .label("tier", "backend")
        .label("com.docker.compose.project.working_dir", "/srv/a/long/path")
        .build();
    let attached = Container::builder("c2")
        .port(Port::new(80, super::super::PortType::Tcp).published("0.0.0.0", 8080))
        .port(Port::new(53, super::super::PortType::Udp))
        .network(
            Network::new("bridge")
                .with_network_id(&format!("{:064x}", 0x17e4))
                .with_ip_address("172.17.0.2")
                .with_gateway("172.17.0.1")
                .with_mac_address("02:42:ac:11:00:02"),
        )
        .mount(Mount::new(
            super::super::MountType::Volume,
            "/var/lib/x",
            "/data",
        ))
        .mount(Mount::new(super::super::MountType::Bind, "/srv", "/www").with_rw(false))
        .build();
    [labeled, attached, Container::builder("bare").build()]
        .iter()
        .map(|c| serde_json::to_vec(c).expect("encodes"))
        .collect()
}

#[test]
fn captured_and_router_elements_take_the_fast_path_and_read_as_serde_reads_them() {
    let mut read = 0;
    for element in captured().into_iter().chain(router_elements()) {
        let text = String::from_utf8_lossy(&element).into_owned();
        let fast = fast(&element);
        assert!(fast.is_some(), "the fast path refused {text}");
        assert_eq!(fast, by_serde(&element).ok(), "{text}");
        read += 1;
    }
    assert_eq!(read, captured().len() + 3);
    assert!(read >= 16, "every captured element");
}

#[test]
fn what_the_fast_path_does_not_read_is_left_to_serde() {
    for element in [
        // Escapes and control characters.
        r#"{"Id":"a\u0062"}"#,
        "{\"Id\":\"a\",\n\"Image\":\"x\"}",
        // Numbers serde converts.
        r#"{"Id":"a","Created":1.5e9}"#,
        r#"{"Id":"a","Created":"17"}"#,
        r#"{"Id":"a","Created":18446744073709551616}"#,
        r#"{"Id":"a","Ports":[{"PrivatePort":65536}]}"#,
        r#"{"Id":"a","Ports":[{"PrivatePort":-1}]}"#,
        // Duplicates serde refuses, at every level.
        r#"{"Id":"a","Id":"b"}"#,
        r#"{"Id":"a","Labels":{},"Labels":{}}"#,
        r#"{"Id":"a","Ports":[{"IP":"x","IP":"y"}]}"#,
        r#"{"Id":"a","NetworkSettings":{"Networks":null,"Networks":null}}"#,
        r#"{"Id":"a","NetworkSettings":{"Networks":{"b":{"Gateway":"","Gateway":""}}}}"#,
        r#"{"Id":"a","Mounts":[{"RW":true,"RW":true}]}"#,
        // `null` where serde refuses it; other types.
        r#"{"Id":null}"#,
        r#"{"Id":"a","State":null}"#,
        r#"{"Id":"a","Names":[null]}"#,
        r#"{"Id":"a","Labels":{"k":null}}"#,
        r#"{"Id":"a","Labels":[["k","v"]]}"#,
        r#"{"Id":"a","NetworkSettings":{"Networks":{"b":null}}}"#,
        r#"{"Id":"a","Mounts":[{"RW":"true"}]}"#,
        r#"{"Id":"a","Ports":{}}"#,
        // Not one JSON object.
        r#"{"Names":[]}"#,
        r#"{"Id":"a"} x"#,
        r#"{"Id":"a",}"#,
        r#"["a"]"#,
        "",
    ] {
        assert!(fast(element.as_bytes()).is_none(), "{element}");
    }
}

#[test]
fn bounds_are_serde_s() {
    // Labels just past MAX_LABELS_BYTES: refused (serde fails them), within: read. Short
    // labels: the element is longer than the scanner reads, so both go to serde.
    let n = super::super::MAX_LABELS_BYTES / size_of::<(SmolStr, SmolStr)>();
    let labels = |n: usize| {
        let pairs: Vec<String> = (0..n).map(|i| format!(r#""k{i}":"v""#)).collect();
        format!(r#"{{"Id":"a","Labels":{{{}}}}}"#, pairs.join(","))
    };
    assert!(fast(labels(n + 1).as_bytes()).is_none());
    assert!(by_serde(labels(n + 1).as_bytes()).is_err());
    // Few long labels count their heap the same way.
    let long = format!(r#"{{"Id":"a","Labels":{{"k":"{}"}}}}"#, "v".repeat(3000));
    assert_eq!(fast(long.as_bytes()), by_serde(long.as_bytes()).ok());
    // Repeated labels and networks: the last one counts, as serde's.
    let repeated = r#"{"Id":"a","Labels":{"k":"1","k":"2"},"NetworkSettings":{"Networks":{"n":{"IPAddress":"1"},"n":{"IPAddress":"2"}}}}"#;
    let c = fast(repeated.as_bytes()).expect("read");
    assert_eq!(Some(c), by_serde(repeated.as_bytes()).ok());
}

#[test]
fn network_ids_are_shared_as_serde_shares_them() {
    let id = format!("{:064x}", 0xabc);
    let element =
        format!(r#"{{"Id":"a","NetworkSettings":{{"Networks":{{"b":{{"NetworkID":"{id}"}}}}}}}}"#);
    let a = fast(element.as_bytes()).expect("read");
    let b = by_serde(element.as_bytes()).expect("read");
    assert_eq!(
        a.networks()[0].network_id().as_ptr(),
        b.networks()[0].network_id().as_ptr(),
        "one allocation for both"
    );
}

/// A JSON text as a generator writes it: values, keys and the spaces between them.
fn json_string(text: &str, escaped: bool) -> String {
    if escaped {
        text.encode_utf16()
            .map(|u| format!("\\u{u:04x}"))
            .collect::<String>()
    } else {
        serde_json::to_string(text).expect("a string")
    }
}

/// A string value: plain mostly, sometimes long (kept on the heap), non-ASCII, and, in
/// `esc` of 18 + 2 × `esc`, escaped or with a character serde escapes.
fn string(esc: u32) -> BoxedStrategy<String> {
    prop_oneof![
        12 => "[a-z0-9_./:-]{0,12}".prop_map(|s| json_string(&s, false)),
        4 => "[a-f0-9]{24,70}".prop_map(|s| json_string(&s, false)),
        2 => "[a-z\u{e9}\u{4e2d}]{0,6}".prop_map(|s| json_string(&s, false)),
        esc => "[a-z\"\\\\\n]{1,4}".prop_map(|s| json_string(&s, false)),
        esc => "[a-z]{1,3}".prop_map(|s| format!("\"{}\"", json_string(&s, true))),
    ]
    .boxed()
}

/// A number as written, in and out of every range the fields read.
fn number() -> BoxedStrategy<String> {
    prop_oneof![
        4 => (0u32..70_000).prop_map(|n| n.to_string()),
        2 => any::<i64>().prop_map(|n| n.to_string()),
        1 => Just("18446744073709551616".to_owned()),
        1 => Just("-9223372036854775809".to_owned()),
        1 => Just("1.5e9".to_owned()),
        1 => Just("-0".to_owned()),
        1 => Just("\"1796638518\"".to_owned()),
    ]
    .boxed()
}

/// Any JSON value, shallow.
fn any_value(esc: u32) -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        number(),
        string(esc),
    ];
    leaf.prop_recursive(2, 8, 3, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((string(esc), inner), 0..4).prop_map(|v| {
                let members: Vec<String> = v.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
    })
    .boxed()
}

/// `expected` mostly; `null` or any other value sometimes.
fn mostly(expected: BoxedStrategy<String>, esc: u32) -> BoxedStrategy<String> {
    prop_oneof![40 => expected, 2 => Just("null".to_owned()), 1 => any_value(esc)].boxed()
}

/// An object of `fields` (name, value) in a random order, some left out, one sometimes
/// given twice, unknown ones added, with or without spaces.
fn object(fields: Vec<(&'static str, BoxedStrategy<String>)>, esc: u32) -> BoxedStrategy<String> {
    let n = fields.len();
    let values: Vec<BoxedStrategy<(bool, String)>> = fields
        .into_iter()
        .map(|(name, value)| {
            (prop::bool::weighted(0.9), value)
                .prop_map(move |(keep, v)| (keep, format!("\"{name}\":{v}")))
                .boxed()
        })
        .collect();
    (
        values,
        prop_oneof![
            7 => Just((0..n).collect::<Vec<usize>>()),
            3 => Just((0..n).collect::<Vec<usize>>()).prop_shuffle(),
        ],
        prop::option::weighted(0.05, 0..n.max(1)),
        prop::collection::vec((string(esc), any_value(esc)), 0..2),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(values, order, twice, unknown, spaced)| {
            let mut members: Vec<String> = order
                .iter()
                .filter(|&&i| values[i].0)
                .map(|&i| values[i].1.clone())
                .collect();
            if let Some(i) = twice {
                members.push(values[i].1.clone());
            }
            members.extend(unknown.into_iter().map(|(k, v)| format!("{k}:{v}")));
            let sep = if spaced { " , " } else { "," };
            let open = if spaced { "{ " } else { "{" };
            format!("{open}{}}}", members.join(sep))
        })
        .boxed()
}

fn array_of(item: BoxedStrategy<String>) -> BoxedStrategy<String> {
    prop::collection::vec(item, 0..4)
        .prop_map(|v| format!("[{}]", v.join(",")))
        .boxed()
}

fn map_of(value: BoxedStrategy<String>, esc: u32) -> BoxedStrategy<String> {
    prop::collection::vec((string(esc), value), 0..4)
        .prop_map(|v| {
            let members: Vec<String> = v.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
            format!("{{{}}}", members.join(","))
        })
        .boxed()
}

fn word(words: &'static [&'static str], esc: u32) -> BoxedStrategy<String> {
    prop_oneof![
        4 => prop::sample::select(words).prop_map(|w| format!("\"{w}\"")),
        1 => string(esc),
    ]
    .boxed()
}

fn port(esc: u32) -> BoxedStrategy<String> {
    object(
        vec![
            (
                "IP",
                mostly(word(&["0.0.0.0", "::", "127.0.0.1"], esc), esc),
            ),
            ("PrivatePort", mostly(number(), esc)),
            ("PublicPort", mostly(number(), esc)),
            (
                "Type",
                mostly(word(&["tcp", "udp", "sctp", "TCP"], esc), esc),
            ),
        ],
        esc,
    )
}

fn mount(esc: u32) -> BoxedStrategy<String> {
    object(
        vec![
            (
                "Type",
                mostly(word(&["bind", "volume", "tmpfs", "image"], esc), esc),
            ),
            ("Name", mostly(string(esc), esc)),
            ("Source", mostly(string(esc), esc)),
            ("Destination", mostly(string(esc), esc)),
            ("Driver", mostly(word(&["local"], esc), esc)),
            ("Mode", mostly(word(&["", "z", "ro"], esc), esc)),
            (
                "RW",
                mostly(
                    prop_oneof![Just("true".to_owned()), Just("false".to_owned())].boxed(),
                    esc,
                ),
            ),
            ("Propagation", mostly(word(&["", "rprivate"], esc), esc)),
        ],
        esc,
    )
}

fn endpoint(esc: u32) -> BoxedStrategy<String> {
    object(
        vec![
            ("IPAMConfig", Just("null".to_owned()).boxed()),
            ("Links", Just("null".to_owned()).boxed()),
            ("Aliases", mostly(array_of(string(esc)), esc)),
            ("NetworkID", mostly(string(esc), esc)),
            ("EndpointID", mostly(string(esc), esc)),
            ("Gateway", mostly(word(&["172.17.0.1", ""], esc), esc)),
            ("IPAddress", mostly(word(&["172.17.0.2", ""], esc), esc)),
            ("IPPrefixLen", mostly(number(), esc)),
            ("IPv6Gateway", mostly(word(&[""], esc), esc)),
            (
                "GlobalIPv6Address",
                mostly(word(&["", "fd00::2"], esc), esc),
            ),
            ("GlobalIPv6PrefixLen", mostly(number(), esc)),
            (
                "MacAddress",
                mostly(word(&["02:42:ac:11:00:02", ""], esc), esc),
            ),
            ("DriverOpts", Just("null".to_owned()).boxed()),
        ],
        esc,
    )
}

/// A list element of Docker's shape, or Podman's (its extra fields), or the router's.
fn element(esc: u32) -> BoxedStrategy<String> {
    let states = &[
        "running",
        "exited",
        "created",
        "paused",
        "restarting",
        "dead",
        "removing",
        "stopped",
        "stopping",
        "Running",
        "weird",
    ];
    let mut fields: Vec<(&'static str, BoxedStrategy<String>)> = vec![
        ("Id", mostly(string(esc), esc)),
        ("Names", mostly(array_of(string(esc)), esc)),
        ("Image", mostly(string(esc), esc)),
        ("ImageID", mostly(string(esc), esc)),
        ("Command", mostly(string(esc), esc)),
        ("Created", mostly(number(), esc)),
        ("Ports", mostly(array_of(port(esc)), esc)),
        ("Labels", mostly(map_of(mostly(string(esc), esc), esc), esc)),
        ("State", mostly(word(states, esc), esc)),
        ("Status", mostly(string(esc), esc)),
        (
            "HostConfig",
            mostly(
                object(vec![("NetworkMode", word(&["default"], esc))], esc),
                esc,
            ),
        ),
        (
            "NetworkSettings",
            mostly(
                object(
                    vec![("Networks", mostly(map_of(endpoint(esc), esc), esc))],
                    esc,
                ),
                esc,
            ),
        ),
        ("Mounts", mostly(array_of(mount(esc)), esc)),
    ];
    let podman: Vec<(&'static str, BoxedStrategy<String>)> = vec![
        ("Name", mostly(string(esc), esc)),
        ("Config", Just("null".to_owned()).boxed()),
        ("NetworkingConfig", Just("null".to_owned()).boxed()),
        ("Platform", Just("null".to_owned()).boxed()),
        ("AdjustCPUShares", Just("false".to_owned()).boxed()),
    ];
    let docker = object(fields.clone(), esc);
    fields.extend(podman);
    prop_oneof![docker, object(fields, esc)].boxed()
}

/// Elements without escapes (which the fast path reads when serde does) and elements
/// with a few (which it leaves to serde).
fn elements_of_both_kinds() -> BoxedStrategy<String> {
    prop_oneof![element(0), element(1)].boxed()
}

/// An element, damaged sometimes: cut, or a byte put in or changed.
fn any_element() -> BoxedStrategy<Vec<u8>> {
    let real: Vec<Vec<u8>> = captured().into_iter().chain(router_elements()).collect();
    let whole = prop_oneof![
        6 => elements_of_both_kinds().prop_map(String::into_bytes),
        2 => prop::sample::select(real),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ];
    (
        whole,
        0..6u8,
        any::<prop::sample::Index>(),
        prop::sample::select(b"\"{}[],: 0-1.eEtfnul\\ax\xc3\xa9\xff".to_vec()),
    )
        .prop_map(|(mut bytes, how, at, byte)| {
            if bytes.is_empty() {
                return bytes;
            }
            let i = at.index(bytes.len());
            match how {
                0 => bytes.truncate(i),
                1 => bytes.insert(i, byte),
                2 => bytes[i] = byte,
                _ => {}
            }
            bytes
        })
        .boxed()
}

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    Config::with_cases(cases)
}

proptest! {
    #![proptest_config(config())]

    /// Whatever the fast path reads, serde reads the same; and the public decoder gives
    /// serde's answer (the same container, or the same error) on anything.
    #[test]
    fn the_fast_path_reads_only_what_serde_reads_the_same(bytes in any_element()) {
        let serde = by_serde(&bytes);
        if let Some(fast) = fast(&bytes) {
            prop_assert_eq!(Some(fast), serde.as_ref().ok().cloned(), "{}", String::from_utf8_lossy(&bytes));
        }
        match (Container::from_list_element(&bytes), serde) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
            (a, b) => prop_assert!(false, "{:?} / {:?}", a, b),
        }
    }
}

/// The generated elements exercise the fast path, not only the fallback: a good share of
/// those serde reads are read by the scanner.
#[test]
fn the_generator_reaches_the_fast_path() {
    let mut runner = TestRunner::deterministic();
    let strategy = elements_of_both_kinds();
    let (mut decoded, mut scanned) = (0, 0);
    for _ in 0..2_000 {
        let text = strategy.new_tree(&mut runner).expect("a value").current();
        if by_serde(text.as_bytes()).is_ok() {
            decoded += 1;
            scanned += usize::from(fast(text.as_bytes()).is_some());
        }
    }
    assert!(decoded >= 100, "{decoded} of 2000 decode");
    assert!(scanned * 3 >= decoded, "{scanned} of {decoded} scanned");
}
