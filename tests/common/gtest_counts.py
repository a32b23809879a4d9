# Reads one GoogleTest XML report and prints "passed failed skipped" for tests/run_all.sh.
# gtest 1.12 marks a GTEST_SKIP case result="skipped" with a <skipped> element and a
# DISABLED_ one status="notrun"; both count as skipped, a case with <failure>/<error> as failed.
import sys
import xml.etree.ElementTree as ET

passed = failed = skipped = 0
for case in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    if case.find("failure") is not None or case.find("error") is not None:
        failed += 1
    elif (case.get("result") in ("skipped", "suppressed") or case.get("status") == "notrun"
          or case.find("skipped") is not None):
        skipped += 1
    else:
        passed += 1
print(passed, failed, skipped)
