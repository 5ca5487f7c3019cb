#!/usr/bin/env bash
# Which results in docs/performance.md, docs/scale.md and docs/hostile.md predate a change
# to the hot path. Run by .ci/run.
#
#   scripts/perf-stale.sh
#
# In performance.md every `### ` section under `## Results`, and `## Targets`, and in the
# other two every `## ` or `### ` section, that holds a table must have a line beginning
# `Measured on ` that names the commit(s) it was measured on in backticks.
# A section is stale when a commit since one of them (merges left out) touched the hot
# path below; a stale section must say so on that line ("stale"), until it is measured
# again. Prints one line per section; exits 1 when a section has no such line, or is
# stale without saying so. A commit the checkout does not have (a shallow clone) is
# reported and not counted as a failure.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
docs=(docs/performance.md docs/scale.md docs/hostile.md)

# What an event goes through in the informer, and the Docker source's list and stream.
hot_path=(
  crates/watch/src/event.rs crates/watch/src/event
  crates/watch/src/container.rs crates/watch/src/container
  crates/watch/src/scan.rs crates/watch/src/scan
  crates/watch/src/stream.rs crates/watch/src/list.rs crates/watch/src/client.rs
  crates/store/src
  crates/reflector/src/core.rs crates/reflector/src/core
  crates/reflector/src/shell.rs crates/reflector/src/plan.rs
  crates/docker/src/events.rs crates/docker/src/list.rs crates/docker/src/liveness.rs
)

failed=0
for doc in "${docs[@]}"; do
  # Sections: title, whether it has a table, its "Measured on" line.
  while IFS=$'\t' read -r title has_table measured; do
    [ "$has_table" = 1 ] || continue
    if [ -z "$measured" ]; then
      echo "MISSING  $doc, $title: a table and no 'Measured on \`COMMIT\`' line"
      failed=1
      continue
    fi
    commits="$(grep -oE '`[0-9a-f]{7,40}`' <<<"$measured" | tr -d '`')"
    marked=0
    grep -qi 'stale' <<<"$measured" && marked=1
    changed=""
    unknown=""
    for c in $commits; do
      if ! git cat-file -e "$c^{commit}" 2>/dev/null; then
        unknown="$unknown $c"
        continue
      fi
      since="$(git rev-list --no-merges --count "$c..HEAD" -- "${hot_path[@]}")"
      if [ "$since" -gt 0 ]; then
        newest="$(git log --no-merges -1 --format='%h %s' "$c..HEAD" -- "${hot_path[@]}" | cut -c1-72)"
        changed="$changed $c: $since hot-path commits since (newest: $newest);"
      fi
    done
    if [ -n "$unknown" ]; then
      echo "UNKNOWN  $doc, $title: this checkout lacks$unknown (a shallow clone?)"
    elif [ -z "$changed" ]; then
      echo "current  $doc, $title"
    elif [ "$marked" = 1 ]; then
      echo "stale    $doc, $title (marked):$changed"
    else
      echo "STALE    $doc, $title, not marked:$changed measure it again or say 'stale' on its 'Measured on' line"
      failed=1
    fi
  done < <(awk -v every="$([ "$doc" = docs/performance.md ] && echo 0 || echo 1)" '
    function flush() { if (title != "") printf "%s\t%d\t%s\n", title, table, measured }
    /^## / {
      flush()
      results = ($0 ~ /^## Results/)
      title = ($0 ~ /^## Targets/) ? "Targets" : (every ? substr($0, 4) : "")
      table = 0; measured = ""
      next
    }
    /^### / {
      flush()
      title = (results || every) ? substr($0, 5) : ""
      table = 0; measured = ""
      next
    }
    title != "" && /^\| *-+/ { table = 1 }
    title != "" && /^Measured on / { measured = $0 }
    END { flush() }
  ' "$doc")
done

if [ "$failed" = 1 ]; then
  echo "${docs[*]}: see above" >&2
fi
exit "$failed"
