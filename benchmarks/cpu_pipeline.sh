#!/usr/bin/env bash
# The 32^2 CPU pipeline behind benchmarks/RESULTS.md, for one PDE (darcy or poisson):
# solver data, teacher, teacher evaluation, PIDDM / ablation / PID students, PIDM, bench.
# Usage: bash benchmarks/cpu_pipeline.sh darcy [TEACHER_STEPS] [STUDENT_STEPS] [PID_STEPS] [PIDM_STEPS] [CONTINUE_STEPS]
# (CONTINUE_STEPS > 0: a two-stage teacher, see benchmarks/pretrained_pipeline.sh)
# Every step resumes or skips what is already there, so the script can be re-run after a kill.
# RESULTS.md was made with: bash benchmarks/cpu_pipeline.sh PDE 2500 1500 200 150 4000
set -euo pipefail
pde=$1
teacher_steps=${2:-3000}
student_steps=${3:-500}
pid_steps=${4:-$student_steps}
pidm_steps=${5:-300}
continue_steps=${6:-0}
results=benchmarks/results
mkdir -p data runs "$results"
run() { echo "+ $*" >&2; "$@"; }

# 1-2. Solver data (train seed 0, held-out seed 1), teacher and PIDDM student: the pipeline
# of the pretrained models.
run bash benchmarks/pretrained_pipeline.sh "$pde" "$teacher_steps" "$student_steps" "$continue_steps"

# 3. Teacher samples (Heun, 18 steps, 512 samples) against held-out solver data.
if [ ! -s "$results/$pde-32-teacher-eval.json" ]; then
run piddm sample --model "runs/$pde-32-teacher" --n 512 --seed 7 --quiet --overwrite --device cpu \
    --out "runs/$pde-32-teacher/samples/heun18-512.h5" --json > "$results/$pde-32-teacher-sample.json"
run piddm eval --samples "runs/$pde-32-teacher/samples/heun18-512.h5" \
    --reference "data/$pde-32-test.h5" --json > "$results/$pde-32-teacher-eval.json"
fi

# 4. Students: the lambda_train = 0 ablation (the PIDDM student's cached pairs), PID (Tee et al.,
# data-free, no residual term).
common=(--teacher "runs/$pde-32-teacher" --config "configs/$pde-32-piddm-cpu.yaml" --steps "$student_steps"
        --set "distill.pairs_cache=runs/$pde-32-pairs" --resume --no-progress --device cpu --json)
run piddm distill "${common[@]}" --lambda-train 0 --run-dir "runs/$pde-32-piddm-lambda0" \
    > "$results/$pde-32-piddm-lambda0-train.json"
run piddm distill "${common[@]}" --method pid --lambda-train 0 --steps "$pid_steps" --run-dir "runs/$pde-32-pid" > "$results/$pde-32-pid-train.json"

# 5. PIDM baseline: the teacher fine-tuned with the residual of its denoised output.
run piddm train --config "configs/$pde-32-pidm-cpu.yaml" --data "data/$pde-32-train.h5" \
    --run-dir "runs/$pde-32-pidm" --steps "$pidm_steps" --resume --no-progress --device cpu --json > "$results/$pde-32-pidm-train.json"

# 6. Every method on the same held-out instances and seeds.
run piddm bench --pde "$pde" --config "configs/bench-$pde-32-cpu.yaml" --device cpu --threads 1 --quiet --json > "$results/$pde-32.json"
