"""The grading service under the commands (grader/commands/ parse arguments, call it, print):
who the students of a class are and which files are theirs (:mod:`~grader.grading.discovery`), a
file's SHA-256 (:mod:`~grader.grading.hashing`), which slice of the class a machine grades
(:mod:`~grader.grading.sharding`), what a grading is asked to do (:mod:`~grader.grading.options`),
submission files graded in a worker (:mod:`~grader.grading.submissions`), each distinct file graded
once per batch (:mod:`~grader.grading.dedup`), one student graded into their record
(:mod:`~grader.grading.student`), a batch resumed from its last report
(:mod:`~grader.grading.resume`), its progress (:mod:`~grader.grading.progress`) and CPU time
(:mod:`~grader.grading.cpu_clock`), a whole class graded into a gradebook
(:mod:`~grader.grading.class_batch`), and how a class is fetched from its repositories
(:mod:`~grader.grading.fetch`)."""
