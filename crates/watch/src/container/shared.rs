//! [`Shared`]: a container's short list of records (ports, networks, mounts), free when
//! empty, one shared allocation otherwise, and bounded when decoded.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The most memory one list of a container may keep (its ports, its networks or its
/// mounts), counting each record and the heap of its texts: 1 MiB, the default largest
/// list element (`ClientConfig::max_frame_size`). A list that would keep more fails to decode,
/// so a hostile server cannot make a container's records unbounded (a container's three
/// lists keep at most 3 MiB, whatever its element's size). A real container keeps a few
/// hundred bytes; a port range of 10 000 published ports (20 000 records, IPv4 and IPv6)
/// keeps 640 KiB.
pub const MAX_KEPT_BYTES: usize = 1 << 20;

/// A record of a container's short lists: how much memory it keeps beyond its own size,
/// and the order a list of them is kept in.
pub(crate) trait Record: Sized + 'static {
    /// What the list is called in errors (`Ports`).
    const LIST: &'static str;
    /// Heap bytes its texts keep (inline texts keep none).
    fn heap_bytes(&self) -> usize;
    /// Puts `records` in the list's order. Docker writes `Ports` and `Mounts` in the order
    /// of a Go map, which changes from one list to the next: kept in a fixed order, an
    /// unchanged container compares equal and shares its records with the cached version.
    fn normalize(records: &mut Vec<Self>);
    /// This thread's buffer that lists of these are decoded into (see [`Shared::decode`]).
    fn scratch() -> &'static std::thread::LocalKey<std::cell::RefCell<Vec<Self>>>;
}

/// A decode buffer that grew past this many records is shrunk back after use, so a
/// hostile list does not leave a thread holding a large buffer.
const SCRATCH_KEPT: usize = 64;

/// Heap bytes of a text: none when stored inline (up to 23 bytes).
pub(crate) fn text_heap(s: &smol_str::SmolStr) -> usize {
    if s.is_heap_allocated() { s.len() } else { 0 }
}

/// A list of records: nothing allocated when empty (a `None`), else one `Arc<[T]>` shared
/// between a container's versions. Never `Some` of an empty slice, so equality compares
/// contents.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Shared<T>(Option<Arc<[T]>>);

impl<T> Default for Shared<T> {
    fn default() -> Self {
        Self(None)
    }
}

impl<T> Shared<T> {
    /// The records, in order.
    #[inline]
    pub(crate) fn as_slice(&self) -> &[T] {
        self.0.as_deref().unwrap_or_default()
    }

    /// The list of `records`, in the list's order (no allocation when empty).
    pub(crate) fn from_vec(mut records: Vec<T>) -> Self
    where
        T: Record,
    {
        T::normalize(&mut records);
        if records.is_empty() {
            Self(None)
        } else {
            Self(Some(Arc::from(records)))
        }
    }

    /// The list `fill` decodes, made in one allocation: the records go into this thread's
    /// buffer for them first (a list's length is not known before its end), then move
    /// into the list, so the buffer's allocation is reused from one container to the next.
    pub(crate) fn decode<E>(fill: impl FnOnce(&mut Vec<T>) -> Result<(), E>) -> Result<Self, E>
    where
        T: Record,
    {
        T::scratch().with(|scratch| {
            let Ok(mut records) = scratch.try_borrow_mut() else {
                let mut records = Vec::new();
                fill(&mut records)?;
                return Ok(Self::from_vec(records));
            };
            records.clear();
            let filled = fill(&mut records);
            let list = filled.map(|()| {
                T::normalize(&mut records);
                if records.is_empty() {
                    Self(None)
                } else {
                    Self(Some(records.drain(..).collect()))
                }
            });
            records.clear();
            if records.capacity() > SCRATCH_KEPT {
                records.shrink_to(SCRATCH_KEPT);
            }
            list
        })
    }

    /// Makes this list share `older`'s allocation when their records are equal.
    pub(crate) fn share(&mut self, older: &Self)
    where
        T: PartialEq,
    {
        if let (Some(new), Some(old)) = (&self.0, &older.0)
            && !Arc::ptr_eq(new, old)
            && **new == **old
        {
            self.0 = older.0.clone();
        }
    }

    /// Whether both lists are the same allocation (or both empty).
    #[cfg(test)]
    pub(crate) fn ptr_eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl<T: Clone + Record> Shared<T> {
    /// This list with `record` added at the end.
    pub(crate) fn with(&self, record: T) -> Self {
        let mut records = self.as_slice().to_vec();
        records.push(record);
        Self::from_vec(records)
    }
}

impl<T: fmt::Debug> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl<T: Serialize> Serialize for Shared<T> {
    /// Always an array (`[]` when empty), as Docker writes `Ports` and `Mounts`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.as_slice())
    }
}

impl<'de, T: Deserialize<'de> + Record> Deserialize<'de> for Shared<T> {
    /// An array of records, or `null` for none; more than [`MAX_KEPT_BYTES`] kept is an
    /// error.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Records<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de> + Record> Visitor<'de> for Records<T> {
            type Value = Shared<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an array of {} or null", T::LIST)
            }

            fn visit_unit<E: de::Error>(self) -> Result<Shared<T>, E> {
                Ok(Shared::default())
            }

            fn visit_none<E: de::Error>(self) -> Result<Shared<T>, E> {
                Ok(Shared::default())
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shared<T>, A::Error> {
                Shared::decode(|records| {
                    let mut kept = Budget::new(T::LIST);
                    while let Some(record) = seq.next_element::<T>()? {
                        kept.charge(&record)?;
                        records.push(record);
                    }
                    Ok(())
                })
            }
        }

        d.deserialize_any(Records(PhantomData))
    }
}

/// Counts the memory a list being decoded keeps, against [`MAX_KEPT_BYTES`].
pub(crate) struct Budget {
    list: &'static str,
    kept: usize,
}

impl Budget {
    pub(crate) fn new(list: &'static str) -> Self {
        Self { list, kept: 0 }
    }

    /// Adds `record`; an error once the list keeps more than [`MAX_KEPT_BYTES`].
    pub(crate) fn charge<T: Record, E: de::Error>(&mut self, record: &T) -> Result<(), E> {
        if !self.fits(record) {
            return Err(E::custom(format_args!(
                "a container's {} keep more than {MAX_KEPT_BYTES} bytes \
                 (container::MAX_KEPT_BYTES)",
                self.list
            )));
        }
        Ok(())
    }

    /// Adds `record`; false once the list keeps more than [`MAX_KEPT_BYTES`] (what
    /// [`charge`](Self::charge) fails on).
    pub(crate) fn fits<T: Record>(&mut self, record: &T) -> bool {
        self.kept += size_of::<T>() + record.heap_bytes();
        self.kept <= MAX_KEPT_BYTES
    }
}
