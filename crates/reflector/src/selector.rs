//! Which containers a reflector caches: the user's filters, turned into the watch
//! filters, the list filters, and a local check that keeps both views the same.

use hypersh_watch::Container;
use hypersh_watch::filters::{EventSubject, Filters};

use crate::error::Error;

/// The filter keys an informer accepts. `event` and `type` are refused: they would leave
/// the cache with containers whose later changes it never hears of.
pub const SELECTOR_KEYS: &[&str] = &["container", "image", "label"];

/// The user's filters in the three forms the loop needs.
#[derive(Clone, Debug, Default)]
pub(crate) struct Selector {
    watch: Filters,
    list: Filters,
}

impl Selector {
    pub(crate) fn new(filters: &Filters) -> Result<Self, Error> {
        filters.validate(SELECTOR_KEYS).map_err(Error::Filters)?;
        // Labels mean the same on both endpoints; `image` is `ancestor` on the list.
        // `container` (id prefix or name) has no list equivalent: it is checked locally.
        let mut list = Filters::new();
        for (from, to) in [("label", "label"), ("image", "ancestor")] {
            for v in filters.get(from).into_iter().flatten() {
                list.add(to, v.clone());
            }
        }
        Ok(Self {
            watch: filters.clone(),
            list,
        })
    }

    /// Filters for `/events/ws`.
    pub(crate) fn watch_filters(&self) -> &Filters {
        &self.watch
    }

    /// Filters for `/containers/json`.
    pub(crate) fn list_filters(&self) -> &Filters {
        &self.list
    }

    /// Whether a container belongs in the cache, by the event semantics (at once, without
    /// filters).
    pub(crate) fn admits(&self, c: &Container) -> bool {
        self.watch.is_empty()
            || self.watch.matches_event(&EventSubject {
                kind: "container",
                action: "",
                id: c.id(),
                name: c.name(),
                image: c.image(),
                image_id: c.image_id(),
                labels: c.labels(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(id: &str, name: &str, image: &str, labels: &[(&str, &str)]) -> Container {
        Container::builder(id)
            .name(name)
            .image(image)
            .labels(labels.iter().copied().collect())
            .build()
    }

    #[test]
    fn refuses_event_and_type() {
        assert!(Selector::new(&Filters::new().event("start")).is_err());
        assert!(Selector::new(&Filters::new().kind("container")).is_err());
        assert!(Selector::new(&Filters::new().label("a")).is_ok());
    }

    #[test]
    fn translates_to_list_filters() {
        let s = Selector::new(
            &Filters::new()
                .label("app=web")
                .image("nginx")
                .container("x"),
        )
        .unwrap();
        assert_eq!(
            s.list_filters(),
            &Filters::new().label("app=web").with("ancestor", "nginx")
        );
        assert_eq!(s.watch_filters().get("container").map(|v| v.len()), Some(1));
    }

    #[test]
    fn admits_by_event_semantics() {
        let s = Selector::new(&Filters::new().container("web").label("tier")).unwrap();
        assert!(s.admits(&container("abc", "web", "nginx", &[("tier", "front")])));
        assert!(!s.admits(&container("abc", "db", "nginx", &[("tier", "front")])));
        assert!(!s.admits(&container("abc", "web", "nginx", &[])));
        assert!(Selector::default().admits(&container("a", "b", "c", &[])));
    }
}
