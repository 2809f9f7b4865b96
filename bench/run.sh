#!/usr/bin/env bash
# Entry point for `make bench`: installs the load tools if missing, then runs
# bench/run.py, which starts (and always stops) nginx, the gateway and wrk.
# Env: BENCH_SERVER=uvicorn|granian, BENCH_WARMUP / BENCH_DURATION (s per cell).
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
exec timeout --foreground --kill-after=15 "${BENCH_TIMEOUT:-900}" .venv/bin/python bench/run.py
