//! `GET /containers/json`: `all`, `limit`, each list filter, version prefixes, unknown
//! parameters, bad filters.

mod common;

use std::collections::BTreeMap;

use common::{Client, filters};
use hypersh_apirouter::{Router, RouterConfig, Runtime};
use hypersh_watch::container::ContainerState;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// web (running), db (exited 3), cache (paused), fresh (created), oldest first.
fn runtime() -> Runtime {
    let rt = Runtime::new(1);
    let web = rt.create(
        "web",
        "nginx:1.25",
        labels(&[("app", "web"), ("tier", "frontend")]),
    );
    let db = rt.create(
        "db",
        "postgres:16",
        labels(&[("app", "db"), ("tier", "backend")]),
    );
    let cache = rt.create("cache", "redis:7", labels(&[("app", "cache")]));
    rt.create("fresh", "busybox", BTreeMap::new());
    rt.start(&web).unwrap();
    rt.start(&db).unwrap();
    rt.die(&db, 3).unwrap();
    rt.start(&cache).unwrap();
    rt.pause(&cache).unwrap();
    rt
}

async fn router() -> Router {
    Router::start(RouterConfig::default().runtime(runtime()))
        .await
        .unwrap()
}

fn names(list: &[hypersh_watch::container::Container]) -> Vec<&str> {
    list.iter().filter_map(|c| c.name()).collect()
}

#[tokio::test]
async fn lists_running_by_default_and_everything_with_all() {
    let router = router().await;
    let client = Client::new(&router);
    assert_eq!(names(&client.list("").await), ["cache", "web"]);
    assert_eq!(
        names(&client.list("all=1").await),
        ["fresh", "cache", "db", "web"]
    );
    assert_eq!(
        names(&client.list("all=true").await),
        ["fresh", "cache", "db", "web"]
    );
    assert_eq!(names(&client.list("all=0").await), ["cache", "web"]);

    let all = client.list("all=1").await;
    assert_eq!(
        all,
        router
            .runtime()
            .list(true)
            .into_iter()
            .map(|c| {
                let listed = all.iter().find(|l| l.id() == c.id()).unwrap();
                c.into_builder().status(listed.status()).build()
            })
            .collect::<Vec<_>>(),
        "the list answer is the runtime's truth"
    );
    let db = all.iter().find(|c| c.name() == Some("db")).unwrap();
    assert_eq!(db.state(), ContainerState::Exited);
    assert!(db.status().starts_with("Exited (3) "), "{}", db.status());
    assert_eq!(db.id().len(), 64);
    assert_eq!(db.names().collect::<Vec<_>>(), ["/db"]);
    assert!(db.image_id().starts_with("sha256:"));
    router.shutdown().await;
}

#[tokio::test]
async fn the_body_is_a_docker_container_summary() {
    let router = router().await;
    let client = Client::new(&router);
    let response = client.get("/containers/json").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: serde_json::Value = response.json().await.unwrap();
    let web = &body[1];
    for field in [
        "Id",
        "Names",
        "Image",
        "ImageID",
        "Command",
        "Created",
        "Ports",
        "Labels",
        "State",
        "Status",
        "HostConfig",
        "NetworkSettings",
        "Mounts",
    ] {
        assert!(web.get(field).is_some(), "{field} in {web}");
    }
    assert_eq!(web["Names"][0], "/web");
    assert_eq!(web["Labels"]["tier"], "frontend");
    // Running on the default bridge, nginx's port published, its content bind-mounted.
    assert_eq!(web["HostConfig"]["NetworkMode"], "default");
    let bridge = &web["NetworkSettings"]["Networks"]["bridge"];
    assert_eq!(bridge["IPAddress"], "172.17.0.2");
    assert_eq!(bridge["Gateway"], "172.17.0.1");
    assert_eq!(bridge["NetworkID"].as_str().map(str::len), Some(64));
    assert_eq!(
        web["Ports"],
        serde_json::json!([
            {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 30000, "Type": "tcp"},
            {"IP": "::", "PrivatePort": 80, "PublicPort": 30000, "Type": "tcp"}
        ])
    );
    assert_eq!(web["Mounts"][0]["Destination"], "/usr/share/nginx/html");
    assert_eq!(web["Mounts"][0]["RW"], false);
    // Exited: on its network without an address, no ports, its volume still listed.
    let all: serde_json::Value = client
        .get("/containers/json?all=1")
        .await
        .json()
        .await
        .unwrap();
    let db = all
        .as_array()
        .and_then(|all| all.iter().find(|c| c["Names"][0] == "/db"))
        .expect("db listed");
    assert_eq!(db["State"], "exited");
    assert_eq!(db["Ports"], serde_json::json!([]));
    assert_eq!(
        db["NetworkSettings"]["Networks"]["frontend"]["IPAddress"],
        ""
    );
    assert_eq!(db["Mounts"][1]["Type"], "volume");
    assert_eq!(db["Mounts"][1]["Destination"], "/var/lib/postgresql/data");
    router.shutdown().await;
}

