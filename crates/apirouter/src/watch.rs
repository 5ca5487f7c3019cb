//! One `/events/ws` connection: pushes the runtime's events that match the connection's
//! filters, answers pings (by reading), and obeys the fault handles.
//!
//! Every send (an event, garbage, a pong queued by a client's ping) must complete within
//! the send timeout: a client that does not read is closed with 1008, like one that fell
//! behind the broadcast, and its slot is freed at that moment, before the (bounded) attempt
//! to deliver the close frame.
//!
//! Everything a session listens to (runtime events, fault commands, the drop token) is
//! taken in the upgrade handler, before the `101` answer, so nothing that happens after a
//! client's connect returns is missed.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures_util::SinkExt;
use hypersh_watch::event::Shape;
use hypersh_watch::filters::Filters;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::task_tracker::TaskTrackerToken;

use crate::config::CLOSE_REPLY_WAIT;
use crate::emit::EmitPool;
use crate::faults::{Control, Faults};
use crate::runtime::RuntimeEvent;
use crate::shape;
use crate::state::WatchSlot;

/// Close code for a client that fell too far behind (policy violation).
pub(crate) const CLOSE_LAGGED: u16 = 1008;
/// Close code of [`crate::Faults::close_connections`] (going away).
pub(crate) const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code at the end of an `--emit` burst (normal closure).
pub(crate) const CLOSE_NORMAL: u16 = 1000;

/// Everything one websocket session needs, gathered before the upgrade completes.
pub(crate) struct Session {
    pub(crate) filters: Filters,
    pub(crate) shape: Shape,
    pub(crate) events: broadcast::Receiver<RuntimeEvent>,
    pub(crate) control: broadcast::Receiver<Control>,
    pub(crate) stall: watch::Receiver<bool>,
    /// Counts this session as held while the stall is on ([`crate::Faults::stalled`]).
    pub(crate) faults: Faults,
    pub(crate) emit: Option<Arc<EmitPool>>,
    /// Ends the session abruptly ([`crate::Faults::drop_connections`]).
    pub(crate) drop: CancellationToken,
    /// Ends the session abruptly (router shutdown).
    pub(crate) shutdown: CancellationToken,
    /// Keeps the router's shutdown waiting for this session.
    pub(crate) tracked: TaskTrackerToken,
    /// Counts this connection against its access key until the session ends.
    pub(crate) slot: WatchSlot,
    /// How long one send may take before the client is closed with 1008.
    pub(crate) send_timeout: Duration,
}

impl Session {
    /// Runs the session to its end. Dropping the socket without a close frame is how
    /// `drop_connections` and shutdown end it.
    pub(crate) async fn run(self, socket: WebSocket) {
        let drop = self.drop.clone();
        let shutdown = self.shutdown.clone();
        tokio::select! {
            biased;
            () = shutdown.cancelled() => tracing::debug!("watch ended by shutdown"),
            () = drop.cancelled() => tracing::debug!("watch dropped by fault injection"),
            () = self.serve(socket) => {}
        }
    }

