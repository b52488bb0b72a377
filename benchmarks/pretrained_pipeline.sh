#!/usr/bin/env bash
# Trains the pretrained 32^2 teacher and PIDDM student of one PDE on this 2-core CPU:
# solver data, teacher, PIDDM student. The export into the package (fp16 weights + model
# card) is benchmarks/export_pretrained.py. Every step resumes or skips what is already there.
# Usage: bash benchmarks/pretrained_pipeline.sh PDE [TEACHER_STEPS] [STUDENT_STEPS]
# The shipped models were made with: OMP_NUM_THREADS=1 bash benchmarks/pretrained_pipeline.sh PDE 2500 500
set -euo pipefail
pde=$1
teacher_steps=${2:-2500}
student_steps=${3:-500}
results=benchmarks/results
mkdir -p data runs "$results"
run() { echo "+ $*" >&2; "$@"; }

[ -f "data/$pde-32-train.h5" ] || run piddm data generate "$pde" -s 32 --n 4200 --seed 0 --workers 2 --quiet --out "data/$pde-32-train.h5"
[ -f "data/$pde-32-test.h5" ] || run piddm data generate "$pde" -s 32 --n 1024 --seed 1 --workers 2 --quiet --out "data/$pde-32-test.h5"

run piddm train --config "configs/$pde-32-cpu.yaml" --data "data/$pde-32-train.h5" \
    --run-dir "runs/$pde-32-teacher" --steps "$teacher_steps" --resume --no-progress --device cpu --json \
    > "$results/$pde-32-teacher-train.json"

run piddm distill --teacher "runs/$pde-32-teacher" --config "configs/$pde-32-piddm-cpu.yaml" \
    --steps "$student_steps" --set "distill.pairs_cache=runs/$pde-32-pairs" --resume --no-progress \
    --device cpu --json --run-dir "runs/$pde-32-piddm" > "$results/$pde-32-piddm-train.json"
