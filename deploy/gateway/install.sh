#!/bin/sh
# Installs the otlp-edge agent on a Linux gateway as a hardened systemd service.
#
#   install.sh [options] [PACKAGE.tgz | DIR]     install or upgrade (again: same result, your config kept)
#   install.sh --uninstall [--purge] [options]   remove it (data and config kept unless --purge)
#
# PACKAGE.tgz is made by `npm pack` in a built checkout; DIR is such a checkout or an unpacked package. Without
# either, the package this script belongs to is installed. Layout under --prefix (default /):
#   opt/otlp-edge/                      the application and its production dependencies
#   usr/local/bin/otlp-edge-agent       the command (run, --check, passwd, buffer)
#   etc/otlp-edge/agent.yaml            configuration, written once from a commented example
#   etc/otlp-edge/agent.env             environment for the service (OTLP_EDGE_TOKEN)
#   etc/otlp-edge/devices.passwd        device credentials (otlp-edge-agent passwd)
#   var/lib/otlp-edge-agent/            the durable buffer
#   etc/systemd/system/otlp-edge-agent.service
set -eu

usage() {
  cat <<'USAGE'
Usage: install.sh [options] [PACKAGE.tgz | DIR]
       install.sh --uninstall [--purge] [--prefix DIR]

Options:
  --prefix DIR        install under DIR instead of / (a test root or an image); no systemctl calls then
  --user NAME         the service's user (default otlp-edge; created as a system user under prefix /)
  --uplink HOST:PORT  the aggregator written into a new agent.yaml (default 127.0.0.1:4317)
  --token-file FILE   the agent's uplink token, written into agent.env
  --memory-max SIZE   systemd MemoryMax (default 224M: a 256 MB gateway keeps 32 MB for its OS)
  --heap-mb N         V8 old-space limit in MB (default 144; below --memory-max)
  --node PATH         the Node.js binary (default: node on PATH; version 20 or newer)
  --no-start          install but do not enable or (re)start the service
  --uninstall         stop and remove the service, the command and the application
  --purge             with --uninstall: also remove config, data and the user
  -h, --help          this text
USAGE
}

die() {
  echo "install.sh: $*" >&2
  exit 1
}

PREFIX=/
SVC_USER=otlp-edge
UPLINK=127.0.0.1:4317
TOKEN_FILE=
MEMORY_MAX=224M
HEAP_MB=144
NODE=
START=yes
UNINSTALL=no
PURGE=no
SOURCE=

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX=${2:?--prefix needs a directory}; shift 2 ;;
    --user) SVC_USER=${2:?--user needs a name}; shift 2 ;;
    --uplink) UPLINK=${2:?--uplink needs HOST:PORT}; shift 2 ;;
    --token-file) TOKEN_FILE=${2:?--token-file needs a file}; shift 2 ;;
    --memory-max) MEMORY_MAX=${2:?--memory-max needs a size like 200M}; shift 2 ;;
    --heap-mb) HEAP_MB=${2:?--heap-mb needs a number}; shift 2 ;;
    --node) NODE=${2:?--node needs a path}; shift 2 ;;
    --no-start) START=no; shift ;;
    --uninstall) UNINSTALL=yes; shift ;;
    --purge) PURGE=yes; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option $1" ;;
    *) [ -z "$SOURCE" ] || die "one package or directory, got '$SOURCE' and '$1'"; SOURCE=$1; shift ;;
  esac
done

case "$HEAP_MB" in '' | *[!0-9]*) die "--heap-mb: expected a number of MB, got '$HEAP_MB'" ;; esac
case "$MEMORY_MAX" in *[!0-9KMG]* | '') die "--memory-max: expected a size like 200M or 1G, got '$MEMORY_MAX'" ;; esac
case "$UPLINK" in *:*) ;; *) die "--uplink: expected HOST:PORT, got '$UPLINK'" ;; esac
case "$SVC_USER" in '' | *[!a-z0-9_-]*) die "--user: expected a user name of a-z 0-9 _ -, got '$SVC_USER'" ;; esac

