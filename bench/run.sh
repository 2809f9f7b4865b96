#!/usr/bin/env bash
# Entry point for `make bench`, `make bench-guard` and `make bench-baseline`: installs
# the load tools if missing, then runs bench/run.py (or the script named first, with
# its arguments), which starts (and always stops) nginx, the floor, the gateway and the
# load clients. Env: see bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[[ -x /usr/sbin/nginx ]] || need+=(nginx-light)
[[ -e /usr/lib/nginx/modules/ngx_http_echo_module.so ]] || need+=(libnginx-mod-http-echo)
command -v wrk >/dev/null || need+=(wrk)
if ((${#need[@]})); then
  sudo=()
  [[ $(id -u) == 0 ]] || sudo=(sudo)
  # Debian starts a freshly installed nginx on port 80; a policy-rc.d that
  # exits 101 forbids that (only add one if there is none already).
  own_policy=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    own_policy=1
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${sudo[@]}" chmod +x /usr/sbin/policy-rc.d
    trap '"${sudo[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
  # Belt and braces: never leave the system nginx running.
  if [[ -s /run/nginx.pid ]]; then "${sudo[@]}" nginx -s stop || true; fi
  if [[ $own_policy ]]; then "${sudo[@]}" rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
fi

# run.py stops nginx, the gateway and wrk in a `finally` (also on SIGTERM/Ctrl-C),
# and they get SIGTERM from the kernel even if it is SIGKILLed (PR_SET_PDEATHSIG).
# Every step in it is bounded; the timeout is only a backstop. --foreground keeps
# it in our process group, so Ctrl-C under make still reaches everything.
# One bench at a time on this machine: every run pins what it measures to core 0 and
# its load to core 1, so two at once would measure each other.
exec 9>/tmp/switchboard-bench.lock
if ! flock -n 9; then
  echo "bench: another benchmark is running on this machine; waiting for it to finish"
  flock 9
fi

script=${1:-run.py}
shift || true
run=(timeout --foreground --kill-after=15 "${BENCH_TIMEOUT:-900}" .venv/bin/python "bench/$script" "$@")
# Linux shares the CPU between sessions (autogroups) before it shares it between
# processes, so a process's own nice counts only against its own session. The bench
# runs in a session of its own whose nice is BENCH_NICE (default -10): what it measures
# takes most of its core from the neighbours' tests instead of a fifth of it (see
# docs/performance.md). BENCH_NICE=0 runs it like any other command. Ctrl-C does not
# reach a new session: stop such a run with `kill` on the pid it prints.
nice_=${BENCH_NICE:--10}
if [[ $nice_ != 0 && -w /proc/self/autogroup ]]; then
  exec setsid --wait bash -c 'if echo "$0" > /proc/self/autogroup 2>/dev/null; then
      echo "bench: pid $$, in a session of its own at nice $0"
    else echo "bench: could not raise the priority (needs root); measuring at nice 0"; fi
    exec "$@"' "$nice_" "${run[@]}"
fi
exec "${run[@]}"
