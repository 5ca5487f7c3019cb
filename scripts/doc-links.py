#!/usr/bin/env python3
"""Documents the workspace so that its intra-doc links are links, and checks that they
are: the build flags a link that rustdoc renders as literal text.

    scripts/doc-links.py      # documents each crate after the crates it depends on, then checks

Why rustdoc does not flag them itself: a link like [`Deleted::FinalStateUnknown`] that
resolves to an item of another crate gets its address from where that crate's docs are.
rustdoc looks for `target/doc/<crate>/` when it starts (else a `html_root_url`, else an
`--extern-html-root-url`, unstable); when it is not there the crate's location is
"unknown", and every link into it is rendered as its text between brackets (or, for
`[text](a::b)`, as a link to the URL `a::b`), without a warning: the
`broken_intra_doc_links` lint fires only for a link that does not resolve, and this one
did. `cargo doc --workspace --no-deps` documents the members in parallel, without
ordering a crate after the crates it depends on (it does with `--no-deps` off), and it
deletes a crate's doc directory before documenting it; so a dependent crate's links into
its dependencies were lost whenever their documentation ran at the same time: the
facade's re-exported `Store` showed `[Error::UnknownIndex]`, `Informer` showed
`[Deleted::FinalStateUnknown]`, on a clean target every time. This script documents one
crate at a time, in dependency order (with `-D warnings` and one more flag than the
plain build, so that each crate is documented again), then reads every generated page of
the workspace's crates and fails on:
- `[<code>X</code>]`: a link left as text, when `[`X`]` is a link in our sources (trait
  implementations are left out: they repeat the trait's docs, checked on its own page,
  and other crates' traits, such as `tracing::Instrument` with its `[`Span`]`, are not
  ours to fix);
- `<a href="a::b">`: a link target that looked like a path, taken as a URL (when it is
  one of ours).
"""

import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def doc_dir() -> Path:
    target = os.environ.get("CARGO_TARGET_DIR")
    return (Path(target) if target else ROOT / "target") / "doc"


def metadata() -> dict:
    return json.loads(
        subprocess.run(
            ["cargo", "metadata", "--no-deps", "--format-version", "1"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )


def crate_names(meta: dict) -> list[str]:
    """The doc directory name of every library and binary of the workspace."""
    names = set()
    for package in meta["packages"]:
        for target in package["targets"]:
            if {"lib", "bin"} & set(target["kind"]):
                names.add(target["name"].replace("-", "_"))
    return sorted(names)


def in_dependency_order(meta: dict) -> list[str]:
    """The workspace's packages, each after the members it depends on (normal deps)."""
    members = {p["name"]: p for p in meta["packages"]}
    order, seen = [], set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for dep in members[name]["dependencies"]:
            if dep["kind"] is None and dep["name"] in members:
                visit(dep["name"])
        order.append(name)

    for name in sorted(members):
        visit(name)
    return order


def document(meta: dict) -> None:
    flags = "-D warnings -D rustdoc::broken-intra-doc-links"
    env = dict(os.environ, RUSTDOCFLAGS=flags)
    for package in in_dependency_order(meta):
        subprocess.run(
            ["cargo", "doc", "-p", package, "--no-deps", "--locked", "--quiet"],
            cwd=ROOT,
            env=env,
            check=True,
        )


def our_links() -> tuple[set[str], set[str]]:
    """The intra-doc links written in the workspace's sources and README: the texts of
    `[`X`]` links, and the path targets of `[text](a::b)` links."""
    texts, targets = set(), set()
    files = list(ROOT.glob("src/**/*.rs")) + list(ROOT.glob("crates/*/src/**/*.rs"))
    files.append(ROOT / "README.md")
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.lstrip().startswith(("//", "#")) or path.suffix == ".md":
                texts.update(re.findall(r"\[`([^`\]]+)`\]", line))
                targets.update(re.findall(r"\]\(([A-Za-z_][A-Za-z0-9_]*::[^)\s]*)\)", line))
    return texts, targets


def check(meta: dict) -> int:
    texts, targets = our_links()
    root = doc_dir()
    problems = []
    for name in crate_names(meta):
        for page in sorted((root / name).rglob("*.html")):
            text = page.read_text(encoding="utf-8")
            # Trait implementations repeat the trait's docs, checked on the trait's own
            # page (and other crates' traits are not ours to fix).
            text = re.split(r'<h2 id="(?:trait|synthetic|blanket)-implementations"', text)[0]
            for code in re.findall(r"\[<code>([^<]*)</code>\]", text):
                if html.unescape(code) in texts:
                    problems.append(f"{page.relative_to(root)}: [`{html.unescape(code)}`] is text, not a link")
            for href in re.findall(r'<a href="([A-Za-z_][A-Za-z0-9_]*::[^"/]*)"', text):
                if html.unescape(href) in targets:
                    problems.append(f"{page.relative_to(root)}: link to `{href}` taken as a URL")
    for problem in sorted(set(problems)):
        print(problem)
    if problems:
        print(
            f"{len(set(problems))} intra-doc links are not links in the generated docs: "
            "the target is not documented (a private item, or a crate without docs), or the "
            "path does not resolve where the docs are shown (a re-export into another crate)",
            file=sys.stderr,
        )
        return 1
    return 0


def main() -> int:
    if sys.argv[1:]:
        print(__doc__, file=sys.stderr)
        return 2
    meta = metadata()
    document(meta)
    return check(meta)


if __name__ == "__main__":
    sys.exit(main())
