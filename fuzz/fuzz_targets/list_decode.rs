//! The container list decode on `GET /containers/json` bodies, both ways the clients could
//! read one: `serde_json::from_slice::<Vec<Container>>` of the whole body, and the
//! streaming `ArraySplitter` (the Hyper.sh client's and the Docker source's path), fed in
//! chunks whose size the input picks. Neither panics on arbitrary bytes; they accept the
//! same bodies and read the same list; and what decodes re-encodes and decodes to the
//! same list.
#![no_main]

use hypersh_watch::Container;
use hypersh_watch::list::{ArraySplitter, SplitError};
use libfuzzer_sys::fuzz_target;

#[derive(Debug)]
enum Stop {
    #[allow(dead_code)]
    Split(SplitError),
    #[allow(dead_code)]
    Decode(serde_json::Error),
}

impl From<SplitError> for Stop {
    fn from(e: SplitError) -> Self {
        Self::Split(e)
    }
}

/// The body read through the splitter in chunks of `size` bytes.
fn streamed(data: &[u8], size: usize) -> Result<Vec<Container>, Stop> {
    let mut splitter = ArraySplitter::new(usize::MAX);
    let mut out = Vec::new();
    for chunk in data.chunks(size) {
        splitter.feed(chunk, |element| {
            out.push(serde_json::from_slice(element).map_err(Stop::Decode)?);
            Ok::<_, Stop>(())
        })?;
    }
    splitter.finish()?;
    Ok(out)
}

fuzz_target!(|input: &[u8]| {
    let Some((&size, data)) = input.split_first() else {
        return;
    };
    let whole = serde_json::from_slice::<Vec<Container>>(data);
    let split = streamed(data, usize::from(size).max(1));
    match (&whole, &split) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "the same list both ways"),
        (Err(_), Err(_)) => {}
        _ => panic!("one way accepts what the other refuses: {whole:?} / {split:?}"),
    }
    if let Ok(list) = whole {
        for c in &list {
            let _ = c.name();
            let _ = (
                c.id(),
                c.names().count(),
                c.labels().iter().count(),
                c.state(),
            );
        }
        let json = serde_json::to_vec(&list).expect("a decoded list encodes");
        let back: Vec<Container> = serde_json::from_slice(&json).expect("an encoded list decodes");
        assert_eq!(back, list, "encode -> decode is the identity");
    }
});
