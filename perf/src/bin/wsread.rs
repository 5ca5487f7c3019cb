//! Raw tokio-tungstenite clients of `/events/ws`, the reference points of the throughput
//! benchmark:
//! - `--mode read`: the ceiling, reads frames and does nothing with them;
//! - `--mode naive`: decodes each frame with plain serde_json into owned structs (the
//!   baseline the full informer must beat);
//! - `--mode borrowed`: the same, borrowing strings from the frame.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hint::black_box;

use clap::{Parser, ValueEnum};
use futures_util::StreamExt;
use hypersh_perf::{Stopwatch, Target, connect_raw, runtime};
use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    target: Target,
    #[arg(long, value_enum, default_value_t = Mode::Read)]
    mode: Mode,
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Read,
    Naive,
    Borrowed,
}

/// A Docker event as a naive client would declare it: every string owned.
#[allow(dead_code)]
#[derive(Deserialize)]
struct Owned {
    status: Option<String>,
    id: Option<String>,
    from: Option<String>,
    #[serde(rename = "Type")]
    kind: Option<String>,
    #[serde(rename = "Action")]
    action: Option<String>,
    #[serde(rename = "Actor")]
    actor: Option<OwnedActor>,
    time: Option<i64>,
    #[serde(rename = "timeNano")]
    time_nano: Option<i64>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct OwnedActor {
    #[serde(rename = "ID")]
    id: Option<String>,
    #[serde(rename = "Attributes")]
    attributes: HashMap<String, String>,
}

/// The same, borrowing from the frame where no unescaping is needed.
#[allow(dead_code)]
#[derive(Deserialize)]
struct Borrowed<'a> {
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    from: Option<Cow<'a, str>>,
    #[serde(rename = "Type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(rename = "Action", borrow)]
    action: Option<Cow<'a, str>>,
    #[serde(rename = "Actor", borrow)]
    actor: Option<BorrowedActor<'a>>,
    time: Option<i64>,
    #[serde(rename = "timeNano")]
    time_nano: Option<i64>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct BorrowedActor<'a> {
    #[serde(rename = "ID", borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(rename = "Attributes", borrow)]
    attributes: HashMap<Cow<'a, str>, Cow<'a, str>>,
}

fn main() {
    let args = Args::parse();
    let name = match args.mode {
        Mode::Read => "read-only",
        Mode::Naive => "naive-decode",
        Mode::Borrowed => "borrowed-decode",
    };
    let result = runtime().block_on(async {
        let watch = Stopwatch::start();
        let mut ws = connect_raw(&args.target).await?;
        let mut events = 0u64;
        let mut errors = 0u64;
        while let Some(msg) = ws.next().await {
            let Message::Text(text) = msg.map_err(|e| e.to_string())? else {
                continue;
            };
            let ok = match args.mode {
                Mode::Read => {
                    black_box(&text);
                    true
                }
                Mode::Naive => serde_json::from_str::<Owned>(&text).map(black_box).is_ok(),
                Mode::Borrowed => serde_json::from_str::<Borrowed<'_>>(&text)
                    .map(black_box)
                    .is_ok(),
            };
            errors += u64::from(!ok);
            events += 1;
            if events >= args.target.events {
                break;
            }
        }
        let mut report = watch.report(name, events);
        report.extra.insert("errors".into(), errors.into());
        Ok::<_, String>(report)
    });
    match result {
        Ok(report) => report.print(),
        Err(e) => {
            eprintln!("{name}: {e}");
            std::process::exit(1);
        }
    }
}
