#!/usr/bin/env bash
# One call on the lent GPU machine (device tool): configure and build with
# that machine's Meson, run the unit and GPU test suites, record plexus-info
# (GPU topology included), then the benchmarks and conformance runs that the
# GPUs and cores allow. Everything lands under $OUT for docs/performance.md.
#
# PLEXUS_GPU_STEPS picks steps (unset: "test info alloc nccl graph conf socket socketconf"; empty: none):
#   test    meson test (PLEXUS_GPU_SUITES, default suites unit and gpu)
#   info    plexus-info and its JSON
#   alloc   plexus-bench-alloc: device pool against cudaMalloc and cudaMallocAsync
#   nccl    plexus-bench --mem device: nccl plugin against raw NCCL (PLEXUS_GPU_DTYPES, default float32 bfloat16)
#   graph   the same, bfloat16, every call captured in a CUDA graph
#   conf    plexus-conformance --backend nccl
#   socket  the nccl bench on NCCL's socket transport (the two-node stand-in)
#   socketconf  the conformance kit on NCCL's socket transport
#   shm     shm-native against Open MPI at PLEXUS_GPU_RANKS ranks (unset: "8 16"; empty: no bench), once per entry of
#           PLEXUS_SHM_SWEEP ("label:VAR=value,VAR=value ...", the variables without PLEXUS_SHM_NATIVE_;
#           default "auto:", the defaults), each PLEXUS_SHM_ROUNDS times (default 1), sizes PLEXUS_SHM_SIZES
#           (default "-b 8 -e 32M -f 4"), for each buffer kind of PLEXUS_SHM_MEMS (default host; also
#           shared_host, and either with "+rewrite": --rewrite-input); then its conformance at
#           PLEXUS_SHM_CONF_RANKS ranks (default 8; empty: none)
#   p2pcases  p2p-tree's GPU test cases one at a time (debug log, 120 s each; PLEXUS_P2P_CASES picks them)
#   p2pconf   plexus-conformance --backend p2p-tree (then per PLEXUS_P2P_CONF_BLOCKS and PLEXUS_P2P_CONF_ALGOS)
#   p2pbench  plexus-bench --mem device: p2p-tree, nccl and raw NCCL, bfloat16, eager and graph; then
#             --mem device_pool (p2p-tree's outputs registered: written in place) eager and graph; then
#             reduce-scatter and all-gather against raw NCCL (PLEXUS_P2P_PHASE_OPS; empty: neither)
#   p2plat    the launch floor (plexus-bench-launch: enqueue cost, back-to-back kernel period eager and
#             in a graph, with and without programmatic dependent launch, NVLink one-way latency; with
#             --contexts the enqueue cost as the process takes on peer access and IPC mappings), then
#             p2p-tree against raw NCCL from 8 B to 1 MiB, eager and graph, per PLEXUS_P2P_LAT_CONFIGS entry
#             pdl<0|1>-t<LL_THREADS> (default pdl0-t512 pdl1-t512 pdl1-t256 pdl1-t128), PLEXUS_P2P_LAT_ROUNDS
#             times (default 2), sizes a factor PLEXUS_P2P_LAT_FACTOR apart (default 4)
#   nvlink    plexus-bench-launch --push --ce-model: NVLink bandwidth, 2 and all GPUs each sending to every other
#             at once and GPU 0 alone to GPU 1, by SM stores or loads, copy engines, and both splitting each
#             transfer; then a 128 MiB all-reduce whose NVLink traffic goes by copy engines (one process)
#   p2ptune   p2p-tree alone: each of PLEXUS_P2P_TUNE_ALGOS (default one_shot two_shot) forced over
#             PLEXUS_P2P_TUNE_SIZES (plexus-bench -b/-e/-f, default "-b 4K -e 4M -f 2"), then MAX_BLOCKS
#             (PLEXUS_P2P_TUNE_BLOCKS) x SLOT_BYTES (PLEXUS_P2P_TUNE_SLOTS) sweeps from 512 KiB to 128 MiB
#   p2psweep  p2p-tree under each PLEXUS_P2P_SWEEP configuration ("label:VAR=value,VAR=value ...", the
#             variables without PLEXUS_P2P_TREE_; default "def:", the defaults), PLEXUS_P2P_SWEEP_SIZES
#             (default "-b 8K -e 1M -f 2"), eager, and graph too when PLEXUS_P2P_SWEEP_GRAPH=1; the first
#             configuration with raw NCCL;
#             --mem PLEXUS_P2P_SWEEP_MEM (default device; device_pool: p2p-tree's outputs written in place)
#   memcheck  compute-sanitizer memcheck and racecheck over the GPU plugins' kernel tests, one and two ranks
#             and synccheck (PLEXUS_SANITIZE_TOOLS; PLEXUS_SANITIZE_CASES: dir:name:case[:suffix] entries,
#             suffix naming test-<dir>-gpu-<suffix>;
#             PLEXUS_SANITIZE_TIMEOUT seconds each)
#   pinned    pinned-host: its GPU test cases one at a time, plexus-conformance, plexus-bench against raw
#             NCCL with P2P off (NCCL_P2P_DISABLE=1: NCCL's own path through host memory) at 2 ranks and
#             at every GPU (eager, graph, the CPU helper, the copy engines, float32 as bfloat16), and
#             plexus-bench-h2d (the copy bandwidth it is a fraction of); PLEXUS_PINNED_BENCHES picks
#             among float32 bfloat16 graph cpu copy wire llcross (default all but llcross: LL against
#             one-shot from 16 KiB to 1 MiB); PLEXUS_PINNED_RANKS the rank counts (default 2 and every GPU);
#             PLEXUS_PINNED_CONF=0 skips the conformance run; PLEXUS_PINNED_CASES picks the GPU test cases; PLEXUS_PINNED_TUNE
#             lists MAX_BLOCKS-STAGES-STAGE_BYTES configurations for a bandwidth sweep (8 to 128 MiB)
#   auto    auto (docs/auto.md): plexus-info's choice, plexus-conformance on auto's composite, plexus-bench
#           of auto against p2p-tree, nccl and raw NCCL (bfloat16, 8 B to 256 MiB in steps of 2, eager and graph);
#           the table is measured at the first communicator and kept in $OUT/tuning.txt;
#           PLEXUS_AUTO_BENCHES picks among eager graph (empty: conformance only)
#   tp      examples/python/tp_demo.py with PyTorch (PLEXUS_TP_PYTHON, default /opt/torch/.venv/bin/python)
#           on every GPU: p2p-tree, nccl, pinned-host and auto in turn, checked against a one-GPU
#           reference, decode and prefill loops; per dtype in PLEXUS_TP_DTYPES (default bfloat16 float32),
#           more demo arguments in PLEXUS_TP_ARGS; output in $OUT/tp-<dtype>.txt
set -uo pipefail
export NCCL_NVLS_ENABLE=0  # never NVLink SHARP on the lent machines
out=${OUT:-/tmp/plexus-gpu-out}
mkdir -p "$out"
build=build-gpu
# unset: the default steps; set but empty: none (gpu-ab.sh's first build)
steps=" ${PLEXUS_GPU_STEPS-test info alloc nccl graph conf socket socketconf} "
has_step() { [[ "$steps" == *" $1 "* ]]; }
bin="$build/tools"

