//! A list body split and decoded on a thread of its own, while the caller's task reads the
//! next chunks from the network and hands the decoded elements on (to a store, say).
//!
//! Decoding is most of a large list's cost on the client: kept on the task that also
//! reads the socket and fills the cache, a list of a million containers takes as long as
//! all three in a row. A [`ListDecoder`] starts decoding inline and moves it to a blocking
//! thread ([`tokio::task::spawn_blocking`]) once the body passes [`INLINE_BYTES`], so a
//! fetch by id or a small list never starts a thread.
//!
//! Bounds: at most [`CHUNKS_IN_FLIGHT`] chunks wait for the thread, and at most
//! [`BATCHES_IN_FLIGHT`] batches of decoded elements wait for the caller, each closed at
//! [`BATCH_ELEMENTS`] elements or [`BATCH_BYTES`] bytes of JSON (one element may pass it:
//! the splitter bounds an element).
//!
//! ```
//! use hypersh_watch::Container;
//! use hypersh_watch::list::{ArraySplitter, ListDecoder, SplitError};
//!
//! #[derive(Debug)]
//! enum ListError {
//!     Split(SplitError),
//!     Decode(serde_json::Error),
//! }
//! impl From<SplitError> for ListError {
//!     fn from(e: SplitError) -> Self {
//!         Self::Split(e)
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let splitter = ArraySplitter::new(1024 * 1024);
//! let decode = |element: &[u8]| serde_json::from_slice::<Container>(element).map_err(ListError::Decode);
//! let mut decoder = ListDecoder::new(splitter, decode);
//! let mut ids = Vec::new();
//! for chunk in [&br#"[{"Id":"a"},{"Id""#[..], br#":"b"}]"#] {
//!     decoder.feed(bytes::Bytes::from_static(chunk), |c| ids.push(c.id().to_owned())).await?;
//! }
//! decoder.finish(|c| ids.push(c.id().to_owned())).await?;
//! assert_eq!(ids, ["a", "b"]);
//! # Ok::<(), ListError>(())
//! # }).unwrap();
//! ```

use bytes::Bytes;
use tokio::sync::mpsc;

use super::{ArraySplitter, SplitError};

/// Bytes of a body decoded on the caller's task before decoding moves to a thread.
pub const INLINE_BYTES: usize = 256 * 1024;
/// Chunks of the body waiting for the decoding thread, at most.
pub const CHUNKS_IN_FLIGHT: usize = 4;
/// Batches of decoded elements waiting for the caller, at most.
pub const BATCHES_IN_FLIGHT: usize = 4;
/// A batch is handed over at this many elements...
pub const BATCH_ELEMENTS: usize = 256;
/// ...or once its elements' JSON passes this many bytes.
pub const BATCH_BYTES: usize = 256 * 1024;

/// Decodes the elements of a JSON array fed in chunks, on a thread of its own once the
/// body is large (see the [module](self)). `decode` turns one element's bytes into a `T`.
pub struct ListDecoder<T, E, D> {
    stage: Stage<T, E, D>,
}

impl<T, E, D> std::fmt::Debug for ListDecoder<T, E, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stage = match self.stage {
            Stage::Inline { .. } => "inline",
            Stage::Thread { .. } => "thread",
            Stage::Moving => "moving",
        };
        f.debug_struct("ListDecoder")
            .field("stage", &stage)
            .finish()
    }
}

enum Stage<T, E, D> {
    /// Decoding on the caller's task; `fed` bytes so far.
    Inline {
        splitter: ArraySplitter,
        decode: D,
        fed: usize,
        /// Past this many bytes, decoding moves to a thread.
        limit: usize,
    },
    /// Decoding on a thread: chunks go to it (`None` once the body ended), batches of
    /// elements or its error come back.
    Thread {
        chunks: Option<mpsc::Sender<Bytes>>,
        batches: mpsc::Receiver<Message<T, E>>,
    },
    /// Between the two, only inside `feed`.
    Moving,
}

