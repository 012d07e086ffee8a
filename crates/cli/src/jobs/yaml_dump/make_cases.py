"""Writes cases.json: job lists and what PyYAML's `yaml.dump` (as `toolforge jobs dump`
calls it) writes for them.

Run with the official clients' venv, which has the PyYAML the jobs client uses:
    target/official-clients-venv/bin/python crates/cli/src/jobs/yaml_dump/make_cases.py
"""
import json
import pathlib

import yaml

STRINGS = [
    "1", "@daily", "*/5 * * * *", "a: b", "a #b", "x#y", " lead", "trail ", "é", "yes",
    "null", "", "two\nlines", "0.25", "1e3", "it's", "~", "-x", "- x", "[a]", "{a}", "a,b",
    "%x", "!x", "&x", "*x", "|x", ">x", '"q"', "`x", "500m", "0o17", "0x1f", "1_000",
    "1:30", "2025-01-01", "2025-1-2 3:04:05", "2025-01-01T00:00:00Z", "True", "on", "n",
    "?x", "? x", ":x", "x:", "x: y", "---", "...x", "3.", ".5", "+1", "-0", "0777", "08",
    "1.5e+3", "1.5e3", ".inf", "-.inf", ".nan", "<<", "=", "tab\there", "a\\b",
    "python3 -m http.server 8000 --bind 0.0.0.0 --directory /data/project/mytool/public_html --cgi extra words here",
    "python3 -m http.server 8000 --bind 0.0.0.0 --directory /data/project/mytool/public_html  --cgi two  spaces  between  words",
    "'quoted' python3 -m http.server 8000 --bind 0.0.0.0 --directory /data/project/mytool/public_html --cgi extra words here",
    "é python3 -m http.server 8000 --bind 0.0.0.0 --directory /data/project/mytool/public_html --cgi extra words here",
    "a" * 100,
]

CASES = [
    [{"command": "./script.sh", "cpu": "500m", "image": "python3.11", "mem": "512Mi", "name": "myjob"},
     {"command": "python3 -m http.server 8000", "continuous": True, "cpu": "1", "emails": "onfailure",
      "health-check-http": "/healthz", "image": "tool-mytool/tool-mytool:latest", "mem": "1Gi",
      "name": "web", "port": 8000, "replicas": 2},
     {"command": "date", "cpu": "500m", "filelog-stderr": "logs/cron1.err", "filelog-stdout": "logs/cron1.out",
      "image": "bookworm", "mem": "512Mi", "name": "cron1", "retry": 2, "schedule": "@daily", "timeout": 300}],
    [{"command": s, "name": "x"} for s in STRINGS],
    [{"cpu": 0.5, "mem": None, "name": "n", "no-filelog": "true", "filelog": "yes", "port": 1e16, "retry": -1}],
]


def main():
    out = [{"jobs": jobs, "expected": yaml.dump(jobs)} for jobs in CASES]
    path = pathlib.Path(__file__).with_name("cases.json")
    path.write_text(json.dumps(out, indent=1) + "\n")


main()
