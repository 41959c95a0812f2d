#!/bin/bash
# Regenerate every run of the README results table, one after the other (CPU; hours on 2 cores).
#   bash benchmarks/results_table.sh /path/to/mnist [SEEDS]      (SEEDS default "0 1 2")
# Each run writes runs/table/<config>-s<seed>/ (metrics.jsonl, best.pt, last.pt); the ensemble row
# averages the lenet5-modern runs. (The published table used 1-4 seeds per row, see its seeds column.) --num-threads 1 was used for the published figures (a shared
# 2-core machine); drop it on a machine of your own.
set -euo pipefail
D=${1:?usage: results_table.sh MNIST_DIR [SEEDS]}
SEEDS=${2:-"0 1 2"}
train() { lenet train --config "configs/$1.yaml" --seed "$2" --name "$1-s$2" --out-dir runs/table \
            --num-threads 1 --progress plain --no-plots --overwrite "${@:3}"; }
for s in $SEEDS; do
  train nndl-subset-seed000 "$s"
  train nndl-subset "$s"
  for c in d2l-lenet lenet5 lenet5-1998 lenet5-1998-b32 lenet5-1998-distort lenet5-1998-distort-b32 lenet5-1998-distort-lecun \
           lenet5-modern lenet5-modern-w8 lenet5-modern-w8-long lenet5-modern-long fast-lenet5; do
    train "$c" "$s" --data-dir "$D"
  done
done
lenet ensemble runs/table/lenet5-modern-s[0-9]* --data-dir "$D"
