#!/usr/bin/env bash
# Trains the pretrained 32^2 teacher and PIDDM student of one PDE on this 2-core CPU:
# solver data, teacher, PIDDM student. The export into the package (fp16 weights + model
# card) is benchmarks/export_pretrained.py. Every step resumes or skips what is already there.
# Usage: bash benchmarks/pretrained_pipeline.sh PDE [TEACHER_STEPS] [STUDENT_STEPS] [CONTINUE_STEPS] [FINETUNE_STEPS]
# With CONTINUE_STEPS > 0 the teacher trains in two stages: TEACHER_STEPS at the config's
# constant rate (runs/PDE-32-teacher-stage1), then CONTINUE_STEPS more from its EMA weights
# with a cosine decay from 1e-3 and a ramped-up EMA (runs/PDE-32-teacher).
# With FINETUNE_STEPS > 0 the student trains in two stages too: STUDENT_STEPS of the config
# (the paper's plain residual; runs/PDE-32-piddm-stage1), then FINETUNE_STEPS from its EMA
# weights with the preconditioned residual (distill.residual_norm: preconditioned, lambda 10,
# gradient to every channel, constant lr 5e-5; runs/PDE-32-piddm): docs/concepts.md.
# Shipped helmholtz / burgers models: OMP_NUM_THREADS=1 bash benchmarks/pretrained_pipeline.sh PDE 2500 500 4000 500
# Shipped darcy / poisson models:     see benchmarks/RESULTS.md ("physics")
set -euo pipefail
pde=$1
teacher_steps=${2:-2500}
student_steps=${3:-500}
continue_steps=${4:-0}
finetune_steps=${5:-0}
results=benchmarks/results
mkdir -p data runs "$results"
run() { echo "+ $*" >&2; "$@"; }

[ -f "data/$pde-32-train.h5" ] || run piddm data generate "$pde" -s 32 --n 4200 --seed 0 --workers 2 --quiet --out "data/$pde-32-train.h5"
[ -f "data/$pde-32-test.h5" ] || run piddm data generate "$pde" -s 32 --n 1024 --seed 1 --workers 2 --quiet --out "data/$pde-32-test.h5"

teacher_common=(--config "configs/$pde-32-cpu.yaml" --data "data/$pde-32-train.h5" --resume --no-progress
                --device cpu --json)
if [ "$continue_steps" -gt 0 ]; then
run piddm train "${teacher_common[@]}" --run-dir "runs/$pde-32-teacher-stage1" --steps "$teacher_steps" \
    > "$results/$pde-32-teacher-stage1-train.json"
run piddm train "${teacher_common[@]}" --run-dir "runs/$pde-32-teacher" --steps "$continue_steps" \
    --set "train.init_from=runs/$pde-32-teacher-stage1" --set optim.lr=1e-3 --set optim.warmup_steps=100 \
    --set optim.lr_schedule=cosine --set optim.ema_rampup=0.05 --set train.desc=teacher-continued \
    > "$results/$pde-32-teacher-train.json"
else
run piddm train "${teacher_common[@]}" --run-dir "runs/$pde-32-teacher" --steps "$teacher_steps" \
    > "$results/$pde-32-teacher-train.json"
fi
python benchmarks/train_stats.py "runs/$pde-32-teacher" "$results/$pde-32-teacher-stats.json"

student_common=(--teacher "runs/$pde-32-teacher" --config "configs/$pde-32-piddm-cpu.yaml"
                --set "distill.pairs_cache=runs/$pde-32-pairs" --resume --no-progress --device cpu --json)
if [ "$finetune_steps" -gt 0 ]; then
run piddm distill "${student_common[@]}" --steps "$student_steps" --run-dir "runs/$pde-32-piddm-stage1" \
    > "$results/$pde-32-piddm-stage1-train.json"
run piddm distill "${student_common[@]}" --steps "$finetune_steps" --run-dir "runs/$pde-32-piddm" \
    --set "train.init_from=runs/$pde-32-piddm-stage1" --set distill.residual_norm=preconditioned \
    --set distill.lambda_train=10 --set distill.residual_grad=all --set optim.lr=5e-5 \
    --set optim.lr_schedule=constant > "$results/$pde-32-piddm-train.json"
else
run piddm distill "${student_common[@]}" --steps "$student_steps" --run-dir "runs/$pde-32-piddm" \
    > "$results/$pde-32-piddm-train.json"
fi
