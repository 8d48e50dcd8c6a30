"""Auto-grader for the course *Activation Functions in PyTorch*.

``python -m grader SUBMISSION...`` grades notebooks or .py files against torch; see README.md.
"""
__version__ = "0.1.0"
