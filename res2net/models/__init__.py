"""Models: the zoo table, Res2Net/ResNet blocks and trunks, per-branch taps, weights, complexity, the factory.

Imports nothing else from res2net.
"""
