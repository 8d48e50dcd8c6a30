"""Between the commands and what they grade: who the students of a class are and which files are
theirs (:mod:`~grader.grading.discovery`), which slice of the class a machine grades, and how a
class is fetched from its repositories (:mod:`~grader.grading.fetch`)."""
