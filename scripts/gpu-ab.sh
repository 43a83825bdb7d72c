#!/bin/bash
# Same-call A/B of p2p-tree on a lent GPU machine: this tree against an older commit, built side
# by side on the same machine and benched one after the other, each with raw NCCL, so that a
# change's effect is not confused with the machine's (each call may get another host).
#
#   here:    git archive --format=tar -o build-head/old.tar <commit>   (build-head/ is carried)
#   device:  bash scripts/gpu-ab.sh build-head/old.tar
#
# The old tree builds in the background while scripts/gpu-machine.sh builds this one and runs
# PLEXUS_GPU_STEPS (default none: e.g. "p2pcases p2pconf"); then step p2psweep runs for this tree
# ("new<round>") and for the old one ("old<round>", under $OUT/old), alternating, PLEXUS_AB_ROUNDS
# times (default 1), sizes PLEXUS_AB_SIZES (default "-b 2M -e 128M -f 2"), eager (PLEXUS_P2P_SWEEP_MEM
# device_pool: outputs written in place). This tree's gpu-machine.sh benches both builds.
# NCCL_NVLS_ENABLE=0 as everywhere.
set -u
old_tar=${1:?usage: gpu-ab.sh OLD_TREE.tar}
export NCCL_NVLS_ENABLE=0
out=${OUT:-/tmp/plexus-gpu-out}
here=$PWD  # this tree's gpu-machine.sh runs both builds: the same steps and options for each
old=$(mktemp -d)
tar -xf "$old_tar" -C "$old" || exit 1
(cd "$old" && meson setup build-gpu > /dev/null 2>&1 && ninja -C build-gpu > /dev/null 2>&1; echo "old tree built: exit $? at $(date -u +%T)") &
PLEXUS_GPU_STEPS="${PLEXUS_GPU_STEPS:-}" bash scripts/gpu-machine.sh
wait
sizes=${PLEXUS_AB_SIZES:--b 2M -e 128M -f 2}
for round in $(seq "${PLEXUS_AB_ROUNDS:-1}"); do
  PLEXUS_GPU_STEPS=p2psweep PLEXUS_P2P_SWEEP="new$round:" PLEXUS_P2P_SWEEP_SIZES="$sizes" bash scripts/gpu-machine.sh
  (cd "$old" && OUT=$out/old PLEXUS_GPU_STEPS=p2psweep PLEXUS_P2P_SWEEP="old$round:" PLEXUS_P2P_SWEEP_SIZES="$sizes" \
    bash "$here/scripts/gpu-machine.sh")
done
rm -rf "$old"
