# The one way a Python test file reports to tests/run_all.sh: each case is recorded here as
# passed, failed or skipped, and the file ends with the line `RESULT passed=N failed=M skipped=K`
# that run_all.sh adds to `make test`'s count. Used by every tests/{abuse,e2e}/*_test.py.
import sys


class Skip(Exception):
    """Raised by a case that cannot run here (e.g. the server offers no limit to test): it
    is counted as skipped, never as passed."""


class Report:
    def __init__(self):
        self.passed = []
        self.failed = []
        self.skipped = []

    def record(self, case_id, ok):
        (self.passed if ok else self.failed).append(case_id)

    def skip(self, case_id):
        self.skipped.append(case_id)

    def result_line(self):
        return f"RESULT passed={len(self.passed)} failed={len(self.failed)} skipped={len(self.skipped)}"

    def finish(self, extra_failure=None):
        """Prints the closing lines; returns the exit status (1 on any failure). An
        extra_failure (e.g. the server's own exit status) fails the file without being a case."""
        if self.failed:
            print("failed: " + " ".join(str(c) for c in self.failed), flush=True)
        if extra_failure:
            print("file failed: " + extra_failure, flush=True)
        print(self.result_line(), flush=True)
        return 1 if self.failed or extra_failure else 0


def exit_with(report, extra_failure=None):
    sys.exit(report.finish(extra_failure))