{
  date -u; uname -r; nproc; meson --version; ninja --version
  nvidia-smi -L 2>&1; nvidia-smi topo -m 2>&1; nvcc --version 2>&1 | tail -1
  command -v mpirun || echo "no mpirun"
} > "$out/machine.txt" 2>&1
head -8 "$out/machine.txt"
gpus=$(nvidia-smi -L 2>/dev/null | grep -c "^GPU")

# a second call on a warm machine reuses the configured build (ninja rebuilds what changed)
if [ ! -f "$build/build.ninja" ] && ! meson setup "$build" > "$out/setup.log" 2>&1; then
  tail -30 "$out/setup.log"; exit 1
fi
grep -A10 "Dependencies" "$out/setup.log"
# PLEXUS_GPU_TARGETS: only these ninja targets (a CPU-only step needs no CUDA kernels built)
if ! ninja -C "$build" ${PLEXUS_GPU_TARGETS:-} > "$out/build.log" 2>&1; then grep -E "error|FAILED" "$out/build.log" | head -30; exit 1; fi
echo "built at $(date -u +%T)"

if has_step test; then
  meson test -C "$build" ${PLEXUS_GPU_SUITES:---suite unit --suite gpu} --no-suite gpu-conformance --num-processes 8 --print-errorlogs > "$out/test.log" 2>&1
  grep -E "^ *[0-9]+/[0-9]+ .*(FAIL|TIMEOUT|SKIP)" "$out/test.log"
  grep -E "^(Ok|Fail|Skipped|Timeout):" "$out/test.log"
