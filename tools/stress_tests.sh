#!/usr/bin/env bash
# Stress the test suite: run it RUNS times in a random order, with CPU burners beside it.
#
#   tools/stress_tests.sh [options] [-- pytest arguments]
#
#   -r RUNS       how many runs of the suite (default 10)
#   -b BURNERS    how many CPU-bound processes run beside it (default 3)
#   -c COMMAND    the burner command, run by bash (default: a python3 busy loop that also
#                 exits by itself if this script dies without cleaning up)
#   -j WORKERS    pytest-xdist workers per run, 0 for a serial run (default 2)
#   -N LEVEL      the suite's nice level, so that the burners win the CPU (default 10)
#   -B BUCKET     pytest-random-order bucket (default module: the modules in a random order,
#                 and the tests within each; global interleaves all tests, so that every
#                 module-scoped fixture is set up again and again)
#   -s SEED       the first run's order seed; run i uses SEED+i-1 (default: random)
#   -t SECONDS    the whole stress run's time limit: no run starts after it (default 14400)
#   -T SECONDS    one run's time limit; a run that exceeds it counts as failed (default 3600:
#                 at nice 10 beside 3 burners and other busy processes a run took 28 min)
#   -o DIR        where each run's log goes (default: a new temporary directory)
#
# Arguments after "--" go to pytest, e.g. `tools/stress_tests.sh -r 20 -- test/test_webhooks.py`.
# Prints one line per run, then every failed test id with the runs (and seeds) it failed in.
# Exit status: 0 when every requested run ran and passed, 1 when a run failed, 2 when the
# time limit stopped it first, 130 on Ctrl+C. The burners are stopped on every exit.
# Needs pytest-random-order (and pytest-xdist when WORKERS > 0): installed if missing.
set -uo pipefail
cd "$(dirname "$0")/.."

runs=10
burners=3
burner_command=""
workers=2
nice_level=10
bucket=module
seed=$((RANDOM * 32768 + RANDOM))
total_limit=14400
run_limit=3600
log_dir=""
python=${PYTHON:-python3}

usage() {
    sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "$0"
    exit "${1:-2}"
}

while getopts "r:b:c:j:N:B:s:t:T:o:h" option; do
    case $option in
    r) runs=$OPTARG ;;
    b) burners=$OPTARG ;;
    c) burner_command=$OPTARG ;;
    j) workers=$OPTARG ;;
    N) nice_level=$OPTARG ;;
    B) bucket=$OPTARG ;;
    s) seed=$OPTARG ;;
    t) total_limit=$OPTARG ;;
    T) run_limit=$OPTARG ;;
    o) log_dir=$OPTARG ;;
    h) usage 0 ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ "${1:-}" = "--" ] && shift
pytest_args=("$@")
for number in "$runs" "$burners" "$workers" "$seed" "$total_limit" "$run_limit"; do
    [[ $number =~ ^[0-9]+$ ]] || { echo "not a whole number: $number" >&2; usage; }
done

