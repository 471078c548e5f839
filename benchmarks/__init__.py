"""Speed, time-to-quality and memory benchmarks of nst_tf (issue #4).

Run everything with ``python -m benchmarks.run`` (or ``make bench``); see
``benchmarks/README.md`` for what each number means.
"""