fi

if has_step info; then
  "$bin/plexus-info/plexus-info" > "$out/info.txt" 2>&1
  "$bin/plexus-info/plexus-info" --json > "$out/info.json" 2>&1
  sed -n '/GPU topology/,/^$/p' "$out/info.txt" | head -20
fi

run_bench() {  # name, then plexus-bench arguments
  local name=$1; shift
  "$bin/plexus-bench/plexus-bench" "$@" --csv "$out/bench-$name.csv" > "$out/bench-$name.txt" 2>&1
  echo "bench $name: exit $?"; grep -v "^plexus-bench:" "$out/bench-$name.txt" | cut -c1-130 | tail -20
}

run_conformance() {  # name, then plexus-conformance arguments
  local name=$1; shift
  echo "conformance $name starts at $(date -u +%T)"
  "$bin/plexus-conformance/plexus-conformance" "$@" --json "$out/conformance-$name.json" \
    > "$out/conformance-$name.txt" 2>&1
  echo "conformance $name: exit $?"; grep -iE "fail" "$out/conformance-$name.txt" | head -8
  tail -2 "$out/conformance-$name.txt"
}

if has_step alloc && [ -x "$bin/plexus-bench-alloc/plexus-bench-alloc" ]; then
  for api in cuda_malloc vmm; do
    "$bin/plexus-bench-alloc/plexus-bench-alloc" --api "$api" --threads 1,8 \
      --csv "$out/alloc-$api.csv" > "$out/alloc-$api.txt" 2>&1
    echo "alloc bench $api: exit $?"; tail -16 "$out/alloc-$api.txt"
  done
fi

device_ranks=$(( gpus < 2 ? 1 : gpus ))
if has_step nccl; then
  for dtype in ${PLEXUS_GPU_DTYPES:-float32 bfloat16}; do
    run_bench "nccl-$dtype-$device_ranks" --mem device --backends nccl,raw-nccl --ranks "$device_ranks" \
      -d "$dtype" -b 8 -e 256M -f 4 -n 20 -w 5
  done
fi
if has_step graph; then
  run_bench "nccl-graph-$device_ranks" --mem device --graph --backends nccl,raw-nccl --ranks "$device_ranks" \
    -d bfloat16 -b 8 -e 64M -f 8 -n 20 -w 5
fi
if has_step conf; then
  run_conformance "nccl-$device_ranks" --backend nccl --ranks "$device_ranks"
fi
if has_step socket; then
  NCCL_P2P_DISABLE=1 NCCL_SHM_DISABLE=1 run_bench "nccl-socket-$device_ranks" --mem device \
    --backends nccl,raw-nccl --ranks "$device_ranks" -b 8 -e 64M -f 8 -n 10 -w 3
fi
if has_step socketconf; then
  NCCL_P2P_DISABLE=1 NCCL_SHM_DISABLE=1 run_conformance "nccl-socket-$device_ranks" --backend nccl \
    --ranks "$device_ranks"
fi

