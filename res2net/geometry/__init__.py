"""Geometry: where a tap's cells lie on the model input and on the user's photo.

- ``receptive_field``: each tap's receptive field (size, stride, centre of cell 0) from the op graph the model runs,
  found once per model.
- ``registration``: the one registration, cell (i, j) at ``start + stride·(i, j)``: maps placed on the input (torch,
  and the evaluation's numpy batch path) and carried through the preprocessing (``CropBox``) onto the photo.

May import res2net.models only.
"""
