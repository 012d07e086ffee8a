"""Writes cases.json: inputs and what Python's tabulate 0.9 prints for them.

Run with the official clients' venv, which has the tabulate the jobs client uses:
    target/official-clients-venv/bin/python crates/cli/src/tabulate/make_cases.py
"""
import json
import pathlib
import textwrap

from tabulate import tabulate

STATUS = ("Last run at 2025-06-19T12:00:00Z. Pod in 'Running' phase. State 'running'. "
          "Started at '2025-06-19T12:00:01Z'.")

CASES = [
    # list (normal), J07
    ("pretty", ["Job name:", "Job type:", "Status:"], [
        ["myjob", "one-off", "Running for 1s"],
        ["web", "continuous", "Running"],
        ["cron1", "schedule: @daily", "Waiting for scheduled time"],
    ]),
    # list -o long with numbers and None, X09-like
    ("pretty", ["Job name:", "Port:", "Replicas:", "Retry:"], [
        ["a", 8000, None, "no"],
        ["bb", "none", 2, "yes: 2 time(s)"],
        ["ccc", "none", None, "yes: None time(s)"],
    ]),
    # numeric-looking strings stay text in pretty; odd centring
    ("pretty", ["x", "Short name", "image"], [
        ["1.0", "ab", "docker-registry.tools.wmflabs.org/toolforge-bookworm-sssd:latest"],
        ["10", "abc", "z"],
    ]),
    # pretty with a multi-line cell
    ("pretty", ["a", "b"], [["one\ntwo three", "x"], ["", "y"]]),
    # show, grid without headers, with the wrapped hints
    ("grid", [], [
        ["Job name:", "web"],
        ["Port:", 8000],
        ["Output log:", None],
        ["Replicas:", 2],
        ["Hints:", textwrap.fill(STATUS)],
    ]),
    ("grid", [], [
        ["Job name:", "hc"],
        ["Hints:", textwrap.fill("x" * 150)],
    ]),
    # grid with numbers only in the second column
    ("grid", [], [["a", 1], ["b", 22], ["c", 1.5]]),
    # quota, simple, J16
    ("simple", ["Running jobs", "Used", "Limit"], [
        ["Total running jobs at once (Kubernetes pods)", "1", "10"],
        ["Running one-off and cron jobs", "0", "15"],
        ["CPU", "0.5", "4.0"],
        ["Memory", "0.5Gi", "8.0Gi"],
    ]),
    ("simple", ["Per-job limits", "Used", "Limit"], [
        ["CPU", None, "1.0"],
        ["Memory", None, "4.0Gi"],
    ]),
    ("simple", ["Job definitions", "Used", "Limit"], [
        ["Cron jobs", "5", "50"],
        ["Continuous jobs (including web services)", "1", "3"],
    ]),
    # X35: a lone float column
    ("simple", ["Per-job limits", "Limit"], [["CPU", "1.0"]]),
    # decimal alignment of mixed ints and floats, exponents, and a None
    ("simple", ["name", "n"], [["a", "1"], ["b", "0.25"], ["c", None], ["d", "12.5"], ["e", "1e-7"]]),
    ("simple", ["n", "t"], [[1, "True"], [2, "False"], [3, None]]),
    ("simple", ["k", "v"], [["  padded  ", "1_000"], ["x", "-3"]]),
]


def main():
    out = []
    for fmt, headers, rows in CASES:
        out.append({
            "format": fmt,
            "headers": headers,
            "rows": rows,
            "expected": tabulate(rows, headers=headers, tablefmt=fmt),
        })
    path = pathlib.Path(__file__).with_name("cases.json")
    path.write_text(json.dumps(out, indent=1) + "\n")


main()
