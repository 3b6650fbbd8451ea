"""One module per layer kind, each with its forward and its backward kernel.

:mod:`.dense` is the fully connected layer; :mod:`.norm` batch and layer normalization.  The
model-level passes in :mod:`fastbp.kernels.model` dispatch on the ``KIND`` column of the
layer table.
"""
