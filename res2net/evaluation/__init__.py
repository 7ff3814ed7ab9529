"""Evaluation: dataset -> fixed batches -> shards -> per-image rows -> summary -> claims, the studies on top of
the rows (ERF, knock-out), torch.distributed plumbing and the results schema.

May import every subpackage but res2net.viz.
"""