# -- what the runs need ------------------------------------------------------------------
needed=(pytest-random-order)
[ "$workers" -gt 0 ] && needed+=(pytest-xdist)
missing=()
for package in "${needed[@]}"; do
    module=${package//pytest-random-order/random_order}
    module=${module//pytest-xdist/xdist}
    "$python" -c "import $module" 2>/dev/null || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing ${missing[*]} into $("$python" -c 'import sys; print(sys.prefix)')"
    "$python" -m pip install --quiet "${missing[@]}" 2>&1 | { grep -v "^WARNING: Location '.*' is ignored" || true; }
    "$python" -c "import random_order" || exit 2
fi

if [ -z "$log_dir" ]; then
    log_dir=$(mktemp -d "${TMPDIR:-/tmp}/kenar-stress.XXXXXX")
else
    mkdir -p "$log_dir"
fi
failures=$log_dir/failures.tsv # run, seed, test id: one line per failed test of a run
: >"$failures"

# -- burners and clean-up ------------------------------------------------------------------
burner_pids=()
run_pid=""
interrupted=0

stop_burners() {
    local pid
    for pid in "${burner_pids[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for pid in "${burner_pids[@]}"; do
        wait "$pid" 2>/dev/null
    done
    burner_pids=()
}

on_signal() {
    interrupted=1
    # `timeout` runs pytest in a process group of its own, out of reach of the terminal's
    # Ctrl+C, and a background job ignores SIGINT anyway: send TERM, which timeout passes on
    # to pytest and its workers.
    [ -n "$run_pid" ] && kill -TERM "$run_pid" 2>/dev/null
}

trap stop_burners EXIT
trap on_signal INT TERM HUP

start_burners() {
    local i
    for ((i = 0; i < burners; i++)); do
        if [ -n "$burner_command" ]; then
            bash -c "$burner_command" &
        else
            # Busy until its parent (this script) is gone, even if it was SIGKILLed.
            "$python" -c 'import os
parent = os.getppid()
while os.getppid() == parent:
    pass' &
        fi
        burner_pids+=($!)
    done
}

# -- the runs --------------------------------------------------------------------------------
xdist_args=()
[ "$workers" -gt 0 ] && xdist_args=(-n "$workers")
order_args=(--random-order-bucket="$bucket")

echo "stress: $runs runs of pytest ${xdist_args[*]} ${pytest_args[*]}" \
    "(order bucket $bucket, nice $nice_level), $burners burners, limits ${total_limit}s in all and ${run_limit}s a run"
echo "logs: $log_dir"
start_burners

started=$SECONDS
completed=0
failed_runs=0
for ((run = 1; run <= runs; run++)); do
    remaining=$((total_limit - (SECONDS - started)))
    if [ "$remaining" -le 0 ] || [ "$interrupted" -eq 1 ]; then
        break
    fi
    limit=$((remaining < run_limit ? remaining : run_limit))
    run_seed=$((seed + run - 1))
    log=$log_dir/run-$run.log
    run_started=$SECONDS
    timeout --kill-after=30 "$limit" nice -n "$nice_level" "$python" -m pytest -q -rfE -p no:cacheprovider \
        "${order_args[@]}" --random-order-seed="$run_seed" "${xdist_args[@]}" "${pytest_args[@]}" \
        >"$log" 2>&1 </dev/null &
    run_pid=$!
    # A trap interrupts `wait`: wait again for the run to finish after the signal passed on.
    while :; do
        wait "$run_pid"
        status=$?
        kill -0 "$run_pid" 2>/dev/null || break
    done
    run_pid=""
    elapsed=$((SECONDS - run_started))
    if [ "$interrupted" -eq 1 ]; then
        echo "run $run (seed $run_seed): interrupted after ${elapsed}s"
        break
    fi
    completed=$((completed + 1))
    outcome=$(grep -E "^=* ?[0-9]+ (passed|failed|error|errors|skipped|deselected).* in [0-9.]+s" "$log" | tail -n 1)
    outcome=${outcome//=/}
    outcome=${outcome# }
    # Failed test ids from the short summary (captured logs above it have ERROR lines too).
    awk -v run="$run" -v seed="$run_seed" '
        / short test summary info /{ summary = 1; next }
        summary && /^(FAILED|ERROR) / {
            sub(/^(FAILED|ERROR) /, "")
            # "id - message"; a parametrized id may hold " - " itself, inside its brackets.
            bracket = index($0, "["); dash = index($0, " - ")
            if (bracket > 0 && (dash == 0 || bracket < dash)) end = index($0, "] - ")
            else end = dash > 0 ? dash - 1 : 0
            print run "\t" seed "\t" (end > 0 ? substr($0, 1, end) : $0)
        }
    ' "$log" >>"$failures"
    if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
        outcome="timed out after ${elapsed}s (see $log)"
        printf '%s\t%s\t%s\n' "$run" "$run_seed" "(run timed out)" >>"$failures"
    elif [ "$status" -ne 0 ] && ! grep -q -P "^$run\t" "$failures"; then
        outcome="pytest exited $status with no failed test (see $log): ${outcome:-no summary}"
        printf '%s\t%s\t%s\n' "$run" "$run_seed" "(pytest exit $status)" >>"$failures"
    fi
    [ "$status" -ne 0 ] && failed_runs=$((failed_runs + 1))
    echo "run $run (seed $run_seed, ${elapsed}s): ${outcome:-no summary line (see $log)}"
done
stop_burners

# -- summary ------------------------------------------------------------------------------
echo
echo "stress: $completed of $runs runs completed in $((SECONDS - started))s, $failed_runs failed"
if [ -s "$failures" ]; then
    echo "failures (test id: runs it failed in, with their seeds):"
    sort -t $'\t' -k3,3 -k1,1n "$failures" | awk -F '\t' '
        $3 != id { if (id != "") print "  " id ": " count "x, " runs; id = $3; count = 0; runs = "" }
        { count++; runs = runs (runs == "" ? "" : " ") "run " $1 " (seed " $2 ")" }
        END { if (id != "") print "  " id ": " count "x, " runs }'
    echo "reproduce one: $python -m pytest ${order_args[*]} --random-order-seed=SEED ${xdist_args[*]} ${pytest_args[*]}"
fi
if [ "$interrupted" -eq 1 ]; then
    exit 130
elif [ "$failed_runs" -gt 0 ]; then
    exit 1
elif [ "$completed" -lt "$runs" ]; then
    echo "stress: the time limit stopped it before all $runs runs"
    exit 2
fi
