#!/bin/sh
# Run each libFuzzer target for SECONDS on its corpus in tests/fuzz/corpus/.
# New inputs go to build/fuzz/new/ so the tree's seed corpus stays as it is;
# a crash fails the run and its log tail is printed.
# usage: run.sh SECONDS target...
set -eu
seconds=$1
shift
for f in "$@"; do
	n=$(basename "$f" | sed 's/^fuzz_//')
	mkdir -p "tests/fuzz/corpus/$n" "build/fuzz/new/$n"
	printf '== fuzz %s (%ss): ' "$n" "$seconds"
	if ! "$f" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=1 "build/fuzz/new/$n" "tests/fuzz/corpus/$n" \
	    >"build/fuzz/$n.log" 2>&1; then
		echo FAILED
		tail -60 "build/fuzz/$n.log"
		exit 1
	fi
	grep -E '^stat::number_of_executed_units' "build/fuzz/$n.log" |
	    sed 's/.*: */runs=/' | tr '\n' ' '
	grep -E '^cov: |#[0-9]+.*cov: ' "build/fuzz/$n.log" | tail -1 |
	    sed 's/.*cov: \([0-9]*\).*/cov=\1/'
done
