#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang in build/fuzz (-DRO_FUZZ=ON: only
# those targets and the few product sources they parse with) and runs each for a while,
# one after the other. Not part of scripts/test.sh or CI; see docs/testing.md.
#   scripts/fuzz.sh                          every target, 600 s each
#   scripts/fuzz.sh --seconds 60 duration    one target, one minute
# Per target it prints runs, execs/s, coverage (cov = edges, ft = features) and the
# result; a crash, sanitizer report, leak, timeout (> 10 s for one input), out-of-memory
# (> 2048 MB RSS) or a violated property is a finding: the input is written to
# build/fuzz/findings/<target>/ and the script exits non-zero. New corpus entries go to
# build/fuzz/corpus/<target>/ (fuzz/corpus/<target>/ holds the committed seeds).
# RO_FUZZ_JOBS: build parallelism (default: the number of cores).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

all_targets=(kubeconfig envelope json_patch label_selector duration live_sync_config)
seconds=600
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="${2:?--seconds needs a value}"; shift 2 ;;
    --seconds=*) seconds="${1#--seconds=}"; shift ;;
    -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}"; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ "${#targets[@]}" -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [[ " ${all_targets[*]} " == *" $t "* ]] || die "unknown target $t (known: ${all_targets[*]})"
done

# clang 14 and its libFuzzer runtime (libclang_rt.fuzzer, from libclang-rt-14-dev, which
# clang pulls in; libfuzzer-14-dev adds the standalone libFuzzer.a).
missing=()
for p in clang libfuzzer-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

build="$root/build/fuzz"
cmake -S "$root" -B "$build" -G Ninja -DRO_FUZZ=ON -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "${RO_FUZZ_JOBS:-$(nproc)}" --target "${targets[@]/%/_fuzz}"

status=0
summary=()
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"
  findings="$build/findings/$t"
  logfile="$build/logs/$t.log"
  mkdir -p "$corpus" "$findings" "$build/logs"
  dict=()
  [ -f "$root/fuzz/dict/$t.dict" ] && dict=("-dict=$root/fuzz/dict/$t.dict")
  log "fuzzing $t for ${seconds} s (log: $logfile)"
  rc=0
  "$build/bin/${t}_fuzz" "${dict[@]}" -max_total_time="$seconds" -rss_limit_mb=2048 \
    -timeout=10 -print_final_stats=1 -artifact_prefix="$findings/" \
    "$corpus" "$root/fuzz/corpus/$t" >"$logfile" 2>&1 || rc=$?
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$logfile" | tail -1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logfile" | tail -1)"
  cov="$(grep -E '^#[0-9]+.*cov: ' "$logfile" | tail -1 | sed -E 's/.*(cov: [0-9]+ ft: [0-9]+).*/\1/')"
  if [ "$rc" = 0 ]; then
    result="ok"
  else
    status=1
    artifact="$(ls -t "$findings" 2>/dev/null | head -1)"
    result="FINDING (exit $rc${artifact:+, input $findings/$artifact}; see $logfile)"
  fi
  summary+=("$(printf '%-17s runs: %-10s execs/s: %-7s %-22s %s' "$t" "${runs:-?}" \
    "${rate:-?}" "${cov:-cov: ?}" "$result")")
done
printf '%s\n' "${summary[@]}"
exit "$status"
