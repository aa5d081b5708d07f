#!/usr/bin/env bash
# Real Prometheus, promtool, Alertmanager and amtool for the observability tests (Debian packages).
# Installs only what is missing; needs root or sudo.
set -euo pipefail
missing=0
for binary in prometheus promtool prometheus-alertmanager amtool; do
  command -v "$binary" >/dev/null || missing=1
done
[ "$missing" -eq 1 ] || exit 0
if ! command -v apt-get >/dev/null; then
  echo "install Prometheus and Alertmanager (prometheus, promtool, prometheus-alertmanager, amtool) by hand" >&2
  exit 1
fi
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
  prometheus prometheus-alertmanager
