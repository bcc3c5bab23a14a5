#!/bin/bash
# plexo tune, CMA-ES, on Slurm: one array job per generation, each task evaluating its slice of the generation's
# candidates, the generation merged into results/tune before the next starts (CMA-ES replays its state from the
# merged evaluations; no state file). Run on the login node: it submits and waits (sbatch --wait).
#
#     bash docs/jobs/tune-cmaes.sh tuning.toml 8 4    # 8 shards, 4 generations (budget.evaluations / population)
set -euo pipefail
file=$1
shards=$2
generations=$3
mkdir -p results logs
for g in $(seq 1 "$generations"); do
  from=()
  if [ "$g" -gt 1 ]; then from=(--from results/tune); fi
  sbatch --wait --job-name="plexo-tune-g$g" --array="1-$shards" --cpus-per-task=1 --mem=1G \
    --output="logs/g${g}_%a.out" \
    --wrap "plexo tune $file --generation $g --shard \${SLURM_ARRAY_TASK_ID}/$shards ${from[*]} --out results/g$g-s\${SLURM_ARRAY_TASK_ID} -q"
  previous=()
  if [ "$g" -gt 1 ]; then previous=(results/tune); fi
  plexo tune merge "${previous[@]}" results/g"$g"-s* --out results/tune
done
plexo tune verify "$file" results/tune --plant rapier   # the final check on the rapier plant
