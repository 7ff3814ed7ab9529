"""Models: the zoo table (one ``ModelSpec`` row per model), Res2Net/ResNet blocks and trunks, DLA, per-branch taps,
parameter files (``weights``: find, download, verify, load), complexity counts, the one input normalisation and the
factory (``create_model``).

Imports nothing else from res2net.
"""