    async fn serve(self, mut socket: WebSocket) {
        let Session {
            filters,
            shape,
            mut events,
            mut control,
            mut stall,
            faults,
            emit,
            tracked: _tracked,
            slot,
            send_timeout,
            ..
        } = self;
        if let Some(pool) = emit {
            match pool.send(&mut socket, &filters, send_timeout).await {
                Ok(()) => close(&mut socket, CLOSE_NORMAL, "emit done").await,
                Err(crate::emit::SendError::TimedOut) => {
                    not_reading(&mut socket, slot).await;
                }
                Err(crate::emit::SendError::Socket(_)) => {}
            }
            return;
        }
        let mut garbage_due = 0usize;
        let mut garbage_sent = 0usize;
        loop {
            if *stall.borrow_and_update() {
                // Half-open: neither read nor write until the fault is turned off.
                let _held = faults.stalled_one();
                tokio::select! {
                    changed = stall.changed() => if changed.is_err() { return },
                    command = control.recv() => match Fault::from(command) {
                        Fault::Garbage(n) => garbage_due += n,
                        Fault::Close => return close_going_away(&mut socket).await,
                        Fault::Gone => return,
                    },
                }
                continue;
            }
            while garbage_due > 0 {
                match send(&mut socket, garbage(shape, garbage_sent), send_timeout).await {
                    Sent::Ok => {}
                    Sent::Failed => return,
                    Sent::TimedOut => return not_reading(&mut socket, slot).await,
                }
                garbage_due -= 1;
                garbage_sent += 1;
            }
            // Biased: a fault injected before an event is seen before that event.
            tokio::select! {
                biased;
                changed = stall.changed() => if changed.is_err() { return },
                command = control.recv() => match Fault::from(command) {
                    Fault::Garbage(n) => garbage_due += n,
                    Fault::Close => return close_going_away(&mut socket).await,
                    Fault::Gone => return,
                },
                incoming = socket.recv() => match incoming {
                    // A ping queues a pong, which the socket writes at the next read or
                    // send; flush it now so that a client that pings and never reads is
                    // found out by the send timeout instead of pinging for ever. A close
                    // frame is answered at the next read, which then ends the stream.
                    Some(Ok(Message::Ping(_))) => {
                        match tokio::time::timeout(send_timeout, socket.flush()).await {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) => return,
                            Err(_) => return not_reading(&mut socket, slot).await,
                        }
                    }
                    Some(Ok(_)) => {}
                    None | Some(Err(_)) => return,
                },
                event = events.recv() => match event {
                    Ok(event) => {
                        if shape::matches(&filters, &event) {
                            for frame in shape::encode(shape, &event) {
                                match send(&mut socket, Message::Text(frame.into()), send_timeout).await {
                                    Sent::Ok => {}
                                    Sent::Failed => return,
                                    Sent::TimedOut => return not_reading(&mut socket, slot).await,
                                }
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::info!(missed, "closing a watch client that fell behind");
                        drop(slot);
                        let reason = format!("watch client too slow: {missed} events missed, relist");
                        close(&mut socket, CLOSE_LAGGED, &reason).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }
}

/// What a fault command means for one connection.
enum Fault {
    /// Send this many more garbage frames (0 when commands were missed).
    Garbage(usize),
    /// Close politely.
    Close,
    /// The router is gone: just end.
    Gone,
}

impl From<Result<Control, broadcast::error::RecvError>> for Fault {
    fn from(command: Result<Control, broadcast::error::RecvError>) -> Self {
        match command {
            Ok(Control::Malformed(n)) => Self::Garbage(n),
            Err(broadcast::error::RecvError::Lagged(_)) => Self::Garbage(0),
            Ok(Control::Close) => Self::Close,
            Err(broadcast::error::RecvError::Closed) => Self::Gone,
        }
    }
}

/// How one send ended.
enum Sent {
    Ok,
    /// The connection is broken.
    Failed,
    /// The send did not complete within the send timeout: the client is not reading.
    TimedOut,
}

/// Sends (writes and flushes) one message within `limit`.
async fn send(socket: &mut WebSocket, message: Message, limit: Duration) -> Sent {
    match tokio::time::timeout(limit, socket.send(message)).await {
        Ok(Ok(())) => Sent::Ok,
        Ok(Err(_)) => Sent::Failed,
        Err(_) => Sent::TimedOut,
    }
}

/// Ends the watch of a client that does not read: frees its slot at once, then tries
/// (for a bounded time) to deliver a 1008 close frame behind what is already queued.
async fn not_reading(socket: &mut WebSocket, slot: WatchSlot) {
    tracing::info!("closing a watch client that does not read (send timed out)");
    drop(slot);
    close(
        socket,
        CLOSE_LAGGED,
        "watch client not reading: send timed out, relist",
    )
    .await;
}

/// Closes with "going away": the router closes the watch (fault injection or shutdown).
async fn close_going_away(socket: &mut WebSocket) {
    close(socket, CLOSE_GOING_AWAY, "server closing the watch").await;
}

/// Sends a close frame, then waits (a little) for the client's close frame; each step
/// takes at most [`CLOSE_REPLY_WAIT`].
async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from(reason),
    };
    let sent = tokio::time::timeout(CLOSE_REPLY_WAIT, socket.send(Message::Close(Some(frame))));
    if !matches!(sent.await, Ok(Ok(()))) {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_REPLY_WAIT, async {
        while let Some(Ok(_)) = socket.recv().await {}
    })
    .await;
}

/// The `index`-th garbage frame: text that is not JSON, a JSON array, an event without an
/// id (in the connection's shape), or a binary frame.
pub(crate) fn garbage(shape: Shape, index: usize) -> Message {
    match index % 4 {
        0 => Message::Text(Utf8Bytes::from_static("this is not JSON {")),
        1 => Message::Text(Utf8Bytes::from_static("[1,2,3]")),
        2 => Message::Text(match shape {
            Shape::Docker => Utf8Bytes::from_static(
                r#"{"status":"start","from":"busybox","Type":"container","Action":"start","Actor":{"Attributes":{"image":"busybox"}},"time":1476375774}"#,
            ),
            Shape::Kubernetes => Utf8Bytes::from_static(
                r#"{"Action":"MODIFIED","Status":"Running","From":"busybox","Type":"container","Actor":{"Attributes":{"Image":"busybox"}},"Time":1476017460}"#,
            ),
        }),
        _ => Message::Binary(Bytes::from_static(b"\x00\x01\x02 binary garbage \xff")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hypersh_watch::event::{DecodeError, WatchEvent};

    #[test]
    fn garbage_frames_fail_to_decode_each_their_own_way() {
        for shape in [Shape::Docker, Shape::Kubernetes] {
            let text = |i| match garbage(shape, i) {
                Message::Text(t) => t.as_str().to_owned(),
                other => panic!("expected text, got {other:?}"),
            };
            assert!(matches!(
                WatchEvent::decode(text(0)),
                Err(DecodeError::Json(_))
            ));
            assert!(matches!(
                WatchEvent::decode(text(1)),
                Err(DecodeError::NotObject)
            ));
            assert!(matches!(
                WatchEvent::decode(text(2)),
                Err(DecodeError::MissingId)
            ));
            assert!(matches!(garbage(shape, 3), Message::Binary(_)));
            assert_eq!(garbage(shape, 4), garbage(shape, 0), "the mix cycles");
        }
    }
}
