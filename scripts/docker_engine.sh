#!/usr/bin/env bash
# A Docker engine for the compose test (tests/compose/) and benchmarks/compose_stack.py, from Debian's packages.
#
#   scripts/docker_engine.sh install   # docker.io, containerd, runc, iptables; Compose v2 and buildx as CLI plugins
#   scripts/docker_engine.sh start     # dockerd in the background, its pid in $DOCKER_ENGINE_STATE/dockerd.pid
#   scripts/docker_engine.sh stop      # stops that dockerd (by its pid) and waits for it to exit
#   scripts/docker_engine.sh status    # exit 0 when the engine answers
#
# Debian 12 has no Compose v2 (its docker-compose is v1.29, which rejects `name:` and `configs.content`) and no buildx:
# both come from Debian 13's docker-compose and docker-buildx packages, downloaded with apt pointed at a separate
# source list, state and cache, unpacked with dpkg -x, and only their binaries copied to the CLI plugin folder.
# Nothing from Debian 13 is installed system-wide. The package's own service start is refused here by policy-rc.d,
# so `start` runs dockerd itself; a dockerd this script did not start is left alone by `stop`.
# Needs root (as on CI and these machines) or passwordless sudo.
set -euo pipefail

STATE_DIR=${DOCKER_ENGINE_STATE:-/var/tmp/medalflow-docker-engine}
PLUGIN_DIR=/usr/libexec/docker/cli-plugins
TRIXIE_MIRROR=${TRIXIE_MIRROR:-http://deb.debian.org/debian}
ENGINE_PACKAGES=(docker.io containerd runc iptables)
PLUGIN_PACKAGES=(docker-compose docker-buildx)

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo -n"

log() { echo "==> docker_engine: $*" >&2; }

missing_packages() {
  local package
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || echo "$package"
  done
}

install_plugins() {
  # Binaries already there (a previous install, or Docker's own packages): nothing to do.
  if [ -x "$PLUGIN_DIR/docker-compose" ] && [ -x "$PLUGIN_DIR/docker-buildx" ]; then
    return 0
  fi
  local apt_root="$STATE_DIR/trixie-apt"
  mkdir -p "$apt_root/lists/partial" "$apt_root/cache/archives/partial" "$apt_root/debs" "$apt_root/unpacked"
  # An empty dpkg status: apt resolves nothing against this machine's installed packages.
  : > "$apt_root/status"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $TRIXIE_MIRROR trixie main" \
    > "$apt_root/sources.list"
  local apt_options=(
    -o "Dir::Etc::SourceList=$apt_root/sources.list"
    -o "Dir::Etc::SourceParts=-"
    -o "Dir::State::Lists=$apt_root/lists"
    -o "Dir::Cache=$apt_root/cache"
    -o "Dir::State::status=$apt_root/status"
    -o "APT::Get::List-Cleanup=0"
    -o "APT::Sandbox::User=root"
  )
  log "downloading ${PLUGIN_PACKAGES[*]} from Debian trixie (not installed system-wide)"
  apt-get "${apt_options[@]}" update -qq
  (cd "$apt_root/debs" && apt-get "${apt_options[@]}" download "${PLUGIN_PACKAGES[@]}" >/dev/null)
  local deb
  for deb in "$apt_root"/debs/*.deb; do
    dpkg -x "$deb" "$apt_root/unpacked"
  done
  $sudo mkdir -p "$PLUGIN_DIR"
  local binary found
  for binary in docker-compose docker-buildx; do
    found=$(find "$apt_root/unpacked" -type f -name "$binary" -perm -u+x | head -n 1)
    [ -n "$found" ] || { log "$binary not found in the unpacked trixie packages ($apt_root/unpacked)"; exit 1; }
    $sudo install -m 0755 "$found" "$PLUGIN_DIR/$binary"
  done
}

install_engine() {
  local missing
  mapfile -t missing < <(missing_packages "${ENGINE_PACKAGES[@]}")
  # The Docker CLI may already be another build (e.g. Docker's static one in /usr/local/bin): the engine is what counts.
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  install_plugins
  docker compose version >/dev/null
  docker buildx version >/dev/null
}

engine_answers() { docker info >/dev/null 2>&1; }

start_engine() {
  if engine_answers; then
    log "an engine already answers; using it"
    return 0
  fi
  command -v dockerd >/dev/null || { log "dockerd is not installed: run '$0 install' first"; exit 1; }
  $sudo mkdir -p "$STATE_DIR"
  log "starting dockerd (log: $STATE_DIR/dockerd.log)"
  # setsid: dockerd outlives the shell that started it, and is stopped by its pid.
  $sudo setsid dockerd >"$STATE_DIR/dockerd.log" 2>&1 < /dev/null &
  echo $! | $sudo tee "$STATE_DIR/dockerd.pid" >/dev/null
  local waited=0
  until engine_answers; do
    if ! kill -0 "$(cat "$STATE_DIR/dockerd.pid")" 2>/dev/null; then
      log "dockerd exited at start; the end of its log:"
      tail -n 20 "$STATE_DIR/dockerd.log" >&2
      exit 1
    fi
    [ "$waited" -lt 60 ] || { log "dockerd does not answer after 60 s (log: $STATE_DIR/dockerd.log)"; exit 1; }
    sleep 1
    waited=$((waited + 1))
  done
  log "dockerd answers (pid $(cat "$STATE_DIR/dockerd.pid"))"
}

stop_engine() {
  local pid_file="$STATE_DIR/dockerd.pid" pid
  [ -s "$pid_file" ] || { log "no dockerd started by this script"; return 0; }
  pid=$(cat "$pid_file")
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping dockerd (pid $pid)"
    $sudo kill -TERM "$pid"
    local waited=0
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 60 ]; do
      sleep 1
      waited=$((waited + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "dockerd (pid $pid) still runs after 60 s"
      exit 1
    fi
  fi
  $sudo rm -f "$pid_file"
}

case "${1:-}" in
  install) install_engine ;;
  start) start_engine ;;
  stop) stop_engine ;;
  status) engine_answers ;;
  *)
    echo "usage: $0 install|start|stop|status" >&2
    exit 2
    ;;
esac
