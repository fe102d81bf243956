#!/usr/bin/env bash
# Installs the Debian packages the tests use: the real registry (CNCF distribution), skopeo as an independent
# client, xz/zstd, igzip (isal) for fast gzip layers, openssl and htpasswd for certificates and users, gnome-keyring + dbus + libsecret for the
# keychain, tmux/script for terminal tests, a compiler for keytar's native module, the tools whose bundles the
# tests push (podman with vfs storage, containerd's ctr, umoci reading what `mirror push` writes into oci:DIR), and
# python3-yaml (with python3's tomllib) as independent readers of the files mirror config writes.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  docker-registry skopeo xz-utils zstd gzip isal openssl apache2-utils ca-certificates \
  libsecret-1-dev gnome-keyring dbus tmux bsdutils time python3 python3-yaml make g++ \
  podman containerd umoci >/dev/null
