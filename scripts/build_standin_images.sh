#!/usr/bin/env bash
# Builds, from Debian packages, local stand-ins for the third-party images docker-compose.yml names, under exactly
# those names, for machines where no container registry answers (the compose test, benchmarks/compose_stack.py).
# docs/compose-standins.md lists how each differs from the real image. With a registry, `docker compose pull` gets
# the real ones and this script is not needed.
#
#   scripts/build_standin_images.sh            # builds what is missing or out of date
#   FORCE=1 scripts/build_standin_images.sh    # rebuilds all
#
# Each image carries a label with the hash of its inputs (this script, the files in tests/compose/standins/, the
# Python copied in); an image whose label matches is not rebuilt. Needs root (mmdebstrap builds in a chroot).
set -euo pipefail

PROJECT_ROOT=$(cd "$(dirname "$0")/.." && pwd)
STANDINS=$PROJECT_ROOT/tests/compose/standins
COMPOSE_FILE=$PROJECT_ROOT/docker-compose.yml
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
WORK=${STANDIN_BUILD_DIR:-/var/tmp/medalflow-standins}
LABEL=org.medalflow.standin.inputs
export DOCKER_BUILDKIT=0 # the classic builder: no front-end image to fetch

log() { echo "==> build_standin_images: $*" >&2; }

