#!/usr/bin/env bash
# Copyright dubbo-istiod authors. Licensed under the Apache License, Version 2.0.
#
# The patched Nacos client: copies github.com/nacos-group/nacos-sdk-go/v2 at the version
# go.mod requires to out/nacos-sdk-go, applies patches/nacos-sdk-go/*.patch (each says why
# in its header; git apply, exact context) and adds its replace to go.work (written by
# tools/patches.sh). Redone only when the version or a patch changes. Like out/istio, the
# copy is git-ignored: no third-party source is committed.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MOD=github.com/nacos-group/nacos-sdk-go/v2
DEST=$ROOT/out/nacos-sdk-go
PATCH_DIR=$ROOT/patches/nacos-sdk-go
die() { echo "nacos-sdk: $*" >&2; exit 1; }

version=$(cd "$ROOT" && GOWORK=off GOFLAGS=-mod=mod go list -m -f '{{.Version}}' "$MOD")
want=$( { echo "$version"; for p in "$PATCH_DIR"/*.patch; do basename "$p"; cat "$p"; done; } | sha256sum | cut -d' ' -f1)
if [ "$(cat "$DEST/.dubbo-istiod-prepared" 2>/dev/null)" != "$want" ]; then
  src=$(cd "$ROOT" && GOWORK=off go mod download -json "$MOD@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  [ -n "$src" ] && [ -d "$src" ] || die "could not download $MOD@$version"
  rm -rf "$DEST"
  mkdir -p "$(dirname "$DEST")"
  cp -R "$src" "$DEST"
  chmod -R u+w "$DEST"
  # A repository of its own, so git apply works on the copy and not on ours around it.
  git -C "$DEST" init -q
  for p in "$PATCH_DIR"/*.patch; do
    (cd "$DEST" && git apply -p1 "$p") || die "REJECTED: $(basename "$p") does not apply to $MOD@$version"
    echo "nacos-sdk: applied $(basename "$p")" >&2
  done
  echo "$want" >"$DEST/.dubbo-istiod-prepared"
fi
line="replace $MOD => ./out/nacos-sdk-go"
[ -f "$ROOT/go.work" ] || die "no go.work: run tools/patches.sh apply first"
grep -qxF "$line" "$ROOT/go.work" || echo "$line" >>"$ROOT/go.work"
