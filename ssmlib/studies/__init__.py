"""Studies: run many, evaluate with the shared evaluator, write ``results/<study>/``, load for the book.

* ``zoo`` -- the model zoo: every environment model on one dataset, scored by the same code
  (``python -m ssmlib zoo``, ``results/model_zoo/<game>/``);
* ``jumpy`` -- dSSM-DET and sSSM at jump k, scored at matched environment steps (``python -m ssmlib jumpy``,
  ``results/jumpy/<game>/``);
* ``zoo_campaign`` -- the model zoo trained until each model stops improving, over many GPU leases
  (``python -m ssmlib campaign``, ``results/model_zoo/<game>/campaign/``);
* ``open_loop_samples`` -- how many prior samples the open-loop likelihood of a sampling model needs
  (``scripts/open_loop_samples.py``, ``results/open_loop_samples/<game>.json``);
* ``scaling`` -- data-parallel training throughput on N GPUs (``python -m ssmlib.studies.scaling``,
  ``results/scaling/``);
* ``i2a`` -- the I2A pilot study: every agent variant x seed (``python -m ssmlib agent report|bench``,
  ``results/i2a/<game>/``);
* ``i2a_campaign`` -- the I2A campaign's design (claims 4 and 5);
* ``speed`` -- the speed benchmarks, throughputs and ratios measured in one run: data collection, imagination
  and training (``python -m ssmlib bench collect|rollout|train``, ``results/bench_collect/``, ``results/speed/``);
* ``common`` -- what they share: running many training processes, reading and writing a study's files,
  its Markdown tables and the flags of its training and evaluation settings.
"""
