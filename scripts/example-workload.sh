#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Example workload, after the HPC Ops sample's worker-node-test-script.sh:
# writes one output-<date>.txt into the mounted artifact bucket. Deleting the
# stack is not its business any more: the run's teardown job does that.
#
# usage: example-workload.sh [OUTPUT-DIR]
#   OUTPUT-DIR defaults to $HPCOPS_OUTPUT_DIR (set by hpcops-launch submit to
#   its --mount-dir), then /ArtifactBucket as in the sample.
# Environment from hpcops-launch: HPCOPS_RUN_ID, HPCOPS_STACK_NAME,
# HPCOPS_JOB_NAME; from Slurm: SLURM_JOB_ID.
set -euo pipefail
echo "$(date +'%F %R:%S') INFO: Logging Setup" >&2

dir=${1:-${HPCOPS_OUTPUT_DIR:-/ArtifactBucket}}
if [ ! -d "$dir" ]; then
	echo "example-workload: output directory $dir does not exist (is the bucket mounted?)" >&2
	exit 1
fi
# The job id keeps two jobs finishing in the same second apart.
out="$dir/output-$(date +%d-%m-%Y-%H-%M-%S)-${SLURM_JOB_ID:-$$}.txt"
echo "Cluster Stack Name ${HPCOPS_STACK_NAME:-local}. Run ${HPCOPS_RUN_ID:-none}," \
	"job ${HPCOPS_JOB_NAME:-example} (${SLURM_JOB_ID:-no job id}) on $(hostname)." \
	"Workload ran at $(date)" >"$out"
echo "$(date +'%F %R:%S') INFO: wrote $out" >&2
exit 0
