"""The verdicts of scripts/benchreport.py (docs/benchmarks.md): what the
report says about targets must not hide a bad run or a saturated generator.
Run: python3 tests/bench/report_test.py (ctest: bench.report)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "scripts"))
import benchreport as br  # noqa: E402


def steady_run(lost, p99, gen_cpu=0.3):
    lat = {"p50": p99 / 2, "p99": p99, "p999": p99 * 2, "max": p99 * 3}
    return {"steps": [{"rate": 2000, "sent": 40000, "delivered_per_s": 18000, "lost": lost,
                       "duplicated": 0, "loss": lost / 360000, "latency_ms": lat,
                       "gen_cpu": gen_cpu, "pass": lost == 0}], "server_cpu": 0.3}


def storm_run(hs, gen_cpu, errors=0):
    return {"connected": 5000 - errors, "connect_errors": errors, "handshakes_per_s": hs,
            "handshake_ms": {"p50": 5.0, "p99": 20.0, "max": 30.0}, "gen_cpu_total": gen_cpu,
            "server_cpu": 0.5}


def verdict_rows(name, confab_runs, baseline_runs, sc=None):
    med = {kind: br.median_figures([br.figures(name, r) for r in runs])
           for kind, runs in (("confab", confab_runs), ("baseline", baseline_runs))}
    lines, verdicts = br.scenario_table(name, sc or {"title": name}, med)
    return "\n".join(lines), verdicts


class Verdicts(unittest.TestCase):
    def test_one_lossy_run_of_three_fails_steady(self):
        # the median of 0, 0 and 500 lost is 0: the report said "met"
        table, verdicts = verdict_rows(
            "steady", [steady_run(0, 0.5), steady_run(500, 0.5), steady_run(0, 0.5)],
            [steady_run(0, 0.3)] * 3)
        self.assertIn(False, verdicts)
        self.assertIn("| lost deliveries (worst run) | 500 |", table)

    def test_clean_runs_meet_steady(self):
        _, verdicts = verdict_rows("steady", [steady_run(0, 0.5)] * 3,
                                   [steady_run(0, 0.3)] * 3)
        self.assertEqual(verdicts, [True, True, True, True])

    def test_a_steady_step_failed_for_another_reason_is_not_met(self):
        # no loss, a fine p99, but the generator fell behind in one run
        bad = steady_run(0, 0.5)
        bad["steps"][0]["pass"] = False
        bad["steps"][0]["fail_reasons"] = ["generator_behind_schedule"]
        _, verdicts = verdict_rows("steady", [steady_run(0, 0.5), bad, steady_run(0, 0.5)],
                                   [steady_run(0, 0.3)] * 3)
        self.assertIn(False, verdicts)

    def test_a_saturated_generator_gives_no_verdict_on_ratios(self):
        table, verdicts = verdict_rows("storm", [storm_run(4000, 0.95)] * 3,
                                       [storm_run(3500, 0.99)] * 3)
        self.assertIn("no verdict: generator-limited", table)
        self.assertEqual(verdicts.count(None), 2)  # handshakes/s and its p99
        self.assertIn(True, verdicts)  # connect errors: 0, judged all the same

    def test_an_unsaturated_generator_gives_verdicts(self):
        _, verdicts = verdict_rows("storm", [storm_run(4000, 0.5)] * 3,
                                   [storm_run(3500, 0.6)] * 3)
        self.assertNotIn(None, verdicts)
        self.assertTrue(all(verdicts))

    def test_connect_errors_in_any_run_fail_the_storm(self):
        _, verdicts = verdict_rows("storm", [storm_run(4000, 0.5), storm_run(4000, 0.5, 3),
                                             storm_run(4000, 0.5)], [storm_run(3500, 0.6)] * 3)
        self.assertIn(False, verdicts)

    def test_a_baseline_at_the_top_of_its_ramp_is_not_generator_limited(self):
        sc = {"title": "fanout", "rates": [20, 1600]}
        med = {"baseline": {"gen_cpu_max": 0.99, "capacity_msgs": 1600}}
        self.assertIsNone(br.generator_limited("fanout", sc, med))
        med["baseline"]["capacity_msgs"] = 20
        self.assertIsNotNone(br.generator_limited("fanout", sc, med))


if __name__ == "__main__":
    unittest.main()
