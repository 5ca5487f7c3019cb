//! Stdout for lines of output, shared by handlers on any thread, cheap at a million
//! lines: on a terminal each line is written at once; elsewhere (a file, a pipe) lines
//! are gathered in a buffer of at most [`STDOUT_BUFFER`] bytes (plus the line that
//! fills it), written when it fills, and by a flusher thread at most
//! [`STDOUT_FLUSH_EVERY`] after the first line that went in, so a slow trickle of lines
//! still shows promptly. [`Stdout::flush`] (and dropping the last clone) writes what is
//! left.
//!
//! A failed write or flush (a reader such as `head` that went away: `BrokenPipe`)
//! closes it: later lines are dropped and [`Stdout::closed`] resolves, so the program can
//! end its run cleanly instead of panicking as `println!` does.

use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// The bytes of lines held before they are written, when stdout is not a terminal.
pub const STDOUT_BUFFER: usize = 64 * 1024;

/// The longest a buffered line waits before it is written.
pub const STDOUT_FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Stdout for lines of output: see the [module docs](self). Clones share the buffer;
/// dropping the last one writes what is left.
#[derive(Clone, Debug)]
pub struct Stdout(Arc<Handle>);

impl Default for Stdout {
    /// Line at a time on a terminal, buffered elsewhere.
    fn default() -> Self {
        Self::new(!std::io::stdout().is_terminal())
    }
}

/// The users' side: dropping the last clone writes the buffer and stops the flusher.
#[derive(Debug)]
struct Handle {
    shared: Arc<Shared>,
}

/// What the users and the flusher thread share.
#[derive(Debug)]
struct Shared {
    /// Lines are gathered (`false`: written one by one, for a terminal).
    buffered: bool,
    closed: AtomicBool,
    notify: tokio::sync::Notify,
    pending: Mutex<Pending>,
    /// Wakes the flusher when the buffer gets its first line, or at the end.
    wake: Condvar,
}

#[derive(Debug, Default)]
struct Pending {
    bytes: Vec<u8>,
    flusher: Flusher,
}

/// The flusher thread's state, as the users see it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Flusher {
    /// Started with the first buffered line.
    #[default]
    NotStarted,
    /// Waiting for a line: wake it.
    Idle,
    /// Will write the buffer soon: no need to wake it.
    Busy,
    /// Gone (the last clone was dropped), or never started (the thread could not be
    /// made): lines are written one by one.
    Stopped,
}

impl Stdout {
    /// Buffered (`true`) or line at a time.
    pub fn new(buffered: bool) -> Self {
        Self(Arc::new(Handle {
            shared: Arc::new(Shared {
                buffered,
                closed: AtomicBool::new(false),
                notify: tokio::sync::Notify::new(),
                pending: Mutex::new(Pending::default()),
                wake: Condvar::new(),
            }),
        }))
    }

    /// True when lines are written one by one (stdout is a terminal).
    pub fn is_terminal(&self) -> bool {
        !self.0.shared.buffered
    }

    /// Writes `text` and a newline (at once on a terminal, else soon); false once stdout
    /// is closed.
    pub fn line(&self, text: impl Display) -> bool {
        let shared = &self.0.shared;
        if shared.is_closed() {
            return false;
        }
        if !shared.buffered {
            let mut out = std::io::stdout().lock();
            return match writeln!(out, "{text}").and_then(|()| out.flush()) {
                Ok(()) => true,
                Err(e) => {
                    shared.close(&e);
                    false
                }
            };
        }
        let mut pending = shared.lock();
        let was_empty = pending.bytes.is_empty();
        if pending.bytes.capacity() == 0 {
            pending.bytes.reserve(STDOUT_BUFFER);
        }
        // Writing into a `Vec` fails only if `text`'s `Display` does: nothing to say then.
        let _ = writeln!(pending.bytes, "{text}");
        if pending.bytes.len() >= STDOUT_BUFFER {
            return shared.write_out(&mut pending);
        }
        if was_empty {
            match pending.flusher {
                Flusher::NotStarted => {
                    pending.flusher = Flusher::Busy;
                    let flusher = Arc::clone(shared);
                    let started = std::thread::Builder::new()
                        .name("stdout-flusher".to_owned())
                        .spawn(move || flusher.run_flusher());
                    if started.is_err() {
                        pending.flusher = Flusher::Stopped;
                    }
                }
                Flusher::Idle => {
                    pending.flusher = Flusher::Busy;
                    shared.wake.notify_one();
                }
                Flusher::Busy | Flusher::Stopped => {}
            }
        }
        if pending.flusher == Flusher::Stopped {
            return shared.write_out(&mut pending);
        }
        true
    }

    /// Writes the buffered lines now; false once stdout is closed (the flush failed).
    pub fn flush(&self) -> bool {
        let shared = &self.0.shared;
        shared.write_out(&mut shared.lock())
    }

    /// Marks stdout closed after `error` (said on stderr unless it is a broken pipe,
    /// the normal end of `| head`); what is buffered is dropped.
    pub fn close(&self, error: &std::io::Error) {
        self.0.shared.close(error);
    }

    /// True once a write failed.
    pub fn is_closed(&self) -> bool {
        self.0.shared.is_closed()
    }

    /// Resolves once a write has failed.
    pub async fn closed(&self) {
        let shared = &self.0.shared;
        loop {
            // Made before the check: a close in between still wakes it.
            let notified = shared.notify.notified();
            if shared.is_closed() {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let mut pending = self.shared.lock();
        self.shared.write_out(&mut pending);
        pending.flusher = Flusher::Stopped;
        self.shared.wake.notify_one();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding the lock leaves at worst a partly gathered buffer.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    fn close(&self, error: &std::io::Error) {
        if !self.closed.swap(true, Ordering::SeqCst) {
            if error.kind() != std::io::ErrorKind::BrokenPipe {
                super::stderr_line(format_args!("stdout: {error}; stopping"));
            }
            self.notify.notify_waiters();
        }
    }

    /// Writes and empties the buffer (under its lock, so that lines keep their order);
    /// false once stdout is closed.
    fn write_out(&self, pending: &mut Pending) -> bool {
        if self.is_closed() {
            pending.bytes.clear();
            return false;
        }
        if pending.bytes.is_empty() {
            return true;
        }
        let mut out = std::io::stdout().lock();
        let written = out.write_all(&pending.bytes).and_then(|()| out.flush());
        pending.bytes.clear();
        match written {
            Ok(()) => true,
            Err(e) => {
                self.close(&e);
                false
            }
        }
    }

    /// The flusher thread: once lines are waiting, lets more gather for
    /// [`STDOUT_FLUSH_EVERY`], then writes them; ends when the last user is gone.
    fn run_flusher(self: Arc<Self>) {
        let mut pending = self.lock();
        loop {
            while pending.bytes.is_empty() && pending.flusher != Flusher::Stopped {
                pending.flusher = Flusher::Idle;
                pending = self
                    .wake
                    .wait(pending)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if pending.flusher == Flusher::Stopped {
                return;
            }
            drop(pending);
            std::thread::sleep(STDOUT_FLUSH_EVERY);
            pending = self.lock();
            self.write_out(&mut pending);
        }
    }
}
