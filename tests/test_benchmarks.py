"""The step benchmark's bookkeeping: its shares of the matmul peak."""

import importlib.util
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def step_suite():
  spec = importlib.util.spec_from_file_location(
      "step_suite", os.path.join(REPO, "benchmarks", "step_suite.py"))
  module = importlib.util.module_from_spec(spec)
  sys.modules[spec.name] = module  # its dataclasses look their module up
  spec.loader.exec_module(module)
  return module


def report(window_peaks=None):
  case = {"variants": {"xla": {"rates": [1.0, 2.0, 4.0], "steps_per_sec": 2.0,
                               "reference_flops": 10.0}}}
  if window_peaks is not None:
    case["window_matmul_peaks"] = window_peaks
  return {"matmul_peak_flops_by_dtype": {"float32": 40.0}, "cases": {"c": case}}


def test_fraction_is_the_median_of_per_window_ratios(step_suite):
  # Window ratios (rate x 10 FLOPs / peak) 1, 2 and 0.5: median 1. One peak
  # for the run (40) would give the median rate 2 x 10 / 40 = 0.5 instead.
  peaks = [{"float32": 10.0, "bfloat16": 5.0}, {"float32": 10.0, "bfloat16": 5.0},
           {"float32": 80.0, "bfloat16": 40.0}]
  r = report(peaks)
  step_suite.add_fractions(r)
  result = r["cases"]["c"]["variants"]["xla"]
  assert result["fraction_of_matmul_peak"] == pytest.approx(1.0)
  assert result["fraction_of_bf16_matmul_peak"] == pytest.approx(2.0)


def test_a_drifting_peak_cancels(step_suite):
  # The machine doubles its speed each window: step rate and peak together.
  r = report([{"float32": 10.0}, {"float32": 20.0}, {"float32": 40.0}])
  step_suite.add_fractions(r)
  assert r["cases"]["c"]["variants"]["xla"]["fraction_of_matmul_peak"] == pytest.approx(1.0)


def test_reports_without_window_peaks_use_the_run_peak(step_suite):
  r = report()
  step_suite.add_fractions(r)
  assert r["cases"]["c"]["variants"]["xla"]["fraction_of_matmul_peak"] == pytest.approx(0.5)
  assert "fraction_of_bf16_matmul_peak" not in r["cases"]["c"]["variants"]["xla"]
