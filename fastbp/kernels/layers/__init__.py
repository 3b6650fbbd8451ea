"""One module per layer kind, each with its forward and its backward kernel.

:mod:`.dense` is the fully connected layer; :mod:`.norm` batch and layer normalization;
:mod:`.recurrent` the Elman RNN, GRU and LSTM (one direction over time, and BPTT).  The
model-level passes in :mod:`fastbp.kernels.model` dispatch on the ``KIND`` column of the
layer table; :mod:`fastbp.kernels.sequence` runs the recurrent rows, then the others.
"""
