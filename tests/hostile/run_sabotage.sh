#!/usr/bin/env bash
# Category 7: grade a class of two with `litlabs grade-all` — an attacker (a_attacker) and a victim (b_victim,
# the reference with the marker HOSTILE-TEST-VICTIM) — and print the victim's row, the batch's wall time and
# what the attacker left behind. Run once with the attack and once with its control as the attacker.
#   bash tests/hostile/run_sabotage.sh ATTACK.py [PYTHON] [JOBS]     (LITLABS_NO_LANDLOCK=1 for the fallback)
set -u
cd "$(dirname "$0")/../.."
ATTACK=$1; PY=${2:-/opt/litlabs-venv/bin/python}; JOBS=${3:-2}
lab=$(grep -m1 -o 'lab: [a-z]*' "$ATTACK" | cut -d' ' -f2)
[ -d /tmp/litlabs-head ] || { mkdir -p /tmp/litlabs-head && git archive 83fbfb8 | tar -x -C /tmp/litlabs-head && chmod -R a+rX /tmp/litlabs-head; }
batch=$(mktemp -d /tmp/hostile-batch-XXXX); chmod 755 "$batch"
mkdir -p "$batch/submissions/a_attacker" "$batch/submissions/b_victim"
cp "$ATTACK" "$batch/submissions/a_attacker/$lab.py"
{ cat "tests/hostile/controls/${lab}_reference.py"; echo "# HOSTILE-TEST-VICTIM"; } > "$batch/submissions/b_victim/$lab.py"
rm -f /tmp/hostile-stolen-*
start=$(date +%s.%N)
(cd /tmp/litlabs-head && timeout -k 5 900 "$PY" -m grader.cli grade-all "$batch/submissions" --out "$batch/grades.csv" \
   --jobs "$JOBS" --lab "$lab" > "$batch/stdout.txt" 2>&1); rc=$?
wall=$(echo "$(date +%s.%N) - $start" | bc)
echo "attack=$(basename "$ATTACK") python=$PY jobs=$JOBS no_landlock=${LITLABS_NO_LANDLOCK:-} rc=$rc batch_wall_s=$wall"
cut -d, -f1-4 "$batch/grades.csv" 2>/dev/null
"$PY" - "$batch" <<'PY'
import glob, json, sys
for path in sorted(glob.glob(sys.argv[1] + "/grades-results/*.json")):
    d = json.load(open(path)); info = d["extra_data"]["litlabs"]
    failed = [t["name"][:50] + ": " + t["output"].splitlines()[0][:120] for t in d["tests"] if t["status"] != "passed"]
    print(path.rsplit("/", 1)[1], d["score"], "/", info["max_score"], info["status"], "wall", info.get("wall_time"),
          "| failed:", failed[:4])
PY
ls /tmp/hostile-stolen-* 2>/dev/null && echo "(a classmate's file was copied out)"
echo "left over processes of nobody: $(pgrep -u nobody | wc -l)"
