# `pytest --submission PATH` grades a submission from the repository root (see grader/plugin.py).
pytest_plugins = ["grader.plugin"]
