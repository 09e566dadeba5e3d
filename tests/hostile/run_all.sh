#!/usr/bin/env bash
# Grade every attack and its control with the checks the attack targets, and print one JSON line per run.
#   bash tests/hostile/run_all.sh [PYTHON] [ATTACK_GLOB]       (LITLABS_NO_LANDLOCK=1 for the fallback)
# PYTHON: the grader's interpreter, e.g. /opt/litlabs-venv/bin/python (workers run as nobody when we are root)
# or python (under /root: workers run as root). Each grading is killed after 240 s (a hang).
# The grader used is a snapshot of the commit the attacks were measured against, in /tmp/litlabs-head.
set -u
cd "$(dirname "$0")/../.."
PY=${1:-/opt/litlabs-venv/bin/python}
GLOB=${2:-*_[1-6]_*.py}
COMMIT=${LITLABS_COMMIT:-83fbfb8}
if [ ! -d /tmp/litlabs-head ]; then
  mkdir -p /tmp/litlabs-head && git archive "$COMMIT" | tar -x -C /tmp/litlabs-head && chmod -R a+rX /tmp/litlabs-head
fi
grade() {  # FILE LAB KEYWORD ROLE
  local start=$(date +%s.%N) out rc
  out=$(timeout -k 5 240 "$PY" tests/hostile/grade_one.py "$1" --lab "$2" -k "$3" 2>/dev/null); rc=$?
  [ $rc -eq 124 ] && out="{\"file\": \"$(basename "$1")\", \"hung\": true}"
  echo "{\"role\": \"$4\", \"rc\": $rc, \"outer_s\": $(echo "$(date +%s.%N) - $start" | bc), \"no_landlock\": \"${LITLABS_NO_LANDLOCK:-}\", \"python\": \"$PY\", \"run\": $out}"
}
for attack in tests/hostile/$GLOB; do
  lab=$(grep -m1 -o 'lab: [a-z]*' "$attack" | cut -d' ' -f2)
  k=$(sed -n 's/^targets: //p' "$attack" | head -1)
  control=$(sed -n 's/^control: //p' "$attack" | head -1)
  [ -n "${SKIP_CONTROLS:-}" ] || grade "tests/hostile/controls/$control" "$lab" "$k" "control:$(basename "$attack")"
  grade "$attack" "$lab" "$k" "attack"
done
