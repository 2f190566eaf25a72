"""The Swift test runner's watchdog (tools/run-swift-tests.sh), run against a fake
XCTest bundle: a hanging test must become a named failure within the time limit, and
passes, failures and skips must be counted from XCTest's own lines."""

import os
import stat
import subprocess
import tempfile
import textwrap
import time
import unittest

RUNNER = os.path.join(os.path.dirname(__file__), "..", "run-swift-tests.sh")

FAKE_BUNDLE = textwrap.dedent("""\
    #!/usr/bin/env bash
    # Mimics an XCTest bundle: --list-tests, then runs "Target.Class,..." selections.
    if [ "$1" = "--list-tests" ]; then
      echo "Listing 4 tests in fake.xctest:"; echo
      echo "Good.GoodTests/testOne"; echo "Good.GoodTests/testSkip"
      echo "Bad.BadTests/testFails"; echo "Stuck.StuckTests/testHangs"
      exit 0
    fi
    case "$1" in
      Good.GoodTests)
        echo "Test Case 'GoodTests.testOne' started at now"
        echo "Test Case 'GoodTests.testOne' passed (0.001 seconds)"
        echo "Test Case 'GoodTests.testSkip' started at now"
        echo "/x/Good.swift:9: GoodTests.testSkip : Test skipped - the oracle package could not be installed"
        echo "Test Case 'GoodTests.testSkip' skipped (0.001 seconds)";;
      Bad.BadTests)
        echo "Test Case 'BadTests.testFails' started at now"
        echo "/x/Bad.swift:3: error: BadTests.testFails : XCTAssertEqual failed: (1) is not equal to (2)"
        echo "Test Case 'BadTests.testFails' failed (0.001 seconds)"
        exit 1;;
      Stuck.StuckTests)
        echo "Test Case 'StuckTests.testHangs' started at now"
        exec sleep 600;;
    esac
    """)


class RunSwiftTestsWatchdogTests(unittest.TestCase):
    def test_hang_is_named_and_counts_are_summed(self):
        with tempfile.TemporaryDirectory() as folder:
            bundle = os.path.join(folder, "fake.xctest")
            with open(bundle, "w") as handle:
                handle.write(FAKE_BUNDLE)
            os.chmod(bundle, stat.S_IRWXU)
            started = time.monotonic()
            run = subprocess.run(["bash", RUNNER, bundle], capture_output=True, text=True,
                                 env=dict(os.environ, PRECLAB_TEST_TIMEOUT="3"), timeout=120)
            elapsed = time.monotonic() - started
        out = run.stdout
        self.assertNotEqual(run.returncode, 0, out)
        self.assertLess(elapsed, 60, "the watchdog did not stop the hung target in time")
        self.assertIn("HANG: Stuck ran past 3 s and was killed; still running: StuckTests.testHangs", out)
        self.assertIn("FAIL: Bad", out)
        self.assertIn("XCTAssertEqual failed", out)
        self.assertIn("skipped GoodTests.testSkip: the oracle package could not be installed", out)
        self.assertIn("Good: 1 passed, 0 failed, 1 skipped", out)
        self.assertTrue(out.rstrip().endswith("swift tests: 1 passed, 2 failed, 1 skipped"), out)


if __name__ == "__main__":
    unittest.main()