PREFIX=${PREFIX%/}
APP=$PREFIX/opt/otlp-edge
BIN=$PREFIX/usr/local/bin/otlp-edge-agent
CONFIG_DIR=$PREFIX/etc/otlp-edge
DATA_DIR=$PREFIX/var/lib/otlp-edge-agent
UNIT=$PREFIX/etc/systemd/system/otlp-edge-agent.service
SYSTEM=no # manage the real system's users and services (prefix /)
[ -z "$PREFIX" ] && SYSTEM=yes
SYSTEMD=no
[ "$SYSTEM" = yes ] && [ -d /run/systemd/system ] && SYSTEMD=yes

if [ "$SYSTEM" = yes ] && [ "$(id -u)" != 0 ]; then die "run as root (or give --prefix for a root of your own)"; fi

if [ "$UNINSTALL" = yes ]; then
  if [ "$SYSTEMD" = yes ]; then
    systemctl disable --now otlp-edge-agent.service 2>/dev/null || true
  fi
  rm -f "$UNIT" "$BIN"
  [ "$SYSTEMD" = yes ] && systemctl daemon-reload
  rm -rf "$APP"
  if [ "$PURGE" = yes ]; then
    rm -rf "$CONFIG_DIR" "$DATA_DIR"
    if [ "$SYSTEM" = yes ] && id "$SVC_USER" >/dev/null 2>&1 && [ "$SVC_USER" = otlp-edge ]; then userdel otlp-edge; fi
    echo "otlp-edge agent removed with its configuration and data"
  else
    echo "otlp-edge agent removed; kept $CONFIG_DIR and $DATA_DIR (--purge removes them)"
  fi
  exit 0
fi

# ---- checks: nothing is changed until all of them pass and the application is built in a staging directory ----

[ -n "$NODE" ] || NODE=$(command -v node || true)
if [ -z "$NODE" ] || [ ! -x "$NODE" ]; then
  die "Node.js 20 or newer is required: install it (e.g. from nodejs.org or your distribution) or give --node PATH"
fi
NODE_MAJOR=$("$NODE" -p 'process.versions.node.split(".")[0]')
[ "$NODE_MAJOR" -ge 20 ] || die "Node.js 20 or newer is required; $NODE is $("$NODE" --version)"
NPM=$(dirname "$NODE")/npm
[ -x "$NPM" ] || NPM=$(command -v npm || true)
[ -n "$NPM" ] || die "npm is required beside node (it installs the production dependencies)"
ARCH=$(uname -m)
case "$ARCH" in
  x86_64 | aarch64 | arm64) ;;
  *) die "unsupported machine $ARCH: x86_64 and arm64 (aarch64) gateways are supported" ;;
esac
# Native modules: classic-level (LevelDB) ships prebuilt binaries for linux x64 and arm64; zstd-napi is compiled
# unless a prebuilt binary can be downloaded from its releases, so a gateway without that download needs a compiler.
MISSING=
for tool in python3 make g++; do command -v "$tool" >/dev/null 2>&1 || MISSING="$MISSING $tool"; done

if [ -z "$SOURCE" ]; then SOURCE=$(CDPATH='' cd -- "$(dirname -- "$0")/../.." && pwd); fi
[ -e "$SOURCE" ] || die "$SOURCE: no such package or directory"

if [ "$SYSTEM" = no ] && ! id "$SVC_USER" >/dev/null 2>&1; then
  die "--user $SVC_USER does not exist (under --prefix no user is created)"
