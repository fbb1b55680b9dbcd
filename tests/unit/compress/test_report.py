"""The comparison every compression stage reports: drops, compression, worst class."""

from __future__ import annotations

import pytest

from malak_pipe.compress.report import comparison_metrics, max_class_drop


def test_drops_and_compression_against_input_and_baseline():
    compressed = {"test_top1": 0.90, "size_bytes": 250, "test_per_class_top1": [0.9, 0.8, 1.0]}
    source = {"test_top1": 0.92, "size_bytes": 1000, "test_per_class_top1": [0.9, 0.95, 0.9]}
    baseline = {"test_top1": 0.95, "size_bytes": 2000, "test_per_class_top1": [1.0, 0.95, 0.9]}
    out = comparison_metrics(compressed, source, baseline)
    assert out["test_top1_drop_vs_input_pp"] == pytest.approx(2.0)
    assert out["compression_vs_input"] == pytest.approx(4.0)
    assert out["max_class_drop_pp"] == pytest.approx(15.0) and out["max_class_drop_class"] == 1
    assert out["test_top1_drop_vs_baseline_pp"] == pytest.approx(5.0)
    assert out["compression_vs_baseline"] == pytest.approx(8.0)
    assert out["max_class_drop_vs_baseline_pp"] == pytest.approx(15.0)


def test_missing_figures_are_left_out():
    out = comparison_metrics({"test_top1": 0.5, "size_bytes": 10}, {}, None)
    assert out == {}
    out = comparison_metrics({"test_top1": 0.5}, {"test_top1": 0.4}, None)
    assert out == {"test_top1_drop_vs_input_pp": pytest.approx(-10.0)}


def test_max_class_drop_skips_absent_classes_and_breaks_ties_low():
    assert max_class_drop([None, 0.5, 0.5], [0.0, 0.4, 0.4]) == (pytest.approx(10.0), 1)
    assert max_class_drop([None], [None]) is None