impl<T, E, D> ListDecoder<T, E, D>
where
    T: Send + 'static,
    E: From<SplitError> + Send + 'static,
    D: FnMut(&[u8]) -> Result<T, E> + Send + 'static,
{
    /// A decoder that splits with `splitter` (and its bounds) and decodes each element
    /// with `decode`.
    pub fn new(splitter: ArraySplitter, decode: D) -> Self {
        Self {
            stage: Stage::Inline {
                splitter,
                decode,
                fed: 0,
                limit: INLINE_BYTES,
            },
        }
    }

    /// Decodes on the caller's task until the body passes `bytes` (default
    /// [`INLINE_BYTES`]; 0: on a thread from the first chunk, `usize::MAX`: never).
    #[must_use]
    pub fn inline_bytes(mut self, bytes: usize) -> Self {
        if let Stage::Inline { limit, .. } = &mut self.stage {
            *limit = bytes;
        }
        self
    }

    /// Feeds the next chunk of the body, and calls `each` with every element decoded
    /// since the last call (in order).
    ///
    /// # Errors
    /// The first error of the splitter or of `decode`; the decoder is of no further use
    /// then.
    pub async fn feed(&mut self, chunk: Bytes, mut each: impl FnMut(T)) -> Result<(), E> {
        if let Stage::Inline {
            splitter,
            decode,
            fed,
            limit,
        } = &mut self.stage
        {
            *fed = fed.saturating_add(chunk.len());
            if *fed <= *limit || tokio::runtime::Handle::try_current().is_err() {
                return splitter.feed(&chunk, |element| {
                    each(decode(element)?);
                    Ok(())
                });
            }
            self.start_thread();
        }
        let Stage::Thread { chunks, batches } = &mut self.stage else {
            return Ok(());
        };
        let Some(sender) = chunks else {
            return Ok(());
        };
        // Wait for room for the chunk, handing decoded batches on meanwhile (the thread
        // may be waiting for room for them).
        let mut chunk = Some(chunk);
        while let Some(next) = chunk.take() {
            tokio::select! {
                biased;
                message = batches.recv() => match message {
                    Some(Message::Batch(batch)) => {
                        batch.into_iter().for_each(&mut each);
                        chunk = Some(next);
                    }
                    Some(Message::Failed(e)) => return Err(e),
                    // The thread does not end before the body does, unless it panicked.
                    Some(Message::Done) | None => return Err(gone()),
                },
                permit = sender.reserve() => match permit {
                    Ok(permit) => permit.send(next),
                    // The thread stopped: its error (or its end) is in `batches`.
                    Err(_) => return drain(batches, &mut each).await,
                },
            }
        }
        // Whatever is ready now, without waiting.
        while let Ok(message) = batches.try_recv() {
            match message {
                Message::Batch(batch) => batch.into_iter().for_each(&mut each),
                Message::Failed(e) => return Err(e),
                Message::Done => return Err(gone()),
            }
        }
        Ok(())
    }

    /// Ends the body: checks that the array was closed, and calls `each` with the last
    /// elements.
    ///
    /// # Errors
    /// As [`feed`](Self::feed), and [`SplitError::Malformed`] when the body ended inside
    /// the array.
    pub async fn finish(mut self, mut each: impl FnMut(T)) -> Result<(), E> {
        match &mut self.stage {
            Stage::Inline { splitter, .. } => splitter.finish().map_err(E::from),
            Stage::Thread { chunks, batches } => {
                // No more chunks: the thread finishes the splitter and ends.
                *chunks = None;
                drain(batches, &mut each).await
            }
            Stage::Moving => Err(gone()),
        }
    }

    /// Moves the splitter and the decoder to a blocking thread.
    fn start_thread(&mut self) {
        let Stage::Inline {
            splitter, decode, ..
        } = std::mem::replace(&mut self.stage, Stage::Moving)
        else {
            return;
        };
        let (chunk_tx, chunk_rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
        let (batch_tx, batch_rx) = mpsc::channel(BATCHES_IN_FLIGHT);
        tokio::task::spawn_blocking(move || decode_thread(splitter, decode, chunk_rx, batch_tx));
        self.stage = Stage::Thread {
            chunks: Some(chunk_tx),
            batches: batch_rx,
        };
    }
}

/// What the decoding thread sends back.
enum Message<T, E> {
    /// Elements, in order.
    Batch(Vec<T>),
    /// The splitter or `decode` failed: the last message.
    Failed(E),
    /// The body was whole and every element is sent: the last message.
    Done,
}

/// The error for a decoding thread that ended without saying why (it panicked).
fn gone<E: From<SplitError>>() -> E {
    E::from(SplitError::Malformed {
        reason: "the list's decoding thread stopped",
    })
}

/// Hands on every batch left, until the thread's last message.
async fn drain<T, E: From<SplitError>>(
    batches: &mut mpsc::Receiver<Message<T, E>>,
    each: &mut impl FnMut(T),
) -> Result<(), E> {
    loop {
        match batches.recv().await {
            Some(Message::Batch(batch)) => batch.into_iter().for_each(&mut *each),
            Some(Message::Failed(e)) => return Err(e),
            Some(Message::Done) => return Ok(()),
            // Ended without a last message: it panicked.
            None => return Err(gone()),
        }
    }
}

/// Why the decoding thread stops early.
enum Stop<E> {
    /// The splitter or `decode` failed.
    Failed(E),
    /// The caller is gone (its decoder was dropped).
    Gone,
}

impl<E: From<SplitError>> From<SplitError> for Stop<E> {
    fn from(e: SplitError) -> Self {
        Self::Failed(E::from(e))
    }
}

/// The decoding thread: splits and decodes every chunk it is sent, in batches, until the
/// chunks end (then it checks the array was closed) or the caller is gone.
fn decode_thread<T, E: From<SplitError>>(
    mut splitter: ArraySplitter,
    mut decode: impl FnMut(&[u8]) -> Result<T, E>,
    mut chunks: mpsc::Receiver<Bytes>,
    batches: mpsc::Sender<Message<T, E>>,
) {
    let mut batch = Vec::with_capacity(BATCH_ELEMENTS);
    let mut batch_bytes = 0usize;
    let mut run = || -> Result<(), Stop<E>> {
        while let Some(chunk) = chunks.blocking_recv() {
            splitter.feed(&chunk, |element| {
                batch.push(decode(element).map_err(Stop::Failed)?);
                batch_bytes += element.len();
                if batch.len() >= BATCH_ELEMENTS || batch_bytes >= BATCH_BYTES {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ELEMENTS));
                    batch_bytes = 0;
                    batches
                        .blocking_send(Message::Batch(full))
                        .map_err(|_| Stop::Gone)?;
                }
                Ok::<(), Stop<E>>(())
            })?;
        }
        splitter.finish()?;
        Ok(())
    };
    let ended = run();
    // What was decoded before an error is handed on first, as inline decoding would.
    if !batch.is_empty() && batches.blocking_send(Message::Batch(batch)).is_err() {
        return;
    }
    let last = match ended {
        Ok(()) => Message::Done,
        Err(Stop::Failed(e)) => Message::Failed(e),
        Err(Stop::Gone) => return,
    };
    // The caller may be gone too: nobody to tell then.
    let _ = batches.blocking_send(last);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;

    #[derive(Debug, PartialEq)]
    enum Failure {
        Split(SplitError),
        Decode(String),
    }

    impl From<SplitError> for Failure {
        fn from(e: SplitError) -> Self {
            Self::Split(e)
        }
    }

    fn decode(element: &[u8]) -> Result<String, Failure> {
        let text = String::from_utf8_lossy(element).into_owned();
        if text.contains("bad") {
            Err(Failure::Decode(text))
        } else {
            Ok(text)
        }
    }

    /// Feeds `body` in chunks of `size` through a decoder that moves to a thread after
    /// `inline` bytes; returns every element handed on, and how it ended.
    async fn run(body: &str, size: usize, inline: usize) -> (Vec<String>, Result<(), Failure>) {
        let mut decoder =
            ListDecoder::new(ArraySplitter::new(1 << 20), decode).inline_bytes(inline);
        let mut out = Vec::new();
        for chunk in body.as_bytes().chunks(size.max(1)) {
            let chunk = Bytes::copy_from_slice(chunk);
            if let Err(e) = decoder.feed(chunk, |e| out.push(e)).await {
                return (out, Err(e));
            }
        }
        let ended = decoder.finish(|e| out.push(e)).await;
        (out, ended)
    }

    /// A body of `n` small objects.
    fn objects(n: usize) -> String {
        let items: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"Id":"c{i}","N":[{i}]}}"#))
            .collect();
        format!("[{}]", items.join(","))
    }

    #[tokio::test]
    async fn on_a_thread_the_elements_are_those_decoded_inline_in_the_same_order() {
        let body = objects(3000);
        let (inline, ended) = run(&body, 1000, usize::MAX).await;
        ended.unwrap();
        assert_eq!(inline.len(), 3000);
        for threshold in [0, 1, 5000] {
            for size in [7, 4096, 70_000] {
                let (got, ended) = run(&body, size, threshold).await;
                ended.unwrap();
                assert_eq!(got, inline, "inline up to {threshold} B, chunks of {size}");
            }
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_current_thread_runtime_decodes_on_a_blocking_thread_too() {
        let (got, ended) = run(&objects(600), 100, 0).await;
        ended.unwrap();
        assert_eq!(got.len(), 600);
    }

    #[tokio::test]
    async fn an_error_on_the_thread_comes_after_the_elements_before_it() {
        let mut items: Vec<String> = (0..1000).map(|i| format!(r#"{{"Id":"c{i}"}}"#)).collect();
        items[700] = r#"{"Id":"bad"}"#.to_owned();
        let body = format!("[{}]", items.join(","));
        let (got, ended) = run(&body, 512, 0).await;
        assert_eq!(ended, Err(Failure::Decode(r#"{"Id":"bad"}"#.to_owned())));
        assert_eq!(got, items[..700]);
        // The splitter's errors too, and an array that never closes.
        let (_, ended) = run(&format!("{}}}", &objects(500)), 512, 0).await;
        assert!(
            matches!(ended, Err(Failure::Split(SplitError::Malformed { .. }))),
            "{ended:?}"
        );
        let whole = objects(500);
        let (got, ended) = run(&whole[..whole.len() - 1], 512, 0).await;
        assert_eq!(got.len(), 499, "the last element is not closed");
        assert!(
            matches!(ended, Err(Failure::Split(SplitError::Malformed { .. }))),
            "{ended:?}"
        );
    }

    #[tokio::test]
    async fn a_panic_on_the_thread_is_an_error_not_a_short_list() {
        let mut decoder = ListDecoder::new(ArraySplitter::new(1 << 20), |element: &[u8]| {
            assert!(!element.starts_with(b"{\"Id\":\"c9"), "decoder bug");
            Ok::<_, Failure>(())
        })
        .inline_bytes(0);
        let body = objects(20);
        let mut fed = Ok(());
        for chunk in body.as_bytes().chunks(16) {
            fed = decoder.feed(Bytes::copy_from_slice(chunk), |()| {}).await;
            if fed.is_err() {
                break;
            }
        }
        let ended = match fed {
            Ok(()) => decoder.finish(|()| {}).await,
            Err(e) => Err(e),
        };
        assert!(
            matches!(ended, Err(Failure::Split(SplitError::Malformed { reason })) if reason.contains("thread")),
            "{ended:?}"
        );
    }

    /// Sets its flag when dropped.
    struct DropFlag(Arc<AtomicBool>);

    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn a_dropped_decoder_stops_its_thread() {
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = DropFlag(Arc::clone(&dropped));
        let mut decoder = ListDecoder::new(ArraySplitter::new(1 << 20), move |e: &[u8]| {
            let _keep = &flag;
            decode(e)
        })
        .inline_bytes(0);
        let body = objects(100);
        decoder
            .feed(Bytes::copy_from_slice(&body.as_bytes()[..500]), |_| {})
            .await
            .unwrap();
        assert!(!dropped.load(Ordering::SeqCst), "the thread still decodes");
        drop(decoder);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !dropped.load(Ordering::SeqCst) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the thread did not stop"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    proptest::proptest! {
        /// However the body is cut and wherever decoding moves to the thread, the
        /// elements are those of the plain splitter, in order.
        #[test]
        fn any_chunking_and_threshold_gives_the_plain_splitters_elements(
            n in 0usize..400,
            size in 1usize..600,
            threshold in 0usize..4000,
        ) {
            let body = objects(n);
            let mut plain = Vec::new();
            let mut splitter = ArraySplitter::new(1 << 20);
            splitter.feed(body.as_bytes(), |e| { plain.push(String::from_utf8_lossy(e).into_owned()); Ok::<_, SplitError>(()) }).unwrap();
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let (got, ended) = rt.block_on(run(&body, size, threshold));
            proptest::prop_assert!(ended.is_ok());
            proptest::prop_assert_eq!(got, plain);
        }
    }
}
