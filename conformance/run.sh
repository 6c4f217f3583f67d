#!/usr/bin/env bash
# Runs the official MCP conformance suite (@modelcontextprotocol/conformance) against the
# mcp-tasks fixture server (conformance/server.ts): scenarios tasks-* (io.modelcontextprotocol/tasks,
# protocol 2026-07-28) and input-required-result-* (SEP-2322). See conformance/README.md.
#
#   bash conformance/run.sh                      # every tasks-* and input-required-result-* scenario
#   bash conformance/run.sh tasks-lifecycle ...  # only these scenarios
#
# Environment:
#   CONFORMANCE_TOOLS     where the suite and Node 22 are installed (default .tools/conformance in
#                         this clone, git-ignored; installed with npm on first use)
#   CONFORMANCE_OUT       where results and logs go (default: a new /tmp/mcp-tasks-conformance.XXXXXX)
#   CONFORMANCE_PORT      fixture port on 127.0.0.1 (default 0 = a free port)
#   CONFORMANCE_BASELINE  expected-failures file (default conformance/expected-failures.yml; "none" = strict)
#   CONFORMANCE_MRTR      "sdk" = diagnostic baseline: SEP-2322 fixtures served by the SDK's own MRTR
#                         instead of mcp-tasks task tools (use with CONFORMANCE_BASELINE=none)
#   CONFORMANCE_TIMEOUT   per-scenario timeout in ms (default 60000)
#   CONFORMANCE_POLL_INTERVAL_MS  pollInterval the fixture advertises (default 250; the package default is 1000)
#   CONFORMANCE_EXECUTOR  embedded (default), dbos or restate: what executes the fixture's tasks (see
#                         conformance/server.ts). With restate and no CONFORMANCE_RESTATE_INGRESS, a
#                         restate-server from node_modules (@restatedev/restate-server) is started on
#                         free loopback ports with its data in a temp dir, and stopped (and the dir
#                         removed) at exit; its log is $OUT/restate-server.log.
#   CONFORMANCE_HOST      node:http (default: startHttpServer) or hono: the endpoint mounted in a Hono app
#                         through the web-standard handler (createMcpHttpHandler(...).fetch)
#
# Exit status: 0 when every check passed or failed only as listed in the baseline; 1 otherwise
# (a new failure, or a baselined failure that now passes: update the baseline).
set -euo pipefail

SUITE_VERSION=0.2.0-alpha.12
NODE_PACKAGE=node@22
REPO=$(cd "$(dirname "$0")/.." && pwd)
TOOLS=${CONFORMANCE_TOOLS:-$REPO/.tools/conformance}
OUT=${CONFORMANCE_OUT:-$(mktemp -d /tmp/mcp-tasks-conformance.XXXXXX)}
BASELINE=${CONFORMANCE_BASELINE:-$REPO/conformance/expected-failures.yml}
TIMEOUT_MS=${CONFORMANCE_TIMEOUT:-60000}
started=$(date +%s)
mkdir -p "$OUT"

# --- tools: the suite and a Node >= 22 to run it (the project itself stays on the system Node) ---
cli=$TOOLS/node_modules/@modelcontextprotocol/conformance/dist/index.js
installed_version() { node -p "require('$TOOLS/node_modules/@modelcontextprotocol/conformance/package.json').version" 2>/dev/null || true; }
find_node22() {
  local candidate
  for candidate in "$TOOLS/node_modules/node/bin/node" "$TOOLS"/node_modules/node/node_modules/node-*/bin/node "$TOOLS"/node_modules/node-*/bin/node; do
    if [ -x "$candidate" ] && [[ "$("$candidate" --version 2>/dev/null)" == v22.* ]]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}
if [ ! -f "$cli" ] || [ "$(installed_version)" != "$SUITE_VERSION" ] || ! find_node22 >/dev/null; then
  echo "Installing @modelcontextprotocol/conformance@$SUITE_VERSION and $NODE_PACKAGE into $TOOLS ..."
  mkdir -p "$TOOLS"
  [ -f "$TOOLS/package.json" ] || (cd "$TOOLS" && npm init -y >/dev/null 2>&1)
  (cd "$TOOLS" && npm install --no-audit --no-fund --loglevel=error "$NODE_PACKAGE" "@modelcontextprotocol/conformance@$SUITE_VERSION")
fi
NODE22=$(find_node22) || {
  echo "No Node 22 binary under $TOOLS/node_modules (npm package $NODE_PACKAGE)" >&2
  exit 1
}

# --- scenarios ---
if [ "$#" -gt 0 ]; then
  scenarios=("$@")
else
  mapfile -t scenarios < <("$NODE22" "$cli" list --server | sed -n -E 's/^ *- ((tasks-|input-required-result-)[a-z0-9-]+).*/\1/p')
fi
[ "${#scenarios[@]}" -gt 0 ] || {
  echo "No scenarios to run" >&2
  exit 1
}

# --- the fixture server (system Node, TypeScript through tsx, in-memory store) ---
server_pid=
restate_pid=
restate_dir=
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
}
stop_restate() {
  if [ -n "$restate_pid" ] && kill -0 "$restate_pid" 2>/dev/null; then
    kill -TERM "$restate_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$restate_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$restate_pid" 2>/dev/null || true
    wait "$restate_pid" 2>/dev/null || true
  fi
  restate_pid=
  if [ -n "$restate_dir" ]; then rm -rf "$restate_dir"; restate_dir=; fi
}
trap 'stop_server; stop_restate' EXIT

