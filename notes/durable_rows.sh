#!/bin/bash
# Each row of issue 21's table through the real CLI: exit status and stderr.
cd "$(dirname "$0")/.."
export JAX_PLATFORMS=cpu GAN_JAX_DATA_DIR=/tmp/rows/tfds
PY=${PY:-python}
R=/tmp/rows; rm -rf $R/w* $R/out*
run() { echo "### $*"; "$@" > $R/out.txt 2> $R/err.txt; echo "exit=$?"; grep -v "^\s*$" $R/err.txt | grep -v "Generating\|Shuffling\|Downloading\|Dataset ring8\|examples/s\|splits/s" | tail -3; }
M="$PY -m gan_jax.main --config=configs/ring8.py:tiny"
run $M --workdir=$R/w0 --config.keep_checkpoints=0; ls $R/w0 2>&1 | head -2
run $M --workdir=$R/w1
run $M --workdir=$R/w1 --config.keep_checkpoints=1; echo "checkpoints: $(ls $R/w1/checkpoints)"; echo "rows: $(wc -l < $R/w1/metrics.jsonl)"
run $M --workdir=$R/w2 --config.optimizer.generator.learning_rate=-1; ls $R/w2 2>&1 | head -1
cp -r $R/w1 $R/w3; sum0=$(sha256sum $R/w3/config.json)
run $M --workdir=$R/w3 --config.allow_config_change=True --config.generator.hidden_units=64; [ "$sum0" == "$(sha256sum $R/w3/config.json)" ] && echo "config.json unchanged"
run $PY -m gan_jax.sample --workdir=$R/w3 --output=$R/out_w3.npy --num=10
cp -r $R/w1 $R/w4; f=$(ls -S $R/w4/checkpoints/20/state/d/* | head -1); $PY -c "import sys;p=sys.argv[1];b=bytearray(open(p,'rb').read());b[len(b)//2]^=16;open(p,'wb').write(b)" $f
run $M --workdir=$R/w4 --config.num_train_steps=30; echo "checkpoints: $(ls $R/w4/checkpoints) rejected: $(ls $R/w4/checkpoints.rejected)"
cp -r $R/w1 $R/w5; truncate -s 100 $R/w5/checkpoints/20/state/manifest.ocdbt
run $M --workdir=$R/w5; echo "checkpoints: $(ls $R/w5/checkpoints) rejected: $(ls $R/w5/checkpoints.rejected)"
cp -r $R/w1 $R/w6; printf '{"step": 25, "loss' >> $R/w6/metrics.jsonl
run $M --workdir=$R/w6 --config.num_train_steps=30; echo "rows: $(wc -l < $R/w6/metrics.jsonl), steps: $(cut -c1-12 $R/w6/metrics.jsonl | tr -d '\n')"
for k in eval_every_steps checkpoint_every_steps log_every_steps pack_size num_train_steps; do run $M --workdir=$R/w7 --config.$k=0; done
run $M --workdir=$R/w7 --config.num_train_steps=-5
run $M --workdir=$R/w7 --config.optimizer.generator.learning_rate=nan
run $M --workdir=$R/w7 --config.lossname=hinge
run $PY -m gan_jax.main --config=configs/ring8.py:tnyi --workdir=$R/w7
run $PY -m gan_jax.main --config=configs/ring8.py:tnyi --workdir=$R/w7 --verbose; ls $R/w7 2>&1 | head -1
run $PY -m gan_jax.sample --workdir=$R/w1 --output=$R/out.png --num=0
run $PY -m gan_jax.sample --workdir=$R/w1 --output=$R/out.png --num=-5
run $PY -m gan_jax.sample --workdir=$R/w1 --output=$R/out.png --kind=interpolation --steps=0
run $PY -m gan_jax.sample --workdir=$R/w1 --output=$R/r.png --kind=raw; ls $R | grep "^r\." || echo "no r.* written"
run $PY -m gan_jax.evaluate --workdir=$R/w1 --output=$R/e.json --num_samples=0
run $PY -m gan_jax.sample --workdir=$R/w1 --output=$R/s.npy --step=7
run $PY -m gan_jax.sample --workdir=$R/nothing --output=$R/s.npy
# data rows
rm $R/tfds/ring8/1.0.0/dataset_info.json
run $PY -m gan_jax.prepare --dataset=ring8 --data_dir=$R/tfds
run $PY -m gan_jax.prepare --dataset=ring8 --data_dir=$R/tfds --force
truncate -s 1000 $R/tfds/ring8/1.0.0/ring8-test.array_record-00000-of-00001
run $PY -m gan_jax.prepare --dataset=ring8 --data_dir=$R/tfds
run $M --workdir=$R/w8 --config.num_train_steps=2 --config.checkpoint_every_steps=2 --config.eval_every_steps=2 --config.log_every_steps=1
run $PY -m gan_jax.prepare --dataset=ring8 --data_dir=$R/tfds
# two launches
$M --workdir=$R/w9 --config.num_train_steps=100000 --config.checkpoint_every_steps=100000 --config.eval_every_steps=100000 > /dev/null 2>&1 &
A=$!; while [ ! -s $R/w9/.lock ]; do sleep 0.5; done; echo "first launch pid $A"
run $M --workdir=$R/w9
kill -TERM $A; wait $A; echo "first exit=$?"
