"""The benchmarks of scripts/bench.py, one module each, and what they share.

plan       what a run measures: sizes, plans, the names of the figures
sources    each task's data (../shared, else its embedded sample) and batches made of it
timing     interleaved timing, medians, profiles
models     models, step and forward variants, one size's shared state (`Run`)
step, data_path, predict, decode, memory, scaling, pointer    the seven benchmarks
targets    the targets and their verdicts
machine    the machine, the commit, the settings a result records
suite      every benchmark at every size and task: the result written to JSON
report     a result as markdown, and the generated block of docs/performance.md
"""
