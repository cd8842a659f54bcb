#!/usr/bin/env bash
# A throwaway local Redis Cluster for tests and benchmarks: 3 primaries + 3 replicas on
# 127.0.0.1:<base>..<base+5> (cluster bus on port + 10000), no persistence.
#
#   scripts/cluster.sh start [base_port]    start it (exits 0 if it already runs)
#   scripts/cluster.sh stop [base_port]     stop exactly the servers it started, remove its files
#   scripts/cluster.sh status [base_port]   print each node's role; exit 0 only if all are ok
#
# Everything lives in one directory per base port (pid files, logs, nodes.conf), so several
# clusters can run side by side and `stop` never touches a server it did not start.
set -euo pipefail

command=${1:-status}
base=${2:-7000}
[[ $base =~ ^[0-9]+$ ]] && ((base >= 1024 && base + 5 <= 55535)) ||
  { echo "cluster.sh: base port must be in 1024..55530" >&2; exit 2; }
dir="${TMPDIR:-/tmp}/sessionstore-cluster-$base"
host=127.0.0.1
mapfile -t ports < <(seq "$base" $((base + 5)))
# Short node timeout: replicas notice a dead primary (and tests converge) in seconds.
node_timeout_ms=3000

# Bounded: redis-cli has no timeout of its own, and a port that accepts but never answers
# would hold it (and CI) forever.
cli() { timeout 10 redis-cli -h "$host" -p "$1" "${@:2}"; }

# The pid in a port's pid file, if that process is still the redis-server we started there.
our_pid() {
  local pid_file="$dir/redis-$1.pid" pid
  [[ -f $pid_file ]] || return 1
  pid=$(<"$pid_file")
  [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" |
    grep -qE "^redis-server [^ ]*:$1 " && echo "$pid"
}

node_ok() { cli "$1" cluster info 2>/dev/null | grep -q '^cluster_state:ok'; }

# The node's own view lists all three replicas (gossip has spread every node's role).
sees_replicas() { [[ $(cli "$1" cluster nodes 2>/dev/null | grep -cE ' (myself,)?slave ') == 3 ]]; }

replica_synced() {
  local info
  info=$(cli "$1" info replication 2>/dev/null) || return 1
  grep -q '^role:master' <<<"$info" || grep -q '^master_link_status:up' <<<"$info"
}

all_ok() {
  local port
  for port in "${ports[@]}"; do
    node_ok "$port" && sees_replicas "$port" && replica_synced "$port" || return 1
  done
}

wait_for() {  # wait_for <seconds> <command...>
  local deadline=$((SECONDS + $1))
  until "${@:2}"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

start() {
  if all_ok; then
    echo "cluster.sh: cluster already running on $host:${ports[0]}-${ports[5]}"
    return 0
  fi
  local port
  for port in "${ports[@]}"; do
    if our_pid "$port" >/dev/null || cli "$port" ping >/dev/null 2>&1; then
      echo "cluster.sh: port $port is busy but the cluster is not healthy; run stop first" >&2
      return 1
    fi
  done
  rm -rf "$dir"
  mkdir -p "$dir"
  for port in "${ports[@]}"; do
    redis-server --port "$port" --bind "$host" --daemonize yes --dir "$dir" \
      --cluster-enabled yes --cluster-config-file "nodes-$port.conf" \
      --cluster-node-timeout "$node_timeout_ms" --repl-diskless-sync-delay 0 \
      --save '' --appendonly no \
      --pidfile "$dir/redis-$port.pid" --logfile "$dir/redis-$port.log"
  done
  for port in "${ports[@]}"; do
    wait_for 10 cli "$port" ping >/dev/null ||
      { echo "cluster.sh: $host:$port did not start (see $dir/redis-$port.log)" >&2; return 1; }
  done
  local nodes=()
  for port in "${ports[@]}"; do nodes+=("$host:$port"); done
  timeout 120 redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log"
  wait_for 30 all_ok ||
    { echo "cluster.sh: cluster did not reach cluster_state:ok (see $dir)" >&2; return 1; }
  echo "cluster.sh: cluster ok on $host:${ports[0]}-${ports[5]} (files in $dir)"
}

stop() {
  local port pid stopped=()
  for port in "${ports[@]}"; do
    if pid=$(our_pid "$port"); then
      kill "$pid"
      stopped+=("$pid")
    fi
  done
  for pid in "${stopped[@]}"; do
    wait_for 10 eval "! kill -0 $pid 2>/dev/null" || kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$dir"
  echo "cluster.sh: stopped ${#stopped[@]} server(s) on $host:${ports[0]}-${ports[5]}"
}

status() {
  local port healthy=0 role state
  for port in "${ports[@]}"; do
    if role=$(cli "$port" role 2>/dev/null | head -1); then
      node_ok "$port" && state=ok || { state=fail; healthy=1; }
      echo "$host:$port $role cluster_state:$state"
    else
      echo "$host:$port down"
      healthy=1
    fi
  done
  return "$healthy"
}

case $command in
  start | stop | status) "$command" ;;
  *) echo "usage: $0 start|stop|status [base_port]" >&2; exit 2 ;;
esac
