//! Bad input against the public API: every malformed frame, list body or error page gives
//! a typed error (or a decoded event, where the input is merely odd), never a panic.
//!
//! The HTTP cases use a tiny blocking server on a std thread that answers every request
//! with one canned response, so no router is needed at this level.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::thread::JoinHandle;

use hypersh_watch::container::{Container, Labels};
use hypersh_watch::event::{DecodeError, DockerAction, Shape};
use hypersh_watch::{Client, ClientConfig, Credentials, Error, Filters, WatchEvent};

/// A well-formed Docker-style frame for container `id`.
fn docker_frame(id: &str, action: &str) -> String {
    format!(
        r#"{{"status":"{action}","id":"{id}","from":"busybox","Type":"container","Action":"{action}",
        "Actor":{{"ID":"{id}","Attributes":{{"image":"busybox","name":"n"}}}},"time":1476375774,
        "timeNano":1476375774255155116}}"#
    )
}

/// Decodes a copy of `frame` (any byte-like value, borrowed or not).
fn decode(frame: impl AsRef<[u8]>) -> Result<WatchEvent, DecodeError> {
    WatchEvent::decode(frame.as_ref().to_vec())
}

#[test]
fn non_json_text_is_a_json_error() {
    for frame in [
        "",
        " ",
        "not json",
        "this is not JSON {",
        "{",
        "}",
        "{\"id\":",
        "<html><body>502 Bad Gateway</body></html>",
        "null",
        "true",
        "42",
        "\"a string\"",
        "{\"id\":\"a\",\"Action\":\"start\"} trailing",
        "{\"id\":\"a\",\"Action\":\"start\"}{\"id\":\"b\",\"Action\":\"start\"}",
    ] {
        assert!(
            matches!(decode(frame), Err(DecodeError::Json(_))),
            "{frame:?} must be a JSON error, got {:?}",
            decode(frame)
        );
    }
}