fi
mkdir -p "$PREFIX/opt"
STAGE=$(mktemp -d "$PREFIX/opt/.otlp-edge-stage.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT INT TERM

# The package's files.
if [ -f "$SOURCE" ]; then
  tar -xzf "$SOURCE" -C "$STAGE" || die "$SOURCE is not a package made by npm pack (tar -xzf failed)"
  [ -d "$STAGE/package" ] || die "$SOURCE is not a package made by npm pack (no package/ inside)"
  PKG=$STAGE/package
else
  [ -f "$SOURCE/package.json" ] || die "$SOURCE has no package.json: give a package made by npm pack or a checkout"
  [ -f "$SOURCE/dist/agent/main.js" ] || die "$SOURCE is not built: run 'npm ci' (which builds it) there first"
  PKG=$STAGE/package
  mkdir -p "$PKG"
  for f in package.json npm-shrinkwrap.json package-lock.json README.md SECURITY.md ERRORS.md dist protocol deploy aggregator; do
    [ -e "$SOURCE/$f" ] && cp -R "$SOURCE/$f" "$PKG/"
  done
  # From a checkout only what the package holds (compiled code, protos, the page), not the TypeScript sources.
  find "$PKG/protocol" "$PKG/aggregator" -name '*.ts' -delete 2>/dev/null || true
fi
grep -q '"name": "otlp-edge"' "$PKG/package.json" || die "$SOURCE is not otlp-edge"
VERSION=$("$NODE" -p 'require(process.argv[1]).version' "$PKG/package.json")
# The package's own scripts build and pack it from sources; an installed copy runs none of them.
"$NODE" -e 'const fs = require("fs"); const f = process.argv[1]; const p = JSON.parse(fs.readFileSync(f, "utf8"));
delete p.scripts; fs.writeFileSync(f, JSON.stringify(p, null, 2) + "\n");' "$PKG/package.json"

# Production dependencies, pinned by the lock the package carries; reused when nothing they depend on changed.
LOCK=
for f in npm-shrinkwrap.json package-lock.json; do [ -f "$PKG/$f" ] && LOCK=$PKG/$f && break; done
STAMP=$( (cat "$PKG/package.json" ${LOCK:+"$LOCK"}; echo "$NODE_MAJOR $ARCH") | sha256sum | cut -c1-64)
if [ -f "$APP/.deps-stamp" ] && [ "$(cat "$APP/.deps-stamp")" = "$STAMP" ] && [ -d "$APP/node_modules" ]; then
  cp -R "$APP/node_modules" "$PKG/"
else
  if [ -n "$MISSING" ]; then
    echo "install.sh: note: no$MISSING here; zstd-napi needs them unless its prebuilt binary can be downloaded" >&2
  fi
  if [ -n "$LOCK" ]; then NPM_CMD=ci; else NPM_CMD=install; fi
  if ! (cd "$PKG" && PATH="$(dirname "$NODE"):$PATH" "$NPM" "$NPM_CMD" --omit=dev --no-audit --no-fund --loglevel=error >"$STAGE/npm.log" 2>&1); then
    tail -n 30 "$STAGE/npm.log" >&2
    if [ -n "$MISSING" ]; then
      die "the production dependencies could not be installed; native modules need a compiler here: install$MISSING (Debian: apt-get install -y python3 make g++) and run install.sh again. Nothing was installed."
    fi
    die "the production dependencies could not be installed (npm $NPM_CMD failed; its output is above). Nothing was installed."
  fi
fi
# Every native module must load on this machine before anything is replaced.
(cd "$PKG" && "$NODE" --input-type=module -e "await import('classic-level'); await import('zstd-napi');") ||
  die "the native modules do not load on this $ARCH machine with Node.js $("$NODE" --version). Nothing was installed."
echo "$STAMP" >"$PKG/.deps-stamp"

# ---- install ----

if [ "$SYSTEM" = yes ] && ! id "$SVC_USER" >/dev/null 2>&1; then
  useradd --system --user-group --no-create-home --home-dir /var/lib/otlp-edge-agent --shell /usr/sbin/nologin "$SVC_USER"
fi
GROUP=$(id -gn "$SVC_USER")

chmod -R go-w "$PKG"
chmod 755 "$PKG"
if [ -d "$APP" ]; then
  mv "$APP" "$STAGE/previous"
fi
if ! mv "$PKG" "$APP"; then
  [ -d "$STAGE/previous" ] && mv "$STAGE/previous" "$APP"
  die "could not move the new application into $APP; the previous one is back in place"
fi

mkdir -p "$CONFIG_DIR" "$DATA_DIR" "$(dirname "$BIN")" "$(dirname "$UNIT")"
chown root:"$GROUP" "$CONFIG_DIR" 2>/dev/null || chgrp "$GROUP" "$CONFIG_DIR"
chmod 750 "$CONFIG_DIR"
chown "$SVC_USER:$GROUP" "$DATA_DIR"
chmod 750 "$DATA_DIR"

subst() {
  sed -e "s#@APP@#$APP#g" -e "s#@CONFIG_DIR@#$CONFIG_DIR#g" -e "s#@DATA_DIR@#$DATA_DIR#g" \
    -e "s#@UPLINK@#$UPLINK#g" -e "s#@NODE@#$NODE#g" -e "s#@USER@#$SVC_USER#g" -e "s#@GROUP@#$GROUP#g" \
    -e "s#@HEAP_MB@#$HEAP_MB#g" -e "s#@MEMORY_MAX@#$MEMORY_MAX#g" -e "s#@MEMORY_HIGH@#$MEMORY_HIGH#g" \
    -e "s#@CAPABILITIES@#$CAPABILITIES#g" "$1"
}
MEMORY_HIGH=$MEMORY_MAX
CAPABILITIES=

if [ ! -f "$CONFIG_DIR/agent.yaml" ]; then
  subst "$APP/deploy/gateway/agent.yaml" >"$CONFIG_DIR/agent.yaml"
  chown root:"$GROUP" "$CONFIG_DIR/agent.yaml" 2>/dev/null || true
  chmod 640 "$CONFIG_DIR/agent.yaml"
  echo "wrote $CONFIG_DIR/agent.yaml"
fi
if [ ! -f "$CONFIG_DIR/agent.env" ] || [ -n "$TOKEN_FILE" ]; then
  TOKEN=
  if [ -n "$TOKEN_FILE" ]; then TOKEN=$(tr -d ' \r\n' <"$TOKEN_FILE") || die "--token-file: cannot read $TOKEN_FILE"; fi
  umask 077
  printf '# The agent service environment (systemd EnvironmentFile).\n# The uplink token the aggregator knows this agent by:\nOTLP_EDGE_TOKEN=%s\n' "$TOKEN" >"$CONFIG_DIR/agent.env"
  umask 022
  chown root:"$GROUP" "$CONFIG_DIR/agent.env" 2>/dev/null || true
  chmod 640 "$CONFIG_DIR/agent.env"
fi
# The agent reads it; `otlp-edge-agent passwd`, run by root, keeps its owner when it rewrites it.
if [ ! -f "$CONFIG_DIR/devices.passwd" ]; then
  : >"$CONFIG_DIR/devices.passwd"
  chown "$SVC_USER:$GROUP" "$CONFIG_DIR/devices.passwd"
  chmod 600 "$CONFIG_DIR/devices.passwd"
fi

cat >"$BIN" <<EOF
#!/bin/sh
# otlp-edge agent $VERSION (installed by install.sh)
exec "$NODE" "$APP/dist/agent/main.js" "\$@"
EOF
chmod 755 "$BIN"

# The configuration must load with the installed agent's own loader; its ports decide the capabilities.
CHECK_ENV="$CONFIG_DIR/agent.env"
# shellcheck source=/dev/null
PORTS=$(set -a; . "$CHECK_ENV"; set +a; "$NODE" --input-type=module -e '
const { loadAgentConfig } = await import(process.argv[1]);
const c = loadAgentConfig(process.argv[2]);
const b = c.mqtt.broker;
const ports = [c.http.port];
if (b.enabled) ports.push(b.tcp.port, b.tls.port, b.ws.port);
console.log(ports.filter((p) => p > 0).join(" "));
' "$APP/dist/agent/config.js" "$CONFIG_DIR/agent.yaml") || die "$CONFIG_DIR/agent.yaml does not load (the message above says which key); fix it and run install.sh again"
for p in $PORTS; do
  if [ "$p" -lt 1024 ]; then CAPABILITIES=CAP_NET_BIND_SERVICE; fi
done
MEMORY_HIGH=$(
  case "$MEMORY_MAX" in
    *G) echo "$((${MEMORY_MAX%G} * 1024 * 7 / 8))M" ;;
    *M) echo "$((${MEMORY_MAX%M} * 7 / 8))M" ;;
    *K) echo "$((${MEMORY_MAX%K} * 7 / 8))K" ;;
    *) echo "$((MEMORY_MAX * 7 / 8))" ;;
  esac
)
subst "$APP/deploy/gateway/otlp-edge-agent.service" >"$UNIT"
chmod 644 "$UNIT"

if [ "$SYSTEMD" = yes ]; then
  systemctl daemon-reload
  if [ "$START" = yes ]; then
    systemctl enable otlp-edge-agent.service >/dev/null
    systemctl restart otlp-edge-agent.service
  fi
fi
echo "otlp-edge agent $VERSION installed in $APP (service user $SVC_USER, listening on ports: $PORTS)"
if [ "$SYSTEMD" = yes ] && [ "$START" = yes ]; then
  echo "running: systemctl status otlp-edge-agent; logs: journalctl -u otlp-edge-agent"
else
  echo "start it with: systemctl enable --now otlp-edge-agent"
fi
