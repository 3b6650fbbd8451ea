"""airspeed velocity (asv) benchmarks for fastbp; see README.md in this folder.

Run from this folder: ``asv machine --yes && asv run --python=same --quick --show-stderr``.
"""
