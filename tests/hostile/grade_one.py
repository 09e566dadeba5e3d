"""Grade one hostile (or control) submission file with some checks only, and print one JSON line.

    python tests/hostile/grade_one.py FILE.py [--lab mlp] [-k EXPR] [--root DIR] [--results OUT.json]

The lab and the -k expression default to the file's docstring header (``lab:`` / ``targets:``).
--root: the grader checkout to use (default: a snapshot of the commit the attacks were measured on,
made by run_all.sh in /tmp/litlabs-head, so that concurrent edits of grader/ do not change the result).
Set LITLABS_NO_LANDLOCK=1 in the environment for the fallback without Landlock.
"""
import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time


def header(path):
    text = open(path).read()
    doc = re.search(r'"""(.*?)"""', text, re.S).group(1)
    return dict(re.findall(r"^(lab|category|targets|control|effect): *(.+)$", doc, re.M))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("file")
    p.add_argument("--lab")
    p.add_argument("-k", dest="keyword")
    p.add_argument("--root", default=os.environ.get("LITLABS_ROOT", "/tmp/litlabs-head"))
    p.add_argument("--results")
    args = p.parse_args()
    meta = header(args.file)
    lab = args.lab or meta["lab"]
    keyword = args.keyword or meta.get("targets")
    sys.path.insert(0, args.root)
    from grader.judge.grade import grade

    folder = tempfile.mkdtemp(prefix="hostile-sub-")
    os.chmod(folder, 0o755)
    shutil.copyfile(args.file, os.path.join(folder, f"{lab}.py"))
    started = time.monotonic()
    results = grade(folder, lab, keyword=keyword)
    wall = time.monotonic() - started
    document = results.gradescope()
    if args.results:
        with open(args.results, "w") as f:
            json.dump(document, f, indent=1)
    shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps({
        "file": os.path.basename(args.file), "lab": lab, "k": keyword, "score": document["score"],
        "max": sum(t["max_score"] for t in document["tests"]),
        "status": document["extra_data"]["litlabs"]["status"],
        "problem": document["extra_data"]["litlabs"]["problem"][:300],
        "confinement": document["extra_data"]["litlabs"]["confinement"],
        "user": next((line for line in document["output"].splitlines() if "ran " in line and "user" in line), "")[:120],
        "tests": {t["name"][:60]: [t["score"], t["output"][:200]] for t in document["tests"]},
        "wall_s": round(wall, 1),
    }))


if __name__ == "__main__":
    main()
