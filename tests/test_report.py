"""Every result table in the READMEs is what its result files say
(`python -m experiments.report --check`), and the check can fail."""

import math

import pytest

from experiments import report, summary


def test_readme_tables_match_their_result_files():
  assert report.main(["--check"]) == 0


def test_every_table_is_published_and_every_marker_is_known():
  names = set()
  for readme in report.READMES:
    with open(f"{report.REPO_ROOT}/{readme}") as f:
      names.update(match["name"] for match in report.MARKED.finditer(f.read()))
  assert names == set(report.TABLES)


def test_a_changed_number_is_found_and_rebuilt():
  table = report.classifiers_table()
  edited = table.replace("99.24 %", "99.25 %")
  assert edited != table
  text = f"intro\n<!-- report:classifiers -->\n{edited}\n<!-- /report:classifiers -->\nend\n"
  rebuilt, changed = report.rebuild(text, "test")
  assert changed == ["classifiers"]
  assert rebuilt == f"intro\n<!-- report:classifiers -->\n{table}\n<!-- /report:classifiers -->\nend\n"
  assert report.rebuild(rebuilt, "test") == (rebuilt, [])


def test_an_unknown_table_name_is_refused():
  with pytest.raises(report.ReportError, match="unknown table 'nope'"):
    report.rebuild("<!-- report:nope -->\n<!-- /report:nope -->", "test")


def mixture_results(step):
  run = {"seed": 0, "num_train_steps": 10, "step": step, "modes": 8,
         "high_quality_fraction": 0.9, "reverse_kl": 0.01, "seconds": 60.0,
         "job_seconds": 120.0}
  return {"results": {"ring8": {"hinge": [run, {**run, "seed": 1, "step": 10}]}}}


def test_a_run_stopped_before_its_last_step_cannot_back_a_table():
  assert "| ring8 | hinge | 10 | 0–1 | 8.0 ± 0.0 | 90.0 ± 0.0 | 0.010 ± 0.000 | 2.0 |" in (
      report.mixtures_table(mixture_results(10)))
  with pytest.raises(report.ReportError, match="seed 0 stopped at step 7 of 10"):
    report.mixtures_table(mixture_results(7))


def emoji_results(step, kid_subset_size=100):
  scores = {"inception_fid": 60.0, "inception_kid": 0.05, "inception_kid_se": 0.002,
            "inception_precision": 0.5, "inception_recall": 0.25}
  cpu = {"model": "Some CPU", "avx512_bf16": True, "amx_bf16": False}
  return {"small": {"config": "configs/dcgan_emoji_small.py", "step": step,
                    "num_train_steps": 10, "training_minutes": 61.4, "cpu": cpu,
                    "inception_num_samples": 328, "inception_kid_subset_size": kid_subset_size,
                    **scores,
                    **{f"floor/{k}": v / 10 for k, v in scores.items()}}}


def test_the_emoji_table_has_the_floor_and_refuses_a_stopped_run():
  table = report.emoji_table(emoji_results(10))
  assert ("| `configs/dcgan_emoji_small.py` | 10 | 61 (Some CPU (AVX512_BF16)) | 328 | 60.0 | "
          "0.0500 ± 0.0020 | 0.500 | 0.250 |") in table
  assert "| real train vs test (floor for small) | – | – | 328 | 6.0 | 0.0050 ± 0.0002 |" in table
  # Subsets of every sample are all alike: their zero spread is not shown.
  whole = report.emoji_table(emoji_results(10, kid_subset_size=328))
  assert "| 60.0 | 0.0500 | 0.500 |" in whole and "±" not in whole
  with pytest.raises(report.ReportError, match="emoji small: stopped at step 7 of 10"):
    report.emoji_table(emoji_results(7))


def test_mean_and_standard_error():
  mean, se = summary.mean_and_standard_error([1.0, 2.0, 4.0])
  assert mean == pytest.approx(7 / 3)
  # sample variance 7/3, over n = 3
  assert se == pytest.approx(math.sqrt(7 / 9))


def test_one_seed_has_no_standard_error():
  mean, se = summary.mean_and_standard_error([0.5])
  assert mean == 0.5 and math.isnan(se)
  assert summary.format_mean_se(mean, se, ".2f") == "0.50"
  assert summary.format_mean_se(0.5, 0.25, ".2f") == "0.50 ± 0.25"
