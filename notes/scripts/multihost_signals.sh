#!/bin/bash
# usage: sig.sh WORKDIR MODE GAP [extra flags]   MODE: launcher|launcher-int|both|one
W=$1; MODE=$2; GAP=$3; shift 3
cd /work/wt-multihost
S=/tmp/wt_multihost_scratch
export GAN_JAX_DATA_DIR=$S/tfds GAN_JAX_COMPILATION_CACHE=$S/cache
LOG=$W.log; rm -rf $W $LOG
/work/main/.venv/bin/python -m gan_jax.launch --num_processes=2 --devices_per_process=2 -- --config=configs/ring8.py:tiny --workdir=$W --config.num_train_steps=3000 --config.checkpoint_every_steps=1000 "$@" > $LOG 2>&1 & L=$!
for i in $(seq 240); do grep -q "step 10/" $LOG && break; sleep 0.5; done
kids=($(pgrep -P $L))
case $MODE in
  launcher) kill -TERM $L;;
  launcher-int) kill -INT $L;;
  both) kill -TERM ${kids[0]}; sleep $GAP; kill -TERM ${kids[1]};;
  one) kill -TERM ${kids[1]};;
esac
t0=$(date +%s); wait $L; rc=$?
echo "mode=$MODE gap=$GAP rc=$rc waited=$(( $(date +%s)-t0 ))s saved=$(ls $W/checkpoints | tr '\n' ' ') stop=$(grep -o 'saves step [0-9]*' $LOG | sort | uniq -c | tr '\n' ' ')"