if has_step shm; then
  peer=""
  [ -x "$bin/plexus-bench/plexus-bench-mpi" ] && command -v mpirun >/dev/null && peer=",mpi"
  for n in ${PLEXUS_GPU_RANKS-8 16}; do
    for round in $(seq "${PLEXUS_SHM_ROUNDS:-1}"); do
      for config in ${PLEXUS_SHM_SWEEP:-auto:}; do  # Open MPI beside every configuration: ratios of one run
        label=${config%%:*}; vars=()
        IFS=, read -ra settings <<< "${config#*:}"
        for setting in "${settings[@]}"; do [ -n "$setting" ] && vars+=("PLEXUS_SHM_NATIVE_$setting"); done
        for mem in ${PLEXUS_SHM_MEMS:-host}; do
          mem_args=(--mem "${mem%+rewrite}"); [ "$mem" = "${mem%+rewrite}" ] || mem_args+=(--rewrite-input)
          name="shm-$n"; [ "$label" = auto ] || name+="-$label"; [ "$mem" = host ] || name+="-${mem/+/-}"
          [ "$round" = 1 ] || name+="-r$round"
          echo "shm $name: ${vars[*]} ${mem_args[*]}"
          (for setting in "${vars[@]}"; do export "$setting"; done
           run_bench "$name" --backends "shm-native$peer" --ranks "$n" "${mem_args[@]}" \
             ${PLEXUS_SHM_SIZES:--b 8 -e 32M -f 4})
        done
      done
    done
  done
  for n in ${PLEXUS_SHM_CONF_RANKS-8}; do run_conformance "shm-$n" --backend shm-native --ranks "$n"; done
fi

p2p_test="$build/tests/plugins/p2p-tree/test-p2p-tree-gpu"
if has_step p2pcases; then
  for case in ${PLEXUS_P2P_CASES:-one_rank two_ranks_all_reduce_every_type two_ranks_other_collectives \
              graph_capture_replays registered_outputs registered_outputs_in_rounds thread_ranks \
              timeout_when_a_rank_skips abort_reaches_the_peer killed_rank_is_noticed}; do
    PLEXUS_P2P_TREE_ENABLE=1 PLEXUS_LOG_LEVEL=${PLEXUS_P2P_LOG:-debug} timeout -k 5 120 \
      "$p2p_test" --test-case="plugins.p2p_tree.gpu.$case" > "$out/p2p-$case.log" 2>&1
    echo "p2p case $case: exit $?"; grep -E "ERROR|error|FAIL|SUCCESS|test cases|in place" "$out/p2p-$case.log" | head -8
  done
fi
if has_step p2pconf; then
  PLEXUS_P2P_TREE_ENABLE=1 run_conformance "p2p-tree-$device_ranks" --backend p2p-tree --ranks "$device_ranks"
  for blocks in ${PLEXUS_P2P_CONF_BLOCKS:-}; do
    PLEXUS_P2P_TREE_ENABLE=1 PLEXUS_P2P_TREE_MAX_BLOCKS=$blocks run_conformance "p2p-tree-$device_ranks-blocks$blocks" \
      --backend p2p-tree --ranks "$device_ranks"
  done
  for algo in ${PLEXUS_P2P_CONF_ALGOS:-}; do  # every all-reduce forced onto one algorithm
    PLEXUS_P2P_TREE_ENABLE=1 PLEXUS_P2P_TREE_ALGO=$algo run_conformance "p2p-tree-$device_ranks-$algo" \
      --backend p2p-tree --ranks "$device_ranks"
  done
fi
if has_step p2pbench; then
  PLEXUS_P2P_TREE_ENABLE=1 run_bench "p2p-bf16-$device_ranks" --mem device --backends p2p-tree,nccl,raw-nccl \
    --ranks "$device_ranks" -d bfloat16 -b 8 -e 256M -f 4 -n 20 -w 5 --timeout 240
  PLEXUS_P2P_TREE_ENABLE=1 run_bench "p2p-graph-$device_ranks" --mem device --graph --backends p2p-tree,nccl,raw-nccl \
    --ranks "$device_ranks" -d bfloat16 -b 8 -e 64M -f 8 -n 20 -w 5 --timeout 240
  PLEXUS_P2P_TREE_ENABLE=1 run_bench "p2p-pool-bf16-$device_ranks" --mem device_pool --backends p2p-tree,nccl \
    --ranks "$device_ranks" -d bfloat16 -b 8 -e 256M -f 4 -n 20 -w 5 --timeout 240
  PLEXUS_P2P_TREE_ENABLE=1 run_bench "p2p-pool-graph-$device_ranks" --mem device_pool --graph --backends p2p-tree,nccl \
    --ranks "$device_ranks" -d bfloat16 -b 8 -e 64M -f 8 -n 20 -w 5 --timeout 240
  # the two-shot's halves on their own, against NCCL's: where the all-reduce's time goes
  for op in ${PLEXUS_P2P_PHASE_OPS-reduce_scatter all_gather}; do  # empty: none
    PLEXUS_P2P_TREE_ENABLE=1 run_bench "p2p-$op-$device_ranks" --op "$op" --mem device --backends p2p-tree,raw-nccl \
      --ranks "$device_ranks" -d bfloat16 -b 1M -e 256M -f 4 -n 10 -w 3 --timeout 240
  done