# --- CONFORMANCE_EXECUTOR=restate: a restate-server of our own unless one is given ---
if [ "${CONFORMANCE_EXECUTOR:-embedded}" = restate ] && [ -z "${CONFORMANCE_RESTATE_INGRESS:-}" ]; then
  restate_bin=$(cd "$REPO" && node -p "require.resolve('@restatedev/restate-server-' + process.platform + '-' + process.arch + '/bin/restate-server')" 2>/dev/null) || {
    echo "CONFORMANCE_EXECUTOR=restate needs restate-server: npm install (dev dependency @restatedev/restate-server)" >&2
    exit 1
  }
  # Four free loopback ports (ingress, admin, node-to-node, the fixture's Restate endpoint).
  read -r r_ingress r_admin r_node r_endpoint < <(node -e '
    const net = require("node:net");
    const one = () => new Promise((resolve) => { const s = net.createServer().listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); }); });
    (async () => { const ports = new Set(); while (ports.size < 4) ports.add(await one()); console.log([...ports].join(" ")); })();')
  restate_dir=$(mktemp -d /tmp/mcp-tasks-conformance-restate.XXXXXX)
  RESTATE_BIND_IP=127.0.0.1 RESTATE_ADVERTISED_HOST=127.0.0.1 \
    RESTATE_INGRESS__BIND_ADDRESS=127.0.0.1:$r_ingress RESTATE_ADMIN__BIND_ADDRESS=127.0.0.1:$r_admin RESTATE_BIND_ADDRESS=127.0.0.1:$r_node \
    RESTATE_DISABLE_TELEMETRY=true RESTATE_DEFAULT_NUM_PARTITIONS=4 RESTATE_ROCKSDB_TOTAL_MEMORY_SIZE=256MiB \
    RESTATE_LOG_FORMAT=compact RESTATE_LOG_DISABLE_ANSI_CODES=true \
    "$restate_bin" --listen-mode tcp --base-dir "$restate_dir" --no-logo >"$OUT/restate-server.log" 2>&1 &
  restate_pid=$!
  export CONFORMANCE_RESTATE_INGRESS=http://127.0.0.1:$r_ingress CONFORMANCE_RESTATE_ADMIN=http://127.0.0.1:$r_admin
  export CONFORMANCE_RESTATE_ENDPOINT_PORT=${CONFORMANCE_RESTATE_ENDPOINT_PORT:-$r_endpoint}
  healthy=
  for _ in $(seq 1 300); do
    kill -0 "$restate_pid" 2>/dev/null || break
    if curl -fsS -o /dev/null "$CONFORMANCE_RESTATE_ADMIN/health" 2>/dev/null && curl -fsS -o /dev/null "$CONFORMANCE_RESTATE_INGRESS/restate/health" 2>/dev/null; then
      healthy=1
      break
    fi
    sleep 0.1
  done
  if [ -z "$healthy" ]; then
    echo "restate-server did not become healthy; its log ($OUT/restate-server.log):" >&2
    cat "$OUT/restate-server.log" >&2
    exit 1
  fi
  echo "restate-server $("$restate_bin" --version 2>/dev/null | head -n1) (pid $restate_pid): ingress $CONFORMANCE_RESTATE_INGRESS, admin $CONFORMANCE_RESTATE_ADMIN, endpoint port $CONFORMANCE_RESTATE_ENDPOINT_PORT"
fi
(cd "$REPO" && exec node --import tsx conformance/server.ts >"$OUT/server.stdout" 2>"$OUT/server.log") &
server_pid=$!
url=
for _ in $(seq 1 300); do
  url=$(sed -n 's/^CONFORMANCE_SERVER_URL=//p' "$OUT/server.stdout" 2>/dev/null | head -n1)
  [ -n "$url" ] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "The fixture server did not start; its log ($OUT/server.log):" >&2
  cat "$OUT/server.log" >&2
  exit 1
fi

echo "suite @modelcontextprotocol/conformance@$SUITE_VERSION on node $("$NODE22" --version); fixture $url (node $(node --version), MRTR fixtures: ${CONFORMANCE_MRTR:-project})"
echo "results and logs: $OUT"
baseline_args=()
if [ "$BASELINE" != none ] && [ -f "$BASELINE" ]; then
  baseline_args=(--expected-failures "$BASELINE")
  echo "expected failures: $BASELINE"
fi

status=0
for scenario in "${scenarios[@]}"; do
  t0=$(date +%s%N)
  if (cd "$OUT" && "$NODE22" "$cli" server --url "$url" --scenario "$scenario" --timeout "$TIMEOUT_MS" -o "$OUT/results" "${baseline_args[@]}") >"$OUT/$scenario.log" 2>&1; then
    verdict=ok
  else
    verdict=$([ "${#baseline_args[@]}" -gt 0 ] && echo 'NOT AS BASELINED' || echo 'FAILED')
    status=1
  fi
  printf '  %-48s %6.1fs  %s\n' "$scenario" "$(( ($(date +%s%N) - t0) / 1000000 ))e-3" "$verdict"
done

stop_server
stop_restate

# --- summary from every scenario's checks.json ---
node "$REPO/conformance/summary.mjs" "$OUT/results" "${scenarios[@]}"
echo "elapsed: $(( $(date +%s) - started ))s; per-scenario output in $OUT/<scenario>.log, fixture log $OUT/server.log"
if [ "$status" -ne 0 ]; then
  if [ "${#baseline_args[@]}" -gt 0 ]; then
    echo "Some scenarios did not match the baseline (new failures, or baselined failures that now pass): see $OUT/<scenario>.log" >&2
  else
    echo "Some scenarios failed (no baseline in use)." >&2
  fi
fi
exit "$status"