# The image names, read from docker-compose.yml so that they cannot drift apart.
compose_image() {
  local service=$1 image
  image=$(awk -v service="  $service:" '
    $0 == service { inside = 1; next }
    inside && /^  [a-z]/ { exit }
    inside && $1 == "image:" { print $2; exit }' "$COMPOSE_FILE")
  [ -n "$image" ] || { log "no image: for service $service in $COMPOSE_FILE"; exit 1; }
  echo "$image"
}
POSTGRES_IMAGE=$(compose_image postgres)
REDIS_IMAGE=$(compose_image redis)
MINIO_IMAGE=$(compose_image minio)
STATSD_EXPORTER_IMAGE=$(compose_image statsd-exporter)
PROMETHEUS_IMAGE=$(compose_image prometheus)
# The Dockerfile's base image.
PYTHON_IMAGE=$(awk '$1 == "FROM" { print $2; exit }' "$PROJECT_ROOT/Dockerfile")

PYTHON_PREFIX=${PYTHON312_PREFIX:-$(dirname "$(dirname "$(readlink -f "$("$PROJECT_ROOT/scripts/find_python312.sh")")")")}
MOTO_REQUIREMENT=$(grep -E '^moto\[server\]==' "$PROJECT_ROOT/requirements/dev.txt")

inputs_hash() {
  # Everything an image is built from; the Python's version stands for its copied tree.
  {
    cat "$0"
    find "$STANDINS" -type f | sort | xargs cat
    "$PYTHON_PREFIX/bin/python3.12" -VV
    echo "$MOTO_REQUIREMENT"
    echo "$@"
  } | sha256sum | cut -c1-16
}

up_to_date() {
  local image=$1 hash=$2
  [ -z "${FORCE:-}" ] || return 1
  [ "$(docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$image" 2>/dev/null)" = "$hash" ]
}

# A Debian root filesystem with the given packages, imported as an image.
import_rootfs() {
  local image=$1 hash=$2 packages=$3
  shift 3
  local tarball="$WORK/${image//[\/:]/_}.tar"
  mkdir -p "$WORK"
  log "mmdebstrap $SUITE with $packages -> $image"
  mmdebstrap --quiet --variant=minbase --include="$packages" \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
    "$@" "$SUITE" "$tarball" "$MIRROR" >&2
  docker import --change "LABEL $LABEL=$hash" --change "ENV LANG=C.UTF-8" "$tarball" "$image" >/dev/null
  rm -f "$tarball"
}

build_context() {
  local image=$1 hash=$2 context=$3
  log "docker build $image"
  docker build --quiet --label "$LABEL=$hash" -t "$image" "$context" >/dev/null
}

install_mmdebstrap() {
  command -v mmdebstrap >/dev/null && return 0
  log "installing mmdebstrap"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
}

# python:3.12-slim-bookworm: Debian has no 3.12, so this machine's CPython 3.12 goes into /usr/local, as the official
# image builds its own there. Its scripts' #! lines are rewritten to the new prefix; no site-packages but pip.
build_python() {
  local hash
  hash=$(inputs_hash python)
  up_to_date "$PYTHON_IMAGE" "$hash" && { log "$PYTHON_IMAGE is up to date"; return 0; }
  local prefix=$PYTHON_PREFIX
  import_rootfs "$PYTHON_IMAGE" "$hash" \
    ca-certificates,netbase,tzdata,libssl3,libsqlite3-0,libffi8,libbz2-1.0,liblzma5,zlib1g,libreadline8,libncursesw6,libexpat1,libuuid1,libgdbm6 \
    --customize-hook="tar -C '$prefix' --exclude=./lib/python3.12/test --exclude='*/__pycache__' \
        --exclude='./lib/python3.12/site-packages/*.pth' --exclude=./lib/python3.12/site-packages/README.txt \
        -c . | tar -C \"\$1/usr/local\" -x" \
    --customize-hook="grep -rlI '^#!$prefix' \"\$1/usr/local/bin\" | xargs -r sed -i '1s|^#!$prefix|#!/usr/local|'" \
    --customize-hook='chroot "$1" ldconfig' \
    --customize-hook='for name in python pip; do [ -e "$1/usr/local/bin/$name" ] || ln -s ${name}3 "$1/usr/local/bin/$name"; done'
  # docker import keeps no PATH default of its own: set the official image's.
  local container
  container=$(docker create "$PYTHON_IMAGE" /usr/local/bin/python3 -V)
  docker commit --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' "$container" "$PYTHON_IMAGE" >/dev/null
  docker rm "$container" >/dev/null
  docker run --rm "$PYTHON_IMAGE" python -c 'import ssl, sqlite3, ctypes, bz2, lzma, zlib, uuid; print("python ok")' >&2
}

build_postgres() {
  local hash context="$WORK/postgres"
  hash=$(inputs_hash postgres)
  up_to_date "$POSTGRES_IMAGE" "$hash" && { log "$POSTGRES_IMAGE is up to date"; return 0; }
  import_rootfs medalflow-standin/postgres-rootfs "$hash" postgresql-15,postgresql-client-15
  rm -rf "$context" && mkdir -p "$context" && cp "$STANDINS/postgres-entrypoint.sh" "$context/"
  cat > "$context/Dockerfile" <<'DOCKERFILE'
FROM medalflow-standin/postgres-rootfs
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN chmod 0755 /usr/local/bin/docker-entrypoint.sh \
    && mkdir -p /var/lib/postgresql/data /docker-entrypoint-initdb.d /var/run/postgresql \
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql && chmod 0700 /var/lib/postgresql/data
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data
USER postgres
EXPOSE 5432
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
DOCKERFILE
  build_context "$POSTGRES_IMAGE" "$hash" "$context"
  docker rmi medalflow-standin/postgres-rootfs >/dev/null
}

build_redis() {
  local hash context="$WORK/redis"
  hash=$(inputs_hash redis)
  up_to_date "$REDIS_IMAGE" "$hash" && { log "$REDIS_IMAGE is up to date"; return 0; }
  import_rootfs medalflow-standin/redis-rootfs "$hash" redis-server
  rm -rf "$context" && mkdir -p "$context"
  # The official image runs redis-server without a config file and with protected mode off (the container's network
  # is the boundary); Debian's binary does the same with these arguments.
  cat > "$context/Dockerfile" <<'DOCKERFILE'
FROM medalflow-standin/redis-rootfs
RUN mkdir -p /data && chown redis:redis /data
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
WORKDIR /data
USER redis
EXPOSE 6379
CMD ["redis-server", "--protected-mode", "no", "--dir", "/data"]
DOCKERFILE
  build_context "$REDIS_IMAGE" "$hash" "$context"
  docker rmi medalflow-standin/redis-rootfs >/dev/null
}

# MinIO is packaged nowhere reachable: moto's S3 server, on the same port, behind a `minio` command that takes
# MinIO's arguments and an `mc` that answers `mc ready local` (the compose file's healthcheck).
build_minio() {
  local hash context="$WORK/minio"
  hash=$(inputs_hash minio)
  up_to_date "$MINIO_IMAGE" "$hash" && { log "$MINIO_IMAGE is up to date"; return 0; }
  rm -rf "$context" && mkdir -p "$context/wheels"
  log "downloading $MOTO_REQUIREMENT and its dependencies (wheels for the image)"
  "$PYTHON_PREFIX/bin/python3.12" -m pip download --quiet --only-binary=:all: -d "$context/wheels" "$MOTO_REQUIREMENT"
  cp "$STANDINS/minio" "$STANDINS/mc" "$context/"
  cat > "$context/Dockerfile" <<DOCKERFILE
FROM $PYTHON_IMAGE
COPY wheels /tmp/wheels
RUN pip install --no-cache-dir --no-index --find-links /tmp/wheels "$MOTO_REQUIREMENT" && rm -rf /tmp/wheels
COPY minio mc /usr/bin/
RUN chmod 0755 /usr/bin/minio /usr/bin/mc && mkdir -p /data
EXPOSE 9000 9001
ENTRYPOINT ["minio"]
CMD ["server", "/data"]
DOCKERFILE
  build_context "$MINIO_IMAGE" "$hash" "$context"
}

# Debian packages no StatsD exporter (bookworm nor trixie): the stand-in is tests/compose/standins/statsd_exporter, the
# exporter's mapping and exposition contract in Python on Debian's python3 and python3-yaml. wget: the compose file's
# healthcheck, as the real image's busybox has it.
build_statsd_exporter() {
  local hash context="$WORK/statsd-exporter"
  hash=$(inputs_hash statsd-exporter)
  up_to_date "$STATSD_EXPORTER_IMAGE" "$hash" && { log "$STATSD_EXPORTER_IMAGE is up to date"; return 0; }
  import_rootfs medalflow-standin/statsd-exporter-rootfs "$hash" python3,python3-yaml,wget
  rm -rf "$context" && mkdir -p "$context" && cp "$STANDINS/statsd_exporter" "$context/"
  # As the real image: /bin/statsd_exporter as the entrypoint, run as nobody, 9102 (metrics) and 9125 (StatsD).
  cat > "$context/Dockerfile" <<'DOCKERFILE'
FROM medalflow-standin/statsd-exporter-rootfs
COPY statsd_exporter /bin/statsd_exporter
RUN chmod 0755 /bin/statsd_exporter
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
USER nobody
EXPOSE 9102 9125 9125/udp
ENTRYPOINT ["/bin/statsd_exporter"]
DOCKERFILE
  build_context "$STATSD_EXPORTER_IMAGE" "$hash" "$context"
  docker rmi medalflow-standin/statsd-exporter-rootfs >/dev/null
}

# Prometheus from Debian 12's package (2.42), laid out as the official image: /bin/prometheus as the entrypoint with
# the image's default arguments, run as nobody, its data in /prometheus.
build_prometheus() {
  local hash context="$WORK/prometheus"
  hash=$(inputs_hash prometheus)
  up_to_date "$PROMETHEUS_IMAGE" "$hash" && { log "$PROMETHEUS_IMAGE is up to date"; return 0; }
  import_rootfs medalflow-standin/prometheus-rootfs "$hash" prometheus,wget
  rm -rf "$context" && mkdir -p "$context"
  cat > "$context/Dockerfile" <<'DOCKERFILE'
FROM medalflow-standin/prometheus-rootfs
RUN mkdir -p /prometheus /etc/prometheus && chown nobody:nogroup /prometheus
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
USER nobody
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
DOCKERFILE
  build_context "$PROMETHEUS_IMAGE" "$hash" "$context"
  docker rmi medalflow-standin/prometheus-rootfs >/dev/null
}

main() {
  [ "$(id -u)" -eq 0 ] || { log "needs root (mmdebstrap builds in a chroot)"; exit 1; }
  docker info >/dev/null 2>&1 || { log "no Docker engine answers: scripts/docker_engine.sh start"; exit 1; }
  install_mmdebstrap
  build_python
  build_postgres
  build_redis
  build_minio
  build_statsd_exporter
  build_prometheus
  log "stand-ins ready: $PYTHON_IMAGE $POSTGRES_IMAGE $REDIS_IMAGE $MINIO_IMAGE $STATSD_EXPORTER_IMAGE $PROMETHEUS_IMAGE"
}

main "$@"