fi
if has_step p2plat; then
  "$bin/plexus-bench-launch/plexus-bench-launch" --csv "$out/launch.csv" > "$out/launch.txt" 2>&1
  echo "plexus-bench-launch: exit $?"; cat "$out/launch.txt"
  # a launch's host cost as the process takes on peers (needs 2 GPUs)
  "$bin/plexus-bench-launch/plexus-bench-launch" --contexts --csv "$out/contexts.csv" > "$out/contexts.txt" 2>&1
  echo "plexus-bench-launch --contexts: exit $?"; cat "$out/contexts.txt"
  for round in $(seq "${PLEXUS_P2P_LAT_ROUNDS:-2}"); do
    for config in ${PLEXUS_P2P_LAT_CONFIGS:-pdl0-t512 pdl1-t512 pdl1-t256 pdl1-t128}; do  # PDL and LL_THREADS
      pdl=${config%%-*}; pdl=${pdl#pdl}; threads=${config##*-t}
      for mode in eager graph; do
        flag=""; [ "$mode" = graph ] && flag=--graph
        PLEXUS_P2P_TREE_ENABLE=1 PLEXUS_P2P_TREE_PDL=$pdl PLEXUS_P2P_TREE_LL_THREADS=$threads \
          run_bench "p2p-lat-$mode-$config-r$round" --mem device $flag --backends p2p-tree,raw-nccl \
          --ranks "$device_ranks" -d bfloat16 -b 8 -e 1M -f "${PLEXUS_P2P_LAT_FACTOR:-4}" -n 20 -w 5 --timeout 120
      done
    done
  done
fi
if has_step p2ptune; then
  for algo in ${PLEXUS_P2P_TUNE_ALGOS:-one_shot two_shot}; do
    PLEXUS_P2P_TREE_ENABLE=1 PLEXUS_P2P_TREE_ALGO=$algo PLEXUS_P2P_TREE_ONESHOT_MAX_BYTES=4M \
      run_bench "p2p-algo-$algo" --mem device --backends p2p-tree --ranks "$device_ranks" -d bfloat16 \
      ${PLEXUS_P2P_TUNE_SIZES:--b 4K -e 4M -f 2} -n 20 -w 5 --samples 10 --timeout 120
  done
  for blocks in ${PLEXUS_P2P_TUNE_BLOCKS:-16 32 64}; do
    for slot in ${PLEXUS_P2P_TUNE_SLOTS:-4M 16M}; do
      PLEXUS_P2P_TREE_ENABLE=1 PLEXUS_P2P_TREE_MAX_BLOCKS=$blocks PLEXUS_P2P_TREE_SLOT_BYTES=$slot \
        run_bench "p2p-blocks$blocks-slot$slot" --mem device --backends p2p-tree --ranks "$device_ranks" \
        -d bfloat16 -b 512K -e 128M -f 4 -n 10 -w 3 --samples 5 --timeout 120
    done
  done
fi
if has_step nvlink; then
  "$bin/plexus-bench-launch/plexus-bench-launch" --push --ce-model --csv "$out/nvlink.csv" > "$out/nvlink.txt" 2>&1
  echo "plexus-bench-launch --push --ce-model: exit $?"; grep -E "push|pull|one_way|all_to_all|ce_all" "$out/nvlink.txt"
fi
if has_step p2psweep; then
  peer=",raw-nccl"
  for config in ${PLEXUS_P2P_SWEEP:-def:}; do  # unset or empty: the defaults alone
    label=${config%%:*}; vars=()
    IFS=, read -ra settings <<< "${config#*:}"
    for setting in "${settings[@]}"; do [ -n "$setting" ] && vars+=("PLEXUS_P2P_TREE_$setting"); done
    for mode in eager ${PLEXUS_P2P_SWEEP_GRAPH:+graph}; do
      flag=""; [ "$mode" = graph ] && flag=--graph
      env PLEXUS_P2P_TREE_ENABLE=1 "${vars[@]}" "$bin/plexus-bench/plexus-bench" --mem "${PLEXUS_P2P_SWEEP_MEM:-device}" $flag \
        --backends "p2p-tree$peer" --ranks "$device_ranks" -d bfloat16 ${PLEXUS_P2P_SWEEP_SIZES:--b 8K -e 1M -f 2} \
        -n 20 -w 5 --timeout 120 --csv "$out/bench-p2p-sweep-$label-$mode.csv" > "$out/bench-p2p-sweep-$label-$mode.txt" 2>&1
      echo "sweep $label $mode (${vars[*]}): exit $?"
      grep -v "^plexus-bench:" "$out/bench-p2p-sweep-$label-$mode.txt" | cut -c1-110 | tail -14
    done
    peer=""
  done
fi
if has_step memcheck && command -v compute-sanitizer >/dev/null; then
  # every GPU plugin's kernel tests: one rank, then two ranks as processes (the
  # sanitizer follows the forked ranks: --target-processes all)
  sanitize_cases=${PLEXUS_SANITIZE_CASES:-"p2p-tree:p2p_tree:one_rank p2p-tree:p2p_tree:two_ranks_all_reduce_every_type
    p2p-tree:p2p_tree:two_ranks_other_collectives p2p-tree:p2p_tree:pipe_forced_ring:pipe
    p2p-tree:p2p_tree:pipe_forced_kary_tree:pipe p2p-tree:p2p_tree:wire_precision_ll_lines pinned-host:pinned_host:one_rank
    pinned-host:pinned_host:two_ranks_all_reduce_every_type pinned-host:pinned_host:two_ranks_copies
    nccl:nccl:one_rank_collectives nccl:nccl:two_ranks_collectives"}
  for tool in ${PLEXUS_SANITIZE_TOOLS:-memcheck racecheck synccheck}; do
    for entry in $sanitize_cases; do
      IFS=: read -r dir name case suffix <<< "$entry"
      exe="$build/tests/plugins/$dir/test-$dir-gpu${suffix:+-$suffix}"
      log="$out/sanitizer-$tool-$name-$case.log"
      # libnccl probes its kernels for other architectures (cudaFuncGetAttributes answers
      # "no kernel image"): NCCL's own API errors, not ours, so not counted for nccl's cases
      api_errors=explicit; [ "$dir" = nccl ] && api_errors=no
      PLEXUS_P2P_TREE_ENABLE=1 PLEXUS_PINNED_HOST_ENABLE=1 timeout -k 5 "${PLEXUS_SANITIZE_TIMEOUT:-150}" \
        compute-sanitizer --tool "$tool" --target-processes all --report-api-errors "$api_errors" --error-exitcode 9 \
        "$exe" --test-case="plugins.$name.gpu.$case" > "$log" 2>&1
      echo "compute-sanitizer $tool $name.$case: exit $?"; grep -E "SUMMARY|test cases" "$log" | sort | uniq -c | head -4
    done
  done
fi
pinned_test="$build/tests/plugins/pinned-host/test-pinned-host-gpu"
if has_step pinned; then
  for case in ${PLEXUS_PINNED_CASES:-one_rank two_ranks_all_reduce_every_type two_ranks_ll_threshold two_ranks_ll_batches \
              two_ranks_beyond_the_ring two_ranks_wire_precision \
              two_ranks_wire_param two_ranks_cpu_helper two_ranks_copy_engines two_ranks_no_contribution \
              two_ranks_reduce_and_reduce_scatter \
              two_ranks_copies two_ranks_copies_ll_batches \
              graph_capture_replays thread_ranks timeout_when_a_rank_skips_ll timeout_when_a_rank_skips_bulk \
              abort_reaches_the_peer killed_rank_is_noticed nothing_left_in_dev_shm}; do
    PLEXUS_PINNED_HOST_ENABLE=1 PLEXUS_LOG_LEVEL=${PLEXUS_PINNED_LOG:-warn} timeout -k 5 300 \
      "$pinned_test" --test-case="plugins.pinned_host.gpu.$case" > "$out/pinned-$case.log" 2>&1
    echo "pinned case $case: exit $?"; grep -E "ERROR|error|FAIL|test cases" "$out/pinned-$case.log" | head -6
  done
  "$bin/plexus-bench-h2d/plexus-bench-h2d" --csv "$out/h2d.csv" > "$out/h2d.txt" 2>&1
  echo "plexus-bench-h2d: exit $?"; tail -6 "$out/h2d.txt"
  for n in ${PLEXUS_PINNED_RANKS:-$(printf '%s\n' 2 "$gpus" | sort -un)}; do
    [ "$n" -le "$gpus" ] || continue
    [ "${PLEXUS_PINNED_CONF:-1}" = 1 ] &&
      PLEXUS_PINNED_HOST_ENABLE=1 run_conformance "pinned-host-$n" --backend pinned-host --ranks "$n"
    pinned_benches=" ${PLEXUS_PINNED_BENCHES:-float32 bfloat16 graph cpu copy wire} "
    for dtype in float32 bfloat16; do
      [[ "$pinned_benches" == *" $dtype "* ]] || continue
      PLEXUS_PINNED_HOST_ENABLE=1 NCCL_P2P_DISABLE=1 run_bench "pinned-$dtype-$n" --mem device \
        --backends pinned-host,raw-nccl --ranks "$n" -d "$dtype" -b 8 -e 256M -f 4 -n 20 -w 5 --timeout 300
    done
    [[ "$pinned_benches" == *" graph "* ]] &&
      PLEXUS_PINNED_HOST_ENABLE=1 NCCL_P2P_DISABLE=1 run_bench "pinned-graph-$n" --mem device --graph \
      --backends pinned-host,raw-nccl --ranks "$n" -d bfloat16 -b 8 -e 64M -f 8 -n 20 -w 5 --timeout 300
    # the CPU helper (ALGO=cpu: every all-reduce size), to set CPU_MIN_BYTES or leave it off
    [[ "$pinned_benches" == *" cpu "* ]] &&
      PLEXUS_PINNED_HOST_ENABLE=1 PLEXUS_PINNED_HOST_ALGO=cpu NCCL_P2P_DISABLE=1 run_bench "pinned-cpu-$n" \
      --mem device --backends pinned-host,raw-nccl --ranks "$n" -d bfloat16 -b 8 -e 256M -f 4 -n 20 -w 5 --timeout 300
    # the copy engines (ALGO=copy: every all-reduce size), to set COPY_MIN_BYTES or leave it off
    [[ "$pinned_benches" == *" copy "* ]] &&
      PLEXUS_PINNED_HOST_ENABLE=1 PLEXUS_PINNED_HOST_ALGO=copy NCCL_P2P_DISABLE=1 run_bench "pinned-copy-$n" \
      --mem device --backends pinned-host,raw-nccl --ranks "$n" -d bfloat16 -b 8 -e 256M -f 4 -n 20 -w 5 --timeout 300
    # the low-latency path against the one-shot, both forced, to set LL_MAX_BYTES
    for algo in ll one_shot; do
      [[ "$pinned_benches" == *" llcross "* ]] &&
        PLEXUS_PINNED_HOST_ENABLE=1 PLEXUS_PINNED_HOST_ALGO=$algo PLEXUS_PINNED_HOST_LL_MAX_BYTES=1M NCCL_P2P_DISABLE=1 \
        run_bench "pinned-$algo-cross-$n" --mem device --backends pinned-host --ranks "$n" -d bfloat16 \
        -b 16K -e 1M -f 2 -n 20 -w 5 --timeout 300
    done
    # float32 sent as bfloat16 (ExLlamaV3's wire): half the bytes, so not a like-for-like ratio
    [[ "$pinned_benches" == *" wire "* ]] &&
      PLEXUS_PINNED_HOST_ENABLE=1 NCCL_P2P_DISABLE=1 run_bench "pinned-f32-wire-bf16-$n" --wire bfloat16 \
      --mem device --backends pinned-host,raw-nccl --ranks "$n" -d float32 -b 8 -e 256M -f 4 -n 20 -w 5 --timeout 300
    for config in ${PLEXUS_PINNED_TUNE:-}; do  # MAX_BLOCKS-STAGES-STAGE_BYTES, e.g. 32-32-256K
      IFS=- read -r blocks stages stage_bytes <<< "$config"
      PLEXUS_PINNED_HOST_ENABLE=1 PLEXUS_PINNED_HOST_MAX_BLOCKS=$blocks PLEXUS_PINNED_HOST_STAGES=$stages \
        PLEXUS_PINNED_HOST_STAGE_BYTES=$stage_bytes NCCL_P2P_DISABLE=1 run_bench "pinned-tune-$config-$n" --mem device \
        --backends pinned-host --ranks "$n" -d bfloat16 -b 8M -e 128M -f 4 -n 10 -w 3 --timeout 120
    done
  done
fi
if has_step auto; then
  (  # a subshell: the functions above run with these set, the later steps without
    export PLEXUS_P2P_TREE_ENABLE=1 PLEXUS_PINNED_HOST_ENABLE=1 PLEXUS_TUNING_FILE="$out/tuning.txt"
    PLEXUS_LOG_LEVEL=info "$bin/plexus-info/plexus-info" --backend auto > "$out/auto-info.txt" 2>&1
    grep -E "chose|rejected" "$out/auto-info.txt" | cut -c1-300
    run_conformance "auto-$device_ranks" --backend auto --ranks "$device_ranks"
    cat "$out/tuning.txt"
    [[ " ${PLEXUS_AUTO_BENCHES-eager graph} " == *" eager "* ]] && run_bench "auto-bf16-$device_ranks" --mem device --backends auto,p2p-tree,nccl,raw-nccl \
      --ranks "$device_ranks" -d bfloat16 -b 8 -e 256M -f 2 -n 20 -w 5 --timeout 300
    [[ " ${PLEXUS_AUTO_BENCHES-eager graph} " == *" graph "* ]] && run_bench "auto-graph-$device_ranks" --mem device --graph --backends auto,p2p-tree,nccl,raw-nccl \
      --ranks "$device_ranks" -d bfloat16 -b 8 -e 64M -f 4 -n 20 -w 5 --timeout 300
  )
fi
tp_python=${PLEXUS_TP_PYTHON:-/opt/torch/.venv/bin/python}
if has_step tp; then
  if [ -x "$tp_python" ]; then
    for dtype in ${PLEXUS_TP_DTYPES:-bfloat16 float32}; do
      # the demo enables p2p-tree and pinned-host itself; auto measures its table in the first run
      # (as the auto step does, into the same file) and the second run reuses it
      PLEXUS_LIBRARY="$PWD/$build/loader/libplexus.so.1" PLEXUS_TUNING_FILE="$out/tuning.txt" \
        timeout -k 5 280 "$tp_python" examples/python/tp_demo.py --device cuda --dtype "$dtype" \
        --timeout 180 ${PLEXUS_TP_ARGS:-} > "$out/tp-$dtype.txt" 2>&1
      echo "tp demo $dtype: exit $?"; grep -E "^\[|^tp_demo" "$out/tp-$dtype.txt" | cut -c1-220 | head -30
      sed -n '/^summary/,$p' "$out/tp-$dtype.txt"
    done
  else
    echo "tp: no $tp_python (PyTorch): skipped"
  fi
fi
cd "$out" && tar -czf all.tgz ./*.txt ./*.csv ./*.json ./*.log 2>/dev/null; true
