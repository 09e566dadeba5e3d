"""Turn run_all.sh's JSON lines into RESULTS.md table rows.

    python tests/hostile/summarize.py LANDLOCK.jsonl NO_LANDLOCK.jsonl
"""
import json
import sys


def load(path):
    rows = {}
    for line in open(path):
        d = json.loads(line)
        run = d["run"]
        if d["role"].startswith("control:"):
            rows[("control", d["role"].split(":", 1)[1])] = d
        else:
            rows[("attack", run["file"])] = d
    return rows


def cell(d):
    if d is None:
        return "–"
    run = d["run"]
    if run.get("hung"):
        return f"**hung** (killed at {d['outer_s']:.0f} s)"
    text = f"{run['score']:g}/{run['max']:g}"
    if run["status"] != "graded":
        text += " **grader error**"
    return f"{text} ({run['wall_s']:.0f} s)"


landlock, fallback = load(sys.argv[1]), load(sys.argv[2]) if len(sys.argv) > 2 else {}
print("| attack | effect | control (Landlock) | attack, Landlock | attack, no Landlock |")
print("| --- | --- | --- | --- | --- |")
for (role, name), d in landlock.items():
    if role != "attack":
        continue
    effect = open(f"tests/hostile/{name}").read().split("effect: ", 1)[1].split("\n", 1)[0]
    control = landlock.get(("control", name))
    print(f"| {name} | {effect} | {cell(control)} | {cell(d)} | {cell(fallback.get(('attack', name)))} |")
