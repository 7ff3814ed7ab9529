"""Evaluation: one pipeline, dataset -> fixed batches -> shards -> per-image rows -> summary -> claims, with the
studies (ERF, knock-out) as steps on top of the rows; torch.distributed plumbing and the results schema.

protocol (what is measured and judged), scoring (batches -> shard rows), summary (rows -> tables), claims,
erf_study, knockout_study, runs (the pipeline), cli (``python -m res2net.evaluate``), distributed, results.
May import every subpackage but res2net.viz.
"""