#[test]
fn invalid_utf8_is_its_own_error() {
    for frame in [
        &b"\xff"[..],
        b"{\"id\":\"\xff\",\"Action\":\"start\"}",
        b"{\"id\":\"a\",\"Action\":\"st\xc3\x28rt\"}",
        // An overlong encoding of '/' and a lone surrogate (CESU-8) are invalid UTF-8 too.
        b"{\"id\":\"\xc0\xaf\",\"Action\":\"start\"}",
        b"{\"id\":\"\xed\xa0\x80\",\"Action\":\"start\"}",
    ] {
        assert!(
            matches!(decode(frame), Err(DecodeError::NotUtf8)),
            "{frame:?}"
        );
    }
    // A JSON-escaped lone surrogate is valid UTF-8 text but not a valid string.
    assert!(matches!(
        decode(r#"{"id":"\ud800","Action":"start"}"#),
        Err(DecodeError::Json(_))
    ));
}

#[test]
fn missing_empty_or_null_ids_are_missing_id() {
    for frame in [
        r#"{"Action":"start","Type":"container"}"#,
        r#"{"Action":"start","id":""}"#,
        r#"{"Action":"start","id":null}"#,
        r#"{"Action":"start","Id":""}"#,
        r#"{"Action":"start","id":"","Actor":{"ID":""}}"#,
        r#"{"Action":"start","Actor":null}"#,
        r#"{"Action":"start","Actor":{}}"#,
        r#"{"Action":"ADDED","Status":"Running","Actor":{"Attributes":{"Name":"x"}}}"#,
    ] {
        assert!(
            matches!(decode(frame), Err(DecodeError::MissingId)),
            "{frame:?}: {:?}",
            decode(frame)
        );
    }
}

#[test]
fn ids_of_the_wrong_type_are_json_errors() {
    for frame in [
        r#"{"Action":"start","id":123}"#,
        r#"{"Action":"start","id":["a"]}"#,
        r#"{"Action":"start","id":{"a":1}}"#,
        r#"{"Action":"start","Actor":{"ID":true}}"#,
    ] {
        assert!(
            matches!(decode(frame), Err(DecodeError::Json(_))),
            "{frame:?}"
        );
    }
}

/// A number sent as a string is read as the number (nothing is lost); a string that is
/// not a number fails the frame with a typed error. Numbers in the attributes, which are
/// strings on the wire, are kept as text.
#[test]
fn numbers_as_strings() {
    for field in ["time", "Time", "timeNano", "TimeNano"] {
        let frame = format!(r#"{{"Action":"start","id":"a","{field}":"123"}}"#);
        let ev = decode(frame.as_str()).unwrap_or_else(|e| panic!("{frame}: {e}"));
        let want = if field.eq_ignore_ascii_case("time") {
            123_000_000_000
        } else {
            123
        };
        assert_eq!(ev.event().time_nano(), want, "{frame}");
        let frame = format!(r#"{{"Action":"start","id":"a","{field}":"soon"}}"#);
        assert!(
            matches!(decode(frame.as_str()), Err(DecodeError::Json(_))),
            "{frame}"
        );
    }
    // Integers, floats (with exponents), null and out-of-range numbers are accepted.
    for (time, nanos) in [
        ("123", 123_000_000_000),
        ("1.23e2", 123_000_000_000),
        ("null", 0),
        ("-1", -1_000_000_000),
        ("18446744073709551615", i64::MAX),
        ("1e300", i64::MAX),
        ("-1e300", i64::MIN),
    ] {
        let frame = format!(r#"{{"Action":"start","id":"a","time":{time}}}"#);
        let ev = decode(frame.as_str()).unwrap_or_else(|e| panic!("{frame}: {e}"));
        assert_eq!(ev.event().time_nano(), nanos, "{frame}");
    }
    // Numeric attributes (an exit code sent as a number) are kept as their text.
    let ev = decode(
        r#"{"Action":"die","id":"a","Actor":{"Attributes":{"exitCode":137,"big":1e400,"ok":true}}}"#,
    );
    // 1e400 overflows f64: serde_json refuses it as a number out of range.
    assert!(matches!(ev, Err(DecodeError::Json(_))), "{ev:?}");
    let ev = decode(
        r#"{"Action":"die","id":"a","Actor":{"Attributes":{"exitCode":137,"ok":true,"skip":[1],"obj":{}}}}"#,
    )
    .unwrap();
    let e = ev.event();
    assert_eq!(e.exit_code(), Some(137));
    assert_eq!(e.attributes()["ok"], "true");
    assert!(
        !e.attributes().contains_key("skip"),
        "non-scalar attributes are dropped"
    );
    // An exit code that is not a number is simply unknown.
    let ev =
        decode(r#"{"Action":"die","id":"a","Actor":{"Attributes":{"exitCode":"boom"}}}"#).unwrap();
    assert_eq!(ev.event().exit_code(), None);
}

#[test]
fn unknown_actions_are_modified_and_unknown_types_are_refused() {
    for action in [
        "attach",
        "resize",
        "",
        "   ",
        "frobnicate: x",
        "ADDED ",
        "added",
    ] {
        let frame = format!(r#"{{"Type":"container","Action":"{action}","id":"abc"}}"#);
        match decode(frame.as_str()) {
            Ok(ev) => {
                assert_eq!(ev.kind_str(), "MODIFIED", "{frame}");
                assert_eq!(ev.event().shape(), Shape::Docker, "{frame}");
                assert_eq!(ev.event().docker_action(), Some(DockerAction::Other));
            }
            // The empty action is missing; blanks are kept as an (unknown) action.
            Err(DecodeError::MissingAction) => assert!(action.is_empty(), "{frame}"),
            Err(e) => panic!("{frame}: {e}"),
        }
    }
    for kind in ["image", "network", "volume", "daemon", "", "Container"] {
        let frame = format!(r#"{{"Type":"{kind}","Action":"start","id":"abc"}}"#);
        match decode(frame.as_str()) {
            Ok(ev) => assert!(
                kind.is_empty(),
                "only a missing type means container: {ev:?}"
            ),
            Err(DecodeError::NotContainer(t)) => assert_eq!(t, kind),
            Err(e) => panic!("{frame}: {e}"),
        }
    }
    // A Kubernetes-style event with a phase nobody knows keeps no phase.
    let ev = decode(r#"{"Action":"MODIFIED","Status":"Exploded","Id":"k"}"#).unwrap();
    assert_eq!(ev.event().shape(), Shape::Kubernetes);
    assert_eq!(ev.event().phase(), None);
    assert!(ev.event().to_container().is_none());
}

/// Both spellings of one field in a frame: serde refuses duplicates, which is a typed
/// error like any other malformed frame.
#[test]
fn duplicate_fields_are_typed_errors() {
    for frame in [
        r#"{"Action":"start","id":"a","id":"b"}"#,
        r#"{"Action":"start","id":"a","Id":"a"}"#,
        r#"{"Action":"start","id":"a","from":"x","From":"x"}"#,
        r#"{"Action":"start","id":"a","time":1,"Time":1}"#,
    ] {
        assert!(
            matches!(decode(frame), Err(DecodeError::Json(_))),
            "{frame}: {:?}",
            decode(frame)
        );
    }
}

#[test]
fn huge_label_maps_decode() {
    const N: usize = 10_000;
    let labels: Labels = (0..N)
        .map(|i| (format!("label-{i:05}"), format!("value-{i}")))
        .collect();
    let labels_json = serde_json::to_string(&labels).unwrap();

    // Kubernetes shape: the labels are a map of their own.
    let frame = format!(
        r#"{{"Action":"ADDED","Status":"Running","Id":"k8s","Type":"container",
        "Actor":{{"Attributes":{{"Name":"big","Image":"busybox","Labels":{labels_json}}}}}}}"#
    );
    let ev = decode(frame.as_str()).unwrap();
    let e = ev.event();
    assert_eq!(e.labels().map(Labels::len), Some(N));
    assert_eq!(*e.to_container().unwrap().labels(), labels);

    // Docker shape: the labels are flattened into the attributes.
    let attrs = &labels_json[1..labels_json.len() - 1];
    let frame = format!(
        r#"{{"Action":"start","id":"docker","Actor":{{"Attributes":{{"name":"big",{attrs}}}}}}}"#
    );
    let ev = decode(frame.as_str()).unwrap();
    assert_eq!(ev.event().attributes().len(), N + 1);

    // A list item with as many labels.
    let list = format!(r#"[{{"Id":"c","Labels":{labels_json}}}]"#);
    let containers: Vec<Container> = serde_json::from_str(&list).unwrap();
    assert_eq!(*containers[0].labels(), labels);
}

/// Deep nesting (100k levels) anywhere in a frame never overflows the stack: where the
/// value is used (an attribute, the labels, a number) serde_json's recursion limit makes
/// it a typed error; at the top it is not an event object; in a field nobody reads it is
/// skipped and the event decodes.
#[test]
fn nesting_bombs_do_not_overflow_the_stack() {
    const DEPTH: usize = 100_000;
    let deep = format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH));
    let deep_objects = format!("{}1{}", r#"{"a":"#.repeat(DEPTH), "}".repeat(DEPTH));
    let unclosed = "[".repeat(DEPTH);

    for frame in [&deep, &unclosed] {
        assert!(matches!(decode(frame), Err(DecodeError::NotObject)));
    }
    // An object whose only field is unknown: skipped, so the id is what is missing.
    assert!(matches!(decode(&deep_objects), Err(DecodeError::MissingId)));
    for used in [
        format!(r#"{{"Action":"start","id":"a","time":{deep}}}"#),
        format!(r#"{{"Action":"start","id":"a","Actor":{{"Attributes":{{"x":{deep}}}}}}}"#),
        format!(
            r#"{{"Action":"ADDED","Id":"a","Actor":{{"Attributes":{{"Labels":{{"x":{deep}}}}}}}}}"#
        ),
    ] {
        let Err(DecodeError::Json(e)) = decode(&used) else {
            panic!("a bomb in a used field must be a JSON error")
        };
        // serde_json's recursion limit, or (for a number field) refused at the first `[`.
        let text = e.to_string();
        assert!(
            text.contains("recursion limit") || text.contains("invalid type: sequence"),
            "{e}"
        );
    }
    for ignored in [
        format!(r#"{{"Action":"start","id":"a","extra":{deep}}}"#),
        format!(r#"{{"Action":"start","id":"a","extra":{deep_objects}}}"#),
    ] {
        assert_eq!(decode(&ignored).unwrap().id(), "a");
    }
    for body in [
        &deep,
        &unclosed,
        &format!(r#"[{{"Id":"a","Labels":{deep_objects}}}]"#),
    ] {
        assert!(serde_json::from_str::<Vec<Container>>(body).is_err());
    }
}

/// A JSON array is refused before serde could read it as the struct's fields in order.
#[test]
fn arrays_are_not_events() {
    for frame in ["[]", "[1,2,3]", r#"["start","","","positional"]"#, "  ["] {
        assert!(
            matches!(decode(frame), Err(DecodeError::NotObject)),
            "{frame}"
        );
    }
}

#[test]
fn the_next_good_frame_decodes_after_bad_ones() {
    let bad: Vec<Vec<u8>> = vec![
        b"garbage".to_vec(),
        b"\xff\xfe".to_vec(),
        br#"{"Action":"start"}"#.to_vec(),
        "[".repeat(10_000).into_bytes(),
    ];
    for frame in bad {
        assert!(decode(frame).is_err());
    }
    // Decoding keeps no state: the next good frame is unaffected.
    let ev = decode(docker_frame("good", "start")).unwrap();
    assert_eq!(ev.id(), "good");
    assert_eq!(ev.kind_str(), "MODIFIED");
}

#[test]
fn decode_errors_display_clearly() {
    let e = decode("not json").unwrap_err();
    assert!(
        e.to_string().starts_with("frame is not a JSON event: "),
        "{e}"
    );
    assert_eq!(
        decode(b"\xff").unwrap_err().to_string(),
        "frame is not valid UTF-8"
    );
    assert_eq!(
        decode(r#"{"Action":"x"}"#).unwrap_err().to_string(),
        "event has no container id"
    );
    assert_eq!(
        decode(r#"{"Type":"image","Action":"pull","id":"x"}"#)
            .unwrap_err()
            .to_string(),
        r#"event type "image" is not a container event"#
    );
}

#[test]
fn a_list_that_is_not_an_array_is_an_error() {
    for body in [
        "{}",
        r#"{"message":"oops"}"#,
        r#"{"Id":"a"}"#,
        "null",
        "\"[]\"",
        "42",
        "",
        "<html></html>",
        "[",
        r#"[{"Id":"a"},]"#,
        // An item that is not an object, or lacks its id.
        "[1]",
        "[null]",
        r#"[{"Names":["/x"]}]"#,
        // A number that is not one fails the whole list.
        r#"[{"Id":"a","Created":"yesterday"}]"#,
    ] {
        assert!(
            serde_json::from_str::<Vec<Container>>(body).is_err(),
            "{body:?} must not decode"
        );
    }
    // A number written as a string is read as the number.
    let listed: Vec<Container> =
        serde_json::from_str(r#"[{"Id":"a","Created":"1367854155"}]"#).unwrap();
    assert_eq!(listed[0].created(), 1_367_854_155);
    // Odd but valid: empty lists, nulls for optional fields, unknown fields and states.
    let ok: Vec<Container> = serde_json::from_str(
        r#"[{"Id":"a","Names":null,"Labels":null,"State":"levitating","Created":1.5e9,"X":{"y":[1]}}]"#,
    )
    .unwrap();
    assert_eq!(ok[0].id(), "a");
    assert!(ok[0].names().len() == 0 && ok[0].labels().is_empty());
    assert_eq!(ok[0].state(), hypersh_watch::ContainerState::Unknown);
    assert!(
        serde_json::from_str::<Vec<Container>>("[]")
            .unwrap()
            .is_empty()
    );
}

/// Answers every request on a std thread with `status` and `body` (as `content_type`),
/// for `requests` requests; returns the `http://` endpoint and the thread.
fn canned_server(
    status: &'static str,
    content_type: &'static str,
    body: String,
    requests: usize,
) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let thread = std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            // Read the request head (these clients send no body).
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                line.clear();
            }
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    (format!("http://{addr}"), thread)
}

fn client(endpoint: &str) -> Client {
    let config = ClientConfig::new(endpoint, Credentials::new("ak", "sk-bad-input")).unwrap();
    Client::new(config).unwrap()
}

const NGINX_502: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
    <center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

#[tokio::test]
async fn an_html_5xx_is_a_short_clear_status_error() {
    // A long HTML page: the message keeps only its start.
    let long_page = format!("{NGINX_502}{}", "<!-- padding -->".repeat(10_000));
    let (endpoint, server) = canned_server("502 Bad Gateway", "text/html", long_page, 2);
    let client = client(&endpoint);

    let err = client.list_containers(&Filters::new()).await.unwrap_err();
    let Error::Status { status, message } = &err else {
        panic!("expected a status error, got {err:?}")
    };
    assert_eq!(*status, 502);
    assert!(message.contains("502 Bad Gateway"), "{message}");
    let text = err.to_string();
    assert!(
        text.starts_with("request rejected (HTTP 502): <html>"),
        "{text}"
    );
    assert!(text.len() <= 300, "the page is cut: {} bytes", text.len());
    assert!(!err.is_auth() && !err.is_frame_error());

    // The same page refusing the websocket upgrade.
    let err = client.watch(&Filters::new()).await.unwrap_err();
    match &err {
        Error::Status { status: 502, .. } => {
            let text = err.to_string();
            assert!(text.starts_with("request rejected (HTTP 502)"), "{text}");
            assert!(text.len() <= 300, "{text}");
        }
        other => panic!("expected a 502 status error, got {other:?}"),
    }
    server.join().unwrap();
}

#[tokio::test]
async fn an_empty_5xx_and_a_json_5xx_are_clear() {
    let (endpoint, server) =
        canned_server("503 Service Unavailable", "text/html", String::new(), 1);
    let err = client(&endpoint)
        .list_containers(&Filters::new())
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "request rejected (HTTP 503): (empty body)");
    server.join().unwrap();

    let body = r#"{"message":"maintenance"}"#.to_owned();
    let (endpoint, server) =
        canned_server("500 Internal Server Error", "application/json", body, 1);
    let err = client(&endpoint)
        .list_containers(&Filters::new())
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "request rejected (HTTP 500): maintenance");
    server.join().unwrap();
}

#[tokio::test]
async fn a_200_list_that_is_not_an_array_is_a_list_decode_error() {
    for body in [
        r#"{"containers":[]}"#,
        "<html>oops</html>",
        "",
        "[{\"Id\":1}]",
    ] {
        let (endpoint, server) = canned_server("200 OK", "application/json", body.to_owned(), 1);
        let err = client(&endpoint)
            .list_containers(&Filters::new())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::ListDecode(_)), "{body:?}: {err:?}");
        assert!(
            err.to_string()
                .starts_with("could not decode the container list: "),
            "{err}"
        );
        server.join().unwrap();
    }
}
