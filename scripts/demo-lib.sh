# shellcheck shell=bash
# Narration and waiting for the demos (scripts/demo.sh, scripts/demo-zookeeper.sh).
# Sourced after lib.sh; `interactive` (1 or 0) is read when pause() runs.
bold=""; reset=""
if [ -t 1 ]; then bold="$(tput bold 2>/dev/null || true)"; reset="$(tput sgr0 2>/dev/null || true)"; fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$reset"; }
say() { printf '    %s\n' "$*"; }
pause() {
  [ "${interactive:-0}" = 1 ] || return 0
  read -r -p "    (press Enter to continue) " _ </dev/tty || true
}
# run CMD...: prints the command as a user would type it, then runs it.
run() { printf '%s$ %s%s\n' "$bold" "$*" "$reset"; "$@"; }
# run_quiet CMD...: the same, without the command's output.
run_quiet() { printf '%s$ %s%s\n' "$bold" "$*" "$reset"; "$@" >/dev/null; }
# wait_for SECONDS DESCRIPTION CMD...: polls CMD (every WAIT_INTERVAL seconds, 0.5 by
# default) until it succeeds; fails the demo at the deadline.
wait_for() {
  local timeout="$1" what="$2"; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || die "timed out after ${timeout}s waiting for: $what"
    sleep "${WAIT_INTERVAL:-0.5}"
  done
  say "ok: $what"
}
# now_ms: wall-clock milliseconds, for the figures a demo measures.
now_ms() { date +%s%3N; }
# seconds_since MS: "1.234", the seconds elapsed since now_ms returned MS.
seconds_since() { local d=$(($(now_ms) - $1)); printf '%d.%03d' $((d / 1000)) $((d % 1000)); }
