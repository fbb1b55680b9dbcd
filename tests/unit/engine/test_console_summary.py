"""The console shows what each stage class declares in ``summary``; it knows no stage names."""

from __future__ import annotations

from malak_pipe.cli.console import format_metric, key_metrics

TEMPLATES = {
    "test_top1": "top1 {:.2%}",
    "test_top1_drop_vs_baseline_pp": "drop {:+.2f}pp",
    "size_bytes": "{:bytes}",
    "instructions_per_inference": "instr {:M}",
    "self_check_ok": "self-check {:passed|FAILED}",
}


def test_templates_format_like_the_tables():
    assert format_metric("top1 {:.2%}", 0.98051) == "top1 98.05%"
    assert format_metric("{:bytes}", 363_300) == "363.3 kB"
    assert format_metric("{:bytes}", 1_837_829) == "1.8 MB"
    assert format_metric("{:bytes}", 512) == "512 B"
    assert format_metric("instr {:M}", 548_805) == "instr 0.55 M"
    assert format_metric("self-check {:passed|FAILED}", False) == "self-check FAILED"
    assert format_metric("drop {:+.2f}pp", 0.84) == "drop +0.84pp"


def test_declared_order_missing_metrics_skipped_and_the_limit():
    metrics = {"size_bytes": 97_400, "test_top1": 0.9805, "instructions_per_inference": 1e6, "self_check_ok": True}
    assert key_metrics(metrics, TEMPLATES, limit=3) == "top1 98.05%, 97.4 kB, instr 1.00 M"


def test_a_template_that_does_not_fit_shows_the_value():
    assert format_metric("top1 {:.2%}", "n/a") == "n/a"


def test_an_undeclared_stage_shows_its_first_scalars():
    assert key_metrics({"curve": [1, 2], "value": 12, "name": "x"}, None) == "value 12, name x"
