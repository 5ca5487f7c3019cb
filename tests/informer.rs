//! The informer against the reference router: it converges to the router's truth after
//! every kind of fault, and its handlers see every change, deletes included.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{
    Replica, cache_matches, client_for, config_for, converged, eventually, fast_backoff, informer,
    informer_on, router, synced_informer,
};
use hypersh::Informer;
use hypersh::watch::{Client, Filters, TlsMode};
use hypersh_apirouter::{RouterConfig, Shape};
use rand::{Rng, SeedableRng};

/// Churns the router for `duration` at `rate` events/s and waits until it has stopped.
async fn churn(router: &hypersh_apirouter::Router, rate: f64, duration: Duration) {
    router
        .runtime()
        .spawn_churn(rate, Some(duration))
        .await
        .expect("churn task ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_sync_then_steady_churn() {
    let router = router(RouterConfig::default().containers(60).seed(1)).await;
    let informer = informer(&router);
    let replica = Replica::attach(&informer);
    informer.wait_synced(common::PATIENCE).await.expect("ready");
    assert!(informer.store().has_synced());
    cache_matches(&informer, &router).expect("the first list is the truth");

    churn(&router, 400.0, Duration::from_secs(2)).await;
    converged(&informer, &replica, &router).await;
    let status = informer.status();
    assert!(status.connected);
    assert_eq!(status.reconnects, 0);
    assert!(status.events_received > 100, "{status:?}");
    informer.shutdown().await;
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_shape_converges() {
    let router = router(
        RouterConfig::default()
            .containers(40)
            .seed(2)
            .shape(Shape::Kubernetes),
    )
    .await;
    let (informer, replica) = synced_informer(&router).await;
    churn(&router, 300.0, Duration::from_secs(2)).await;
    converged(&informer, &replica, &router).await;
    informer.shutdown().await;
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_are_repaired_with_tombstones() {
    let router = router(RouterConfig::default().containers(40).seed(3)).await;
    let (informer, replica) = synced_informer(&router).await;

    // Drop the connection, then destroy containers before the informer is back: the
    // relist must turn them into tombstones.
    router.faults().set_reject_auth(true);
    router.faults().drop_connections();
    eventually("the informer to notice", || {
        (!informer.status().connected)
            .then_some(())
            .ok_or_else(|| "still connected".into())
    })
    .await;
    let victims: Vec<String> = router
        .runtime()
        .list(true)
        .iter()
        .take(5)
        .map(|c| c.id().to_string())
        .collect();
    for id in &victims {
        router.runtime().destroy(id).expect("destroy");
    }
    router.faults().set_reject_auth(false);
    converged(&informer, &replica, &router).await;
    assert!(
        replica
            .tombstones
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 5
    );
    assert!(informer.status().reconnects >= 1);

    // And under churn.
    let churning = tokio::spawn({
        let rt = router.runtime().clone();
        async move { rt.spawn_churn(300.0, Some(Duration::from_secs(2))).await }
    });
    // Three cuts during the churn, each seen by the informer before the next.
    for cut in 1..=3 {
        let before = informer.status().reconnects;
        router.faults().drop_connections();
        eventually(&format!("cut {cut} seen"), || {
            let now = informer.status().reconnects;
            (now > before)
                .then_some(())
                .ok_or_else(|| format!("reconnects {now}, {before} before the cut"))
        })
        .await;
    }
    churning.await.expect("churn").expect("churn");
    converged(&informer, &replica, &router).await;
    informer.shutdown().await;
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_half_open_connection_is_detected() {
    let router = router(RouterConfig::default().containers(20).seed(4)).await;
    let (informer, replica) = synced_informer(&router).await;

    router.faults().set_stall(true);
    churn(&router, 200.0, Duration::from_millis(500)).await;
    // The idle timeout (1 s in tests) must notice: no pong comes back.
    eventually("the stall to be noticed", || {
        let s = informer.status();
        (!s.connected).then_some(()).ok_or_else(|| format!("{s:?}"))
    })
    .await;
    assert!(
        cache_matches(&informer, &router).is_err(),
        "events were withheld"
    );
    router.faults().set_stall(false);
    converged(&informer, &replica, &router).await;
    informer.shutdown().await;
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_frames_are_skipped_and_counted() {
    let router = router(RouterConfig::default().containers(10).seed(5)).await;
    let (informer, replica) = synced_informer(&router).await;
    router.faults().send_malformed(6);
    churn(&router, 200.0, Duration::from_millis(500)).await;
    converged(&informer, &replica, &router).await;
    let status = informer.status();
    assert!(status.decode_errors >= 3, "{status:?}");
    assert_eq!(
        status.reconnects, 0,
        "a bad frame must not cost the connection"
    );
    informer.shutdown().await;
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_rejected_for_a_while_then_accepted() {
    let router = router(RouterConfig::default().containers(10).seed(6)).await;
    router.faults().set_reject_auth(true);
    let informer = informer(&router);
    let replica = Replica::attach(&informer);
    eventually("the auth failure to be reported", || {
        let s = informer.status();
        (s.auth_failing
            && s.last_error
                .as_deref()
                .is_some_and(|e| e.starts_with("authentication failed")))
        .then_some(())
        .ok_or_else(|| format!("{s:?}"))
    })
    .await;
    assert!(!informer.store().has_synced());
    router.faults().set_reject_auth(false);
    converged(&informer, &replica, &router).await;
    assert!(!informer.status().auth_failing);
    informer.shutdown().await;
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_restart_on_the_same_port_with_different_state() {
    let first = router(RouterConfig::default().containers(30).seed(7)).await;
    let addr = first.local_addr();
    // A restarted router has a new self-signed certificate: trust any for this test.
    let client = Client::new(config_for(&first).tls(TlsMode::InsecureSkipVerify)).unwrap();
    let informer = informer_on(client);
    let replica = Replica::attach(&informer);
    informer
        .wait_synced(common::PATIENCE)
        .await
        .expect("the informer syncs");
    cache_matches(&informer, &first).unwrap();
    first.shutdown().await;

    let second = router(RouterConfig::default().listen(addr).containers(25).seed(8)).await;
    converged(&informer, &replica, &second).await;
    assert!(informer.status().reconnects >= 1);
    informer.shutdown().await;
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_handlers_get_synthetic_adds_and_filters_narrow_the_cache() {
    let router = router(RouterConfig::default().seed(9)).await;
    let rt = router.runtime();
    let web = BTreeMap::from([("app".to_owned(), "web".to_owned())]);
    for i in 0..5 {
        rt.create(&format!("web-{i}"), "nginx", web.clone());
        rt.create(&format!("db-{i}"), "redis", BTreeMap::new());
    }
    let informer = Informer::builder(client_for(&router))
        .filters(Filters::new().label("app=web"))
        .backoff(fast_backoff())
        .build()
        .unwrap();
    informer
        .wait_synced(common::PATIENCE)
        .await
        .expect("the informer syncs");
    assert_eq!(informer.store().len(), 5);
    let replica = Replica::attach(&informer);
    eventually("synthetic adds", || {
        let n = replica.objects.lock().map(|m| m.len()).unwrap_or(0);
        (n == 5).then_some(()).ok_or_else(|| format!("{n} of 5"))
    })
    .await;
    assert!(
        Informer::builder(client_for(&router))
            .filters(Filters::new().event("start"))
            .build()
            .is_err()
    );
    informer.shutdown().await;
    router.shutdown().await;
}

/// Many rounds of random faults under churn; after each round, once churn stops, the
/// cache and a handler replica equal the router's list exactly.
///
/// The seed decides everything the router does: the churn is the runtime's own seeded
/// `churn_once`, driven step by step here, and each fault falls at a step the test's
/// seeded generator picks (not at a wall-clock time), so a seed replays the same input.
/// The steps are paced by an interval only so the informer watches them as they happen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_chaos_leaves_zero_mismatches() {
    const STEPS: u32 = 240;
    let seed = 20_261_126;
    let router = router(RouterConfig::default().containers(40).seed(seed)).await;
    let (informer, replica) = synced_informer(&router).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut pace = tokio::time::interval(Duration::from_millis(3));
    for round in 0..8 {
        let fault = rng.random_range(0..4);
        let at = rng.random_range(15..120);
        // Fault 2 rejects authentication for this many steps.
        let rejecting = 90;
        let malformed = rng.random_range(1..5);
        for step in 0..STEPS {
            pace.tick().await;
            router.runtime().churn_once();
            match (fault, step) {
                (0, s) if s == at => router.faults().drop_connections(),
                (1, s) if s == at => router.faults().send_malformed(malformed),
                (2, s) if s == at => {
                    router.faults().set_reject_auth(true);
                    router.faults().drop_connections();
                }
                (2, s) if s == at + rejecting => router.faults().set_reject_auth(false),
                (3, s) if s == at => router.faults().close_connections(),
                _ => {}
            }
        }
        eventually(
            &format!("round {round} (fault {fault} at step {at}) to converge"),
            || {
                cache_matches(&informer, &router)?;
                replica.matches(&router)
            },
        )
        .await;
    }
    informer.shutdown().await;
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_relist_and_resync() {
    let router = router(RouterConfig::default().containers(5).seed(10)).await;
    let informer = Informer::builder(client_for(&router))
        .backoff(fast_backoff())
        .relist(Duration::from_millis(200))
        .resync(Duration::from_millis(200))
        .build()
        .unwrap();
    let (tx, mut resynced) = tokio::sync::mpsc::unbounded_channel();
    informer.on_update(move |old, new| {
        if std::sync::Arc::ptr_eq(old, new) || old == new {
            let _ = tx.send(new.id().to_string());
        }
    });
    informer
        .wait_synced(common::PATIENCE)
        .await
        .expect("the informer syncs");
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 5 {
        let id = tokio::time::timeout(common::PATIENCE, resynced.recv())
            .await
            .expect("resync delivers every container")
            .expect("channel open");
        seen.insert(id);
    }
    eventually("a periodic relist", || {
        let s = informer.status();
        (s.relists >= 3)
            .then_some(())
            .ok_or_else(|| format!("{s:?}"))
    })
    .await;
    assert_eq!(
        informer.status().reconnects,
        0,
        "a relist reuses the connection"
    );
    informer.shutdown().await;
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_the_websocket_and_stops() {
    let router = router(RouterConfig::default().containers(3).seed(11)).await;
    let informer = informer(&router);
    informer
        .wait_synced(common::PATIENCE)
        .await
        .expect("the informer syncs");
    router.wait_for_active_watches(1).await;
    informer.shutdown().await;
    assert_eq!(informer.status().phase, hypersh::reflector::Phase::Stopped);
    tokio::time::timeout(common::PATIENCE, router.wait_for_active_watches(0))
        .await
        .expect("the router sees the watch closed");
    // Shutting down twice is harmless.
    informer.shutdown().await;
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_while_connecting_to_a_stalled_router() {
    let router = router(RouterConfig::default().seed(12)).await;
    router.faults().set_stall(true);
    let informer = informer(&router);
    eventually("the informer to be connecting", || {
        let s = informer.status();
        (s.phase == hypersh::reflector::Phase::Connecting)
            .then_some(())
            .ok_or_else(|| format!("{s:?}"))
    })
    .await;
    tokio::time::timeout(Duration::from_secs(5), informer.shutdown())
        .await
        .expect("shutdown does not wait for the stalled handshake");
    router.faults().set_stall(false);
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_clone_stops_the_informer() {
    let router = router(RouterConfig::default().containers(3).seed(13)).await;
    let informer = informer(&router);
    let copy = informer.clone();
    informer
        .wait_synced(common::PATIENCE)
        .await
        .expect("the informer syncs");
    router.wait_for_active_watches(1).await;
    drop(informer);
    assert!(
        !copy.shutdown_token().is_cancelled(),
        "a clone keeps it running"
    );
    let status = copy.status_handle();
    drop(copy);
    tokio::time::timeout(common::PATIENCE, router.wait_for_active_watches(0))
        .await
        .expect("the watch is closed once every clone is gone");
    eventually("the reflector to stop", || {
        let s = status.snapshot();
        (s.phase == hypersh::reflector::Phase::Stopped)
            .then_some(())
            .ok_or_else(|| format!("{s:?}"))
    })
    .await;
    router.shutdown().await;
}

/// A handler that does not return until released holds the writer (backpressure with a
/// queue of one); shutdown must still end the reflector promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_while_a_handler_is_busy() {
    let router = router(RouterConfig::default().containers(20).seed(14)).await;
    let informer = Informer::builder(client_for(&router))
        .backoff(fast_backoff())
        .store_config(hypersh::store::StoreConfig::default().queue_capacity(1))
        .build()
        .unwrap();
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let (entered, mut entered_rx) = tokio::sync::mpsc::unbounded_channel();
    informer.on_add(move |_| {
        let _ = entered.send(());
        // Busy until released (or for at most a minute, so a failing test still ends).
        // A handler that blocks must say so (`block_in_place`), as the store's docs ask.
        tokio::task::block_in_place(|| {
            let _ = wait.recv_timeout(Duration::from_secs(60));
        });
    });
    tokio::time::timeout(common::PATIENCE, entered_rx.recv())
        .await
        .expect("the handler is called");
    tokio::time::timeout(Duration::from_secs(5), informer.shutdown())
        .await
        .expect("shutdown does not wait for a busy handler");
    assert_eq!(informer.status().phase, hypersh::reflector::Phase::Stopped);
    drop(release);
    router.shutdown().await;
}

/// Shutdown while the list call hangs: a raw server accepts the websocket but never
/// answers `GET /containers/json`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_while_listing() {
    let server = common::raw::RawServer::start(1 << 20, Vec::new(), None).await;
    let informer = informer_on(server.client());
    eventually("the informer to be listing", || {
        let s = informer.status();
        (s.phase == hypersh::reflector::Phase::Listing)
            .then_some(())
            .ok_or_else(|| format!("{s:?}"))
    })
    .await;
    tokio::time::timeout(Duration::from_secs(5), informer.shutdown())
        .await
        .expect("shutdown does not wait for a hanging list");
    assert_eq!(informer.status().phase, hypersh::reflector::Phase::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_fetch_does_not_hold_up_other_events() {
    let router = router(RouterConfig::default().containers(5).seed(7)).await;
    let (informer, replica) = synced_informer(&router).await;
    let rt = router.runtime().clone();
    let cached = rt.list(true)[0].id().to_string();

    // Lists now answer only when released: the fetch of a new container hangs.
    router.faults().set_hold_lists(true);
    let new = rt.create("slow-fetch", "busybox", BTreeMap::new());
    eventually(
        "the fetch of the new container to be held",
        || match router.faults().held_lists() {
            0 => Err("no list is held yet".to_owned()),
            _ => Ok(()),
        },
    )
    .await;
    // Both events come after the held answer was taken.
    rt.start(&new).expect("start the new container");
    rt.rename(&cached, "renamed-meanwhile").expect("rename");

    // The rename of a cached container is applied while the fetch still hangs.
    eventually(
        "the rename to reach the cache during the fetch",
        || match informer.store().get(&cached) {
            Some(c) if c.name() == Some("renamed-meanwhile") => Ok(()),
            other => Err(format!(
                "cached: {:?}",
                other.map(|c| c.names().collect::<Vec<_>>().join(","))
            )),
        },
    )
    .await;
    assert!(
        informer.store().get(&new).is_none(),
        "the new container waits for its fetch"
    );

    // Released: the answer (the new container as created) is stored, and the start,
    // held by the informer while the fetch ran, is replayed on top of it.
    router.faults().set_hold_lists(false);
    converged(&informer, &replica, &router).await;
    let stored = informer.store().get(&new).expect("fetched");
    assert_eq!(stored.state(), hypersh::watch::ContainerState::Running);
    informer.shutdown().await;
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_with_slow_fetches_converges_in_both_shapes() {
    for (seed, shape) in [(11, Shape::Docker), (12, Shape::Kubernetes)] {
        let router = router(
            RouterConfig::default()
                .containers(30)
                .seed(seed)
                .shape(shape),
        )
        .await;
        let (informer, replica) = synced_informer(&router).await;
        let churning = tokio::spawn({
            let rt = router.runtime().clone();
            async move {
                rt.spawn_churn(400.0, Some(Duration::from_millis(1500)))
                    .await
            }
        });
        // Lists answer late, on and off, while the runtime churns: fetches overlap with
        // events about the containers they fetch, which are held and replayed.
        while !churning.is_finished() {
            router.faults().set_hold_lists(true);
            tokio::time::sleep(Duration::from_millis(40)).await;
            router.faults().set_hold_lists(false);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        churning.await.expect("churn").expect("churn");
        converged(&informer, &replica, &router).await;
        assert!(
            informer.status().fetches > 0,
            "{shape:?}: creates were fetched"
        );
        informer.shutdown().await;
        router.shutdown().await;
    }
}
