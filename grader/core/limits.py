"""The grader's limits, in one place: the CLI's defaults, the worker's and the README's figures.

``CHECK_TIMEOUT``: measured by ``bench/check_times.py`` (every check of the solutions and of the
correct but naive forms the test suite has, in-process on 2 cores): the slowest check of a correct
activation took 0.5 s on an idle machine and 1.5 s on one loaded by other work (gradcheck of a
softmax written as a Python loop over rows; ``forbidden``'s first run imports the dispatch
machinery), the slowest notebook cell 0.5-1.3 s. Ten seconds is 7-20x that, for a loaded CI machine
and CUDA's start-up; with the hang memo (grader/core/hangs.py) a function that never returns costs it once.
"""
from __future__ import annotations

import os

CHECK_TIMEOUT = 10.0  # seconds one check or one cell may take
MEMORY = 6 * 2**30  # bytes of address space for a worker (torch itself needs about 1 GiB)
FILE_SIZE = 256 * 2**20  # bytes: the largest file a worker may write
TOTAL_TIMEOUT = 1800.0  # seconds for a whole submission
# processes and threads one worker may have at once (torch alone starts a few threads per core)
PROCESSES = 64 + 2 * (os.cpu_count() or 1)
OUTPUT = 64 * 2**10  # characters of a cell's or a check's printed output that are kept (the rest is counted)
# The result channel, per file. The largest honest event is a tape of 2.1 MB (RReLU's random check on
# the solutions), a whole chapter 3.2 MB of events (02_relu_variants): these bounds are 8x and 20x
# that. Past one of them the parent stops the worker and the file cannot be graded.
EVENT_BYTES = 16 * 2**20  # the longest line the parent reads from a worker
CHANNEL_BYTES = 64 * 2**20  # everything a file's process sends
# events per file: an honest one sends two per planned check and two more; what it sends that the plan
# does not hold is ignored (and judged never), so only a flood of them ends the file's grading
EVENTS_PER_CHECK, EXTRA_EVENTS = 20, 1000
TAPE_BYTES = 64 * 2**20  # what one tape may hold once decoded (tensors included)
NOTE_CHARS = 300  # a note or a message from the worker, as shown in reports
NOTES = 40  # notes kept from the worker's loading of one file
