"""Unit tests of bench/benchlib.py: the statistics every report prints (ties, spreads,
the busy flag, the served mark) and the regimes. No timing, no servers."""
import os
import subprocess
import sys
import unittest

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, BENCH)
import benchlib as B  # noqa: E402


class Ratio(unittest.TestCase):
    def test_overlapping_ranges_are_a_tie(self):
        self.assertEqual(B.ratio([9, 10, 11], [10, 11, 12]), "0.91× (tie)")

    def test_apart_ranges_are_a_verdict(self):
        self.assertEqual(B.ratio([5, 6, 7], [10, 11, 12]), "0.55×")

    def test_one_run_gives_no_verdict(self):
        self.assertEqual(B.ratio([5], [10, 10]), "0.50× (one run: no verdict)")

    def test_missing_figures(self):
        self.assertEqual(B.ratio([None], [1, 2]), "-")
        self.assertEqual(B.ratio([1, 2], [0, 0]), "-")


class Cells(unittest.TestCase):
    def test_median_with_spread(self):
        self.assertEqual(B.with_spread([3, 1, 2]), "2 (1–3)")
        self.assertEqual(B.with_spread([0.5, 0.25], 2, 100), "37.50 (25.00–50.00)")
        self.assertEqual(B.with_spread([]), "-")

    def test_busy_flag_only_for_saturated_rows(self):
        self.assertIn("not saturated", B.busy_cell([0.5, 0.6], True))
        self.assertNotIn("not saturated", B.busy_cell([0.5, 0.6], False))
        self.assertNotIn("not saturated", B.busy_cell([0.95, 0.97], True))

    def test_served_mark_names_the_worst_run(self):
        runs = [{"served": (1000, 1000)}, {"served": (412, 1000)}, {"served": (900, 1000)}]
        self.assertEqual(B.served_cell(runs), "served 412 of 1000")
        self.assertEqual(B.served_cell([{"served": (5, 5)}, {"served": None}]), "")

    def test_served_from_echo_bench_json(self):
        res = {"connections": 1000, "fairness": {"connections": 998, "unserved": 3}}
        self.assertEqual(B.served(res), (995, 998))
        self.assertIsNone(B.served({"fairness": None}))


class Regimes(unittest.TestCase):
    def test_streams_are_saturated_as_they_are(self):
        for c in B.STREAMS:
            self.assertEqual(B.regimes_of(c), ["saturated"])
            self.assertEqual(B.case_args(c, True), B.case_args(c, False))

    def test_saturated_ping_pong_is_pipelined(self):
        for c in B.SATURATE:
            self.assertEqual(B.regimes_of(c), ["unsaturated", "saturated"])
            self.assertIn("--depth", B.case_args(c, True))
            self.assertNotIn("--depth", B.case_args(c, False))


class Scripts(unittest.TestCase):
    def test_scale_dry_run_says_what_this_machine_can_do(self):
        out = subprocess.run([os.path.join(BENCH, "scale"), "--dry-run", "--workers", "1"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("N=1: echod -w 1", out.stdout)

    def test_all_dry_run_lists_every_part(self):
        out = subprocess.run([os.path.join(BENCH, "all"), "--dry-run", "--quick"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        for part in ("bench/backends", "bench/scale", "bench/compare"):
            self.assertIn(part, out.stdout)


if __name__ == "__main__":
    unittest.main()
