//! Metrics carry the informer's and the controller's names, so two of each in one
//! process write different series. A recorder that notes every key registered.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hypersh_reflector::Informer;
use hypersh_reflector::controller::{Action, Controller, ControllerConfig, ReconcileError};
use hypersh_reflector::testing::FakeSource;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};

/// Every metric key registered, as `name{k=v,...}`.
#[derive(Clone, Default)]
struct Keys(Arc<Mutex<Vec<String>>>);

impl Keys {
    fn note(&self, key: &Key) {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let text = format!("{}{{{}}}", key.name(), labels.join(","));
        let mut keys = self.0.lock().unwrap();
        if !keys.contains(&text) {
            keys.push(text);
        }
    }

    fn has(&self, key: &str) -> bool {
        self.0.lock().unwrap().iter().any(|k| k == key)
    }
}

impl Recorder for Keys {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        self.note(key);
        Counter::noop()
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        self.note(key);
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        self.note(key);
        Histogram::noop()
    }
}

#[tokio::test(start_paused = true)]
async fn two_named_informers_and_their_controllers_write_their_own_series() {
    let keys = Keys::default();
    metrics::set_global_recorder(keys.clone()).expect("the only recorder of this binary");
    let mut informers = Vec::new();
    for name in ["east", "west"] {
        let informer = Informer::builder(FakeSource::new())
            .name(name)
            .build()
            .expect("builds");
        assert_eq!(informer.name(), Some(name));
        informer
            .wait_synced(Duration::from_secs(5))
            .await
            .expect("ready");
        let controller = Controller::new(&informer, ControllerConfig::new(format!("c-{name}")))
            .expect("a controller");
        let handle = controller.handle();
        let reconcile = |_, _: Arc<()>| async { Ok::<_, ReconcileError>(Action::Done) };
        let task = tokio::spawn(controller.run(reconcile, Arc::new(())));
        tokio::time::sleep(Duration::from_millis(300)).await;
        handle.shutdown();
        task.await.expect("stops");
        informers.push(informer);
    }
    for name in ["east", "west"] {
        for metric in [
            "hypersh_reflector_relists_total",
            "hypersh_reflector_connected",
        ] {
            let key = format!("{metric}{{informer={name}}}");
            assert!(keys.has(&key), "{key} in {:?}", keys.0.lock().unwrap());
        }
        for metric in [
            "hypersh_controller_reconciles_total",
            "hypersh_controller_reconcile_errors_total",
            "hypersh_controller_retries_total",
            "hypersh_controller_queue_depth",
            "hypersh_controller_oldest_item_age_seconds",
        ] {
            let key = format!("{metric}{{controller=c-{name}}}");
            assert!(keys.has(&key), "{key} in {:?}", keys.0.lock().unwrap());
        }
    }
    for informer in informers {
        informer.shutdown().await;
    }
}
