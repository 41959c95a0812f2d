#!/bin/bash
# Rerun the MNIST results table (docs/results.md) and rewrite its results files, results/mnist.json
# and results/ensembles.json. Run from the repository root; CPU: hours on 2 cores.
#   bash benchmarks/results_table.sh MNIST_DIR [SEEDS]                  (SEEDS default "0 1 2")
#   CONFIGS="lenet5 fast-lenet5" bash benchmarks/results_table.sh MNIST_DIR "0 1"    (some rows only)
# Each run writes runs/table/CONFIG-sSEED/ (config.json, metrics.jsonl, best.pt, last.pt); the
# ensemble row averages the lenet5-modern runs (test and dev split). benchmarks/collect_runs.py then
# reads the runs' metrics.jsonl and the ensembles' JSON into the results files: the rows rerun are
# replaced, the others kept. The published rows used 1-4 seeds each (their "runs" column) and
# --num-threads 1 (a shared 2-core machine); set THREADS="" to leave torch its own thread count.
# LENET="python -m lenetlab.cli" and PYTHON=... choose the commands (default: lenet, python).
set -euo pipefail
D=${1:?usage: results_table.sh MNIST_DIR [SEEDS]}
SEEDS=${2:-"0 1 2"}
SUBSET_CONFIGS="nndl-subset-quirk nndl-subset"   # the embedded 1,000/200/200 subset: no --data-dir
MNIST_CONFIGS="lenet-d2l lenet5 lenet5-1998 lenet5-1998-b32 lenet5-1998-distort lenet5-1998-distort-b32
  lenet5-1998-distort-lecun lenet5-modern lenet5-modern-w8 lenet5-modern-w8-long lenet5-modern-long fast-lenet5"
CONFIGS=${CONFIGS:-"$SUBSET_CONFIGS $MNIST_CONFIGS"}
THREADS=${THREADS-1}
LENET=${LENET:-lenet}
PYTHON=${PYTHON:-python}
# Each CONFIG is the name of a config shipped in the package (src/lenetlab/configs/CONFIG.yaml).
train() { $LENET train --config "$1" --seed "$2" --name "$1-s$2" --out-dir runs/table \
            ${THREADS:+--num-threads "$THREADS"} --progress plain --no-plots --overwrite "${@:3}"; }
for s in $SEEDS; do
  for c in $CONFIGS; do
    case " $SUBSET_CONFIGS " in
      *" $c "*) train "$c" "$s" ;;
      *) train "$c" "$s" --data-dir "$D" ;;
    esac
  done
done
if compgen -G "runs/table/lenet5-modern-s[0-9]*" >/dev/null; then
  $LENET ensemble runs/table/lenet5-modern-s[0-9]* --data-dir "$D" --json > runs/table/ensemble-lenet5-modern.test.json
  $LENET ensemble runs/table/lenet5-modern-s[0-9]* --data-dir "$D" --split dev --json \
    > runs/table/ensemble-lenet5-modern.dev.json
fi
"$PYTHON" benchmarks/collect_runs.py runs/table --results results/mnist.json --ensembles results/ensembles.json
