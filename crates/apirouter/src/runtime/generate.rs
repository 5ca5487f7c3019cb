//! Random but plausible container names, images, commands and labels, drawn from the
//! runtime's seeded generator so a seed always gives the same containers.

use std::collections::BTreeMap;

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use sha2::{Digest, Sha256};

use super::Runtime;

/// Adjectives of Docker-style names (`eager_hopper`).
const ADJECTIVES: &[&str] = &[
    "admiring",
    "brave",
    "clever",
    "dazzling",
    "eager",
    "festive",
    "gifted",
    "happy",
    "jolly",
    "keen",
    "lucid",
    "modest",
    "nifty",
    "optimistic",
    "quirky",
    "relaxed",
    "serene",
    "trusting",
    "upbeat",
    "vibrant",
    "wizardly",
    "zealous",
];

/// Surnames of Docker-style names.
const SURNAMES: &[&str] = &[
    "albattani",
    "bardeen",
    "curie",
    "darwin",
    "euclid",
    "fermi",
    "goldberg",
    "hopper",
    "jang",
    "kepler",
    "lovelace",
    "meitner",
    "noether",
    "pascal",
    "ritchie",
    "shannon",
    "turing",
    "villani",
    "wozniak",
    "yonath",
];

/// Images and the command each one runs.
const IMAGES: &[(&str, &str)] = &[
    ("busybox", "sh -c 'while true; do sleep 3600; done'"),
    ("nginx:1.25", "nginx -g 'daemon off;'"),
    ("redis:7", "redis-server"),
    ("postgres:16", "docker-entrypoint.sh postgres"),
    ("alpine:3.19", "/bin/sh"),
    ("ubuntu:22.04", "bash"),
    ("node:20-alpine", "node server.js"),
    ("python:3.12-slim", "python -m http.server 8000"),
    ("hyperhq/nginx", "nginx -g 'daemon off;'"),
];

/// Label keys and the values each may take.
const LABELS: &[(&str, &[&str])] = &[
    ("app", &["web", "api", "db", "cache", "worker"]),
    ("tier", &["frontend", "backend"]),
    ("env", &["prod", "staging", "dev"]),
    ("sh_hyper_instancetype", &["s1", "s2", "s4", "m1", "xxs"]),
    ("team", &["core", "payments", "search"]),
    ("version", &["1", "2", "3"]),
];

/// Exit codes a dying container may report.
pub(crate) const EXIT_CODES: &[i64] = &[0, 1, 2, 137, 143];

/// A random `adjective_surname` name (uniqueness is the caller's business).
pub(crate) fn name(rng: &mut StdRng) -> String {
    let adjective = ADJECTIVES.choose(rng).copied().unwrap_or("eager");
    let surname = SURNAMES.choose(rng).copied().unwrap_or("hopper");
    format!("{adjective}_{surname}")
}

/// A random image.
pub(crate) fn image(rng: &mut StdRng) -> &'static str {
    IMAGES.choose(rng).map_or("busybox", |(image, _)| *image)
}

/// The command a container of `image` runs.
pub(crate) fn command(image: &str) -> &'static str {
    IMAGES
        .iter()
        .find(|(i, _)| *i == image)
        .map_or("sh", |(_, command)| *command)
}

/// A random label set: empty one time in five, else two to four labels.
pub(crate) fn labels(rng: &mut StdRng) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    if rng.random_range(0..5) == 0 {
        return labels;
    }
    let count = rng.random_range(2..=4);
    for (key, values) in LABELS.choose_multiple(rng, count) {
        let value = values.choose(rng).copied().unwrap_or_default();
        labels.insert((*key).to_owned(), value.to_owned());
    }
    labels
}

/// A random exit code for `die`.
pub(crate) fn exit_code(rng: &mut StdRng) -> i64 {
    EXIT_CODES.choose(rng).copied().unwrap_or(1)
}

/// A container id of [`Runtime::ID_LEN`] hex characters.
pub(crate) fn id(rng: &mut StdRng) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes: [u8; Runtime::ID_LEN / 2] = rng.random();
    // By hand rather than `hex::encode`: one of the costs of populating a large runtime.
    let mut id = String::with_capacity(Runtime::ID_LEN);
    for b in bytes {
        id.push(char::from(HEX[usize::from(b >> 4)]));
        id.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    id
}

/// The image id (`sha256:<hex>`), derived from the image name so it is stable.
pub(crate) fn image_id(image: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(image.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_same_seed_gives_the_same_values() {
        let mut a = StdRng::seed_from_u64(7);
        let mut b = StdRng::seed_from_u64(7);
        for _ in 0..20 {
            assert_eq!(name(&mut a), name(&mut b));
            assert_eq!(labels(&mut a), labels(&mut b));
            assert_eq!(id(&mut a), id(&mut b));
        }
    }

    #[test]
    fn ids_and_image_ids_have_docker_shapes() {
        let mut rng = StdRng::seed_from_u64(1);
        let id = id(&mut rng);
        assert_eq!(id.len(), 64);
        assert_eq!(id, id.to_ascii_lowercase());
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        let image_id = image_id("busybox");
        assert!(image_id.starts_with("sha256:"));
        assert_eq!(image_id.len(), 7 + 64);
        assert_eq!(image_id, super::image_id("busybox"));
        assert_ne!(image_id, super::image_id("nginx:1.25"));
    }

    #[test]
    fn commands_follow_images_and_labels_use_known_keys() {
        assert_eq!(command("redis:7"), "redis-server");
        assert_eq!(command("unknown"), "sh");
        let mut rng = StdRng::seed_from_u64(3);
        let mut saw_empty = false;
        let mut saw_some = false;
        for _ in 0..50 {
            let l = labels(&mut rng);
            saw_empty |= l.is_empty();
            saw_some |= !l.is_empty();
            assert!(l.len() <= 4);
            assert!(l.keys().all(|k| LABELS.iter().any(|(key, _)| key == k)));
        }
        assert!(saw_empty && saw_some);
    }
}
