//! A list item in Docker's format (`ContainerSummary`), two ways that write the same bytes:
//!
//! - [`Summary`]: serde over the container, with the one field the model does not keep
//!   (`HostConfig.NetworkMode`). The plain path, and the oracle of the other.
//! - [`SummaryJson`]: a container version's item serialised once, when the version is
//!   made, with the place of its `Status` text, the only field that changes with the
//!   clock. A list writes it as the bytes before that place, the status of the list's
//!   instant, and the bytes after: two copies and a short text instead of a serde pass.
//!
//! [`Listed`] is one entry of a list snapshot: a shared [`SummaryJson`] and what the
//! status is made of, or (for a version that has none) the container's snapshot.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use hypersh_watch::container::{Container, ContainerState};
use serde::Serialize;

use crate::json_array::WriteJson;
use crate::runtime::{network_mode, status};

/// A list item in Docker's format, serialised by serde.
pub(crate) struct Summary<'a>(pub(crate) &'a Container);

impl Serialize for Summary<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Item<'a> {
            #[serde(flatten)]
            container: &'a Container,
            host_config: HostConfig<'a>,
        }

        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct HostConfig<'a> {
            network_mode: &'a str,
        }

        Item {
            container: self.0,
            host_config: HostConfig {
                network_mode: network_mode(self.0),
            },
        }
        .serialize(s)
    }
}

/// The status text a version is serialised with to find where its `Status` goes. Its
/// control characters are escaped (`\u0001`), so only a label or another string that
/// holds this very text could look the same, and then the place is ambiguous and the
/// version is not cached (see [`SummaryJson::new`]).
const STATUS_MARK: &str = "\u{1}hypersh-status\u{1}";
/// The `Status` key as serde_json writes it, and with [`STATUS_MARK`] as its value.
const STATUS_KEY: &str = r#""Status":"#;
const STATUS_FIELD: &str = r#""Status":"\u0001hypersh-status\u0001""#;

/// One container version's list item as JSON, with its `Status` value (quotes included)
/// cut out: `json[..status.0]`, the status as a JSON string, `json[status.1..]`.
#[derive(Clone, Debug)]
pub(crate) struct SummaryJson {
    json: Arc<[u8]>,
    status: (u32, u32),
}

/// The search for [`STATUS_FIELD`], built once (building one costs about what a search of
/// an item does).
fn status_finder() -> &'static memchr::memmem::Finder<'static> {
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(STATUS_FIELD));
    &FINDER
}

impl SummaryJson {
    /// `container`'s item (whatever its `status`), or `None` when it cannot be made
    /// unambiguously (the status mark appears elsewhere in the item) or serde fails: the
    /// item is then serialised by [`Summary`] at each list.
    pub(crate) fn new(container: &Container) -> Option<Self> {
        let marked = container.clone().into_builder().status(STATUS_MARK).build();
        let json = serde_json::to_vec(&Summary(&marked)).ok()?;
        let mut found = status_finder().find_iter(&json);
        let at = found.next()?;
        if found.next().is_some() {
            return None;
        }
        let start = u32::try_from(at + STATUS_KEY.len()).ok()?;
        let end = u32::try_from(at + STATUS_FIELD.len()).ok()?;
        Some(Self {
            json: json.into(),
            status: (start, end),
        })
    }

    /// The heap bytes this item holds (its JSON; the shared allocation's counts aside).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.json.len()
    }
}

/// One container of a list snapshot, as it is written.
#[derive(Debug)]
pub(crate) enum Listed {
    /// The version's cached item and what its status at the list's instant is made of.
    Cached {
        item: SummaryJson,
        state: ContainerState,
        /// Since the container last started or finished, at the list's instant.
        elapsed: Duration,
        exit_code: i64,
    },
    /// A version without a cached item: its snapshot, serialised by [`Summary`] (boxed:
    /// a list holds one entry per container, most of them the small variant).
    Plain(Box<Container>),
}

impl WriteJson for Listed {
    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        match self {
            Self::Plain(container) => serde_json::to_writer(out, &Summary(container)),
            Self::Cached {
                item,
                state,
                elapsed,
                exit_code,
            } => {
                let (start, end) = (item.status.0 as usize, item.status.1 as usize);
                let (Some(head), Some(tail)) = (item.json.get(..start), item.json.get(end..))
                else {
                    return Err(serde::ser::Error::custom("a cached list item is cut"));
                };
                out.extend_from_slice(head);
                write_str_json(out, status::Status::new(*state, *elapsed, *exit_code))?;
                out.extend_from_slice(tail);
                Ok(())
            }
        }
    }
}

/// Writes `text` as a JSON string, as serde_json writes it: displayed straight into `out`
/// when it needs no escape (a status text never does), else through serde_json.
fn write_str_json(out: &mut Vec<u8>, text: impl fmt::Display) -> Result<(), serde_json::Error> {
    let start = out.len();
    out.push(b'"');
    io::Write::write_fmt(out, format_args!("{text}")).map_err(serde_json::Error::io)?;
    // serde_json escapes exactly these bytes (control characters, `"` and `\`).
    let escaped = |b: &u8| *b < 0x20 || *b == b'"' || *b == b'\\';
    if out.get(start + 1..).is_some_and(|t| t.iter().any(escaped)) {
        let raw = String::from_utf8_lossy(&out[start + 1..]).into_owned();
        out.truncate(start);
        return serde_json::to_writer(out, &raw);
    }
    out.push(b'"');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_written_as_serde_json_writes_them() {
        for text in [
            "",
            "Up 2 minutes",
            "Exited (-1) 3 days ago",
            "a\"b\\c\n\u{1}é\u{7f}/",
        ] {
            let mut out = b"[".to_vec();
            write_str_json(&mut out, text).unwrap();
            let mut want = b"[".to_vec();
            serde_json::to_writer(&mut want, text).unwrap();
            assert_eq!(out, want, "{text:?}");
        }
    }

    #[test]
    fn the_status_field_is_the_mark_as_serde_json_writes_it() {
        let value = serde_json::to_string(STATUS_MARK).unwrap();
        assert_eq!(STATUS_FIELD, format!("{STATUS_KEY}{value}"));
    }

    #[test]
    fn a_list_entry_is_small() {
        assert!(std::mem::size_of::<Listed>() <= 64);
    }

    #[test]
    fn an_ambiguous_status_place_is_not_cached() {
        let plain = Container::builder(&"a".repeat(64)).name("x").build();
        assert!(SummaryJson::new(&plain).is_some());
        let labels = [("Status".to_owned(), STATUS_MARK.to_owned())];
        let marked = plain
            .into_builder()
            .labels(labels.into_iter().collect())
            .build();
        assert!(SummaryJson::new(&marked).is_none());
    }
}
