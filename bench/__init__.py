"""The course's benchmarks: ``python -m bench`` (how fast the tools are), ``bench/activation_cost.py``
(what an activation costs; its measuring code, ``bench/cost.py``, is shared with the book) and
``bench/check_times.py`` (how long the grader's checks take)."""