#[tokio::test]
async fn each_list_filter_narrows() {
    let router = router().await;
    let client = Client::new(&router);
    let web_id = router.runtime().get("web").unwrap().id().to_owned();
    let db_id = router.runtime().get("db").unwrap().id().to_owned();
    let unknown = "f".repeat(Runtime::ID_LEN);
    let cases: &[(&str, &[&str])] = &[
        (&format!(r#"{{"id":["{}"]}}"#, &web_id[..10]), &["web"]),
        // Whole ids are looked up; a prefix among them makes the list test every one.
        (
            &format!(r#"{{"id":["{web_id}","{db_id}","{unknown}"]}}"#),
            &["db", "web"],
        ),
        (
            &format!(r#"{{"id":["{web_id}","{}"]}}"#, &db_id[..5]),
            &["db", "web"],
        ),
        (
            &format!(r#"{{"id":["{web_id}","{db_id}"],"label":["tier=backend"]}}"#),
            &["db"],
        ),
        (r#"{"name":{"ca":true}}"#, &["cache"]),
        (r#"{"label":["app"]}"#, &["cache", "db", "web"]),
        (r#"{"label":["tier=backend"]}"#, &["db"]),
        (r#"{"label":["app","tier=frontend"]}"#, &["web"]),
        (r#"{"status":["exited"]}"#, &["db"]),
        (r#"{"status":["created","paused"]}"#, &["fresh", "cache"]),
        (r#"{"exited":["3"]}"#, &["db"]),
        (r#"{"exited":["0"]}"#, &[]),
        (r#"{"ancestor":["redis"]}"#, &["cache"]),
        (r#"{"image":["nginx:1.25"]}"#, &["web"]),
        (r#"{"image":["postgres"],"label":["app=db"]}"#, &["db"]),
    ];
    for (json, want) in cases {
        let got = client.list(&format!("all=1&{}", filters(json))).await;
        assert_eq!(names(&got), *want, "{json}");
    }
    // Without `all`, a status filter still sees stopped containers (as in Docker).
    assert_eq!(
        names(&client.list(&filters(r#"{"status":["exited"]}"#)).await),
        ["db"]
    );
    // Without `all`, other filters only see running ones.
    assert_eq!(
        names(&client.list(&filters(r#"{"label":["app"]}"#)).await),
        ["cache", "web"]
    );
    router.shutdown().await;
}

#[tokio::test]
async fn limit_takes_the_newest() {
    let router = router().await;
    let client = Client::new(&router);
    assert_eq!(
        names(&client.list("all=1&limit=2").await),
        ["fresh", "cache"]
    );
    assert_eq!(names(&client.list("all=1&limit=-1").await).len(), 4);
    assert_eq!(names(&client.list("all=1&limit=0").await).len(), 4);
    let bad = client.get("/containers/json?limit=lots").await;
    assert_eq!(bad.status(), 400);
    router.shutdown().await;
}

#[tokio::test]
async fn version_prefixes_and_unknown_parameters() {
    let router = router().await;
    let client = Client::new(&router);
    for path in [
        "/v1.23/containers/json?all=1",
        "/v1.41/containers/json?all=1",
    ] {
        let response = client.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let list: Vec<hypersh_watch::container::Container> = response.json().await.unwrap();
        assert_eq!(list.len(), 4);
    }
    // docker-py's parameters and made-up ones are ignored.
    let list = client
        .list("all=1&limit=-1&size=0&trunc_cmd=0&since=x&before=y&bogus=1")
        .await;
    assert_eq!(list.len(), 4);
    for path in [
        "/vx/containers/json",
        "/v1/containers/json",
        "/containers/jsonx",
        "/nothing",
    ] {
        let response = client.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(body["message"].is_string());
    }
    router.shutdown().await;
}

#[tokio::test]
async fn bad_filters_are_400_with_a_json_message() {
    let router = router().await;
    let client = Client::new(&router);
    for json in [
        "{nope",
        r#"{"event":["start"]}"#,
        r#"{"status":["sleeping"]}"#,
        r#"{"exited":["x"]}"#,
        "[1]",
    ] {
        let response = client
            .get(&format!("/containers/json?{}", filters(json)))
            .await;
        assert_eq!(response.status(), 400, "{json}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(!body["message"].as_str().unwrap().is_empty(), "{json}");
    }
    // Both wire forms are accepted.
    for json in [r#"{"label":{"app=web":true}}"#, r#"{"label":["app=web"]}"#] {
        assert_eq!(names(&client.list(&filters(json)).await), ["web"]);
    }
    router.shutdown().await;
}
