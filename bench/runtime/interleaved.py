#!/usr/bin/env python3
"""Times several commands interleaved (A, B, C, A, B, C, ...) so that load changes hit all alike.

    bench/runtime/interleaved.py [--runs N] [--warmup W] [--json FILE] -c 'CMD1' -c 'CMD2' ...

Each command is one string split on whitespace (no shell); the first is the baseline for the
ratios. Prints median, p25, p75 and median/baseline per command, plus the load average
before and after. A command that exits non-zero stops the benchmark (a broken contender must
not be timed). Processes are started with posix_spawn and reaped with waitpid, so the timer's
own overhead is a few hundred microseconds, the same for every command.
"""
import argparse
import json
import os
import statistics
import sys
import time


def run_once(argv):
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        start = time.perf_counter_ns()
        pid = os.posix_spawnp(argv[0], argv, os.environ,
                              file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0),
                                            (os.POSIX_SPAWN_DUP2, devnull, 1)])
        _, status = os.waitpid(pid, 0)
        elapsed = time.perf_counter_ns() - start
    finally:
        os.close(devnull)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"interleaved: {' '.join(argv)} exited with {code}")
    return elapsed / 1e6


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json")
    parser.add_argument("-c", "--command", action="append", required=True)
    args = parser.parse_args()
    commands = [c.split() for c in args.command]
    if any(not c for c in commands):
        sys.exit("interleaved: an empty command")
    load_before = os.getloadavg()
    for _ in range(args.warmup):
        for argv in commands:
            run_once(argv)
    times = [[] for _ in commands]
    for _ in range(args.runs):
        for i, argv in enumerate(commands):
            times[i].append(run_once(argv))
    load_after = os.getloadavg()
    base = statistics.median(times[0])
    print(f"load {load_before[0]:.2f} -> {load_after[0]:.2f}, {args.runs} runs each, interleaved")
    print(f"  {'median':>8} {'p25':>7} {'p75':>7} {'x base':>6}  command")
    for argv, t in zip(commands, times):
        q = statistics.quantiles(t, n=4)
        m = statistics.median(t)
        print(f"  {m:8.2f} {q[0]:7.2f} {q[2]:7.2f} {m / base:6.2f}  {' '.join(argv)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"load": [load_before, load_after],
                       "results": [{"command": " ".join(a), "times_ms": t}
                                   for a, t in zip(commands, times)]}, f)


if __name__ == "__main__":
    main()
