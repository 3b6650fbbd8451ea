"""Numba kernels on flat arrays; see the modules for the forward pass, backward pass, losses,
update rules and whole-epoch training."""
