"""The one table of value rules (`utils.rules.RULES`): each script's keys exist in that script's config, each
example passes its own rule, and a value just outside is refused in the one wording every script shares. The
scripts' own refusals of these values run in test_cli_errors, test_serve, test_export, test_baseline,
test_run_analysis and test_search; train.py's table in test_config."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from emo_lightning.utils.errors import ConfigError
from emo_lightning.utils.rules import RULES, check_value, check_values, render
from hydra_plugins.emo_optuna_sweeper.emo_optuna_sweeper import EmoOptunaSweeperConf
from tests.test_config import outside

CONF = Path(__file__).resolve().parents[1] / "conf"
SCRIPT_CONFIGS = {
    "predict.py": "predict",
    "serve.py": "serve",
    "analyze.py": "analyze",
    "export.py": "export",
    "evaluate.py": "evaluate",
}


def script_defaults(script: str):
    """The keys a script reads with their defaults: its conf/<script>.yaml, or the sweeper's config class."""
    if script == "sweeper":
        return OmegaConf.create({"hydra": {"sweeper": dataclasses.asdict(EmoOptunaSweeperConf())}})
    return OmegaConf.load(CONF / f"{SCRIPT_CONFIGS[script]}.yaml")


CASES = [(script, key) for script, table in RULES.items() if script != "train.py" for key in table]


@pytest.mark.parametrize(("script", "key"), CASES, ids=[f"{s}:{k}" for s, k in CASES])
def test_each_rule_names_a_key_its_script_reads_and_refuses_outside_its_range(script, key):
    rule = RULES[script][key]
    defaults = script_defaults(script)
    assert OmegaConf.select(defaults, key, default="absent") != "absent", f"{script} has no {key}: fix the rule"
    assert rule.allows(OmegaConf.select(defaults, key)), f"{script}: the default {key} breaks its own rule"
    example = OverridesParser.create().parse_override(f"{key}={rule.example}").value()  # as the CLI reads it
    assert rule.allows(example), f"{key}: the example {rule.example} breaks its own rule"
    value = outside(rule)
    OmegaConf.update(defaults, key, value)
    expected = f"{key}={render(value)} must be {rule.text(value)}: e.g. {key}={rule.example}"
    with pytest.raises(ConfigError) as info:
        check_values(defaults, RULES[script])
    assert str(info.value) == expected
    with pytest.raises(ConfigError) as info:
        check_value(key, value, RULES[script])
    assert str(info.value) == expected


def test_a_group_is_checked_by_its_own_rules_only():
    analyze = OmegaConf.load(CONF / "analyze.yaml")
    analyze.umap.n_neighbors = 1  # another group's bad value: not this check's business
    check_values(analyze.errors, RULES["analyze.py"], under="errors")
    with pytest.raises(ConfigError, match=r"^umap.n_neighbors=1 must be an int ≥ 2: e.g. umap.n_neighbors=15$"):
        check_values(analyze.umap, RULES["analyze.py"], under="umap")


def test_the_threshold_reads_the_same_in_predict_serve_and_the_python_api():
    from emo_lightning.inference.predictor import check_threshold

    messages = set()
    for check in (
        lambda: check_values({"threshold": 1.5}, RULES["predict.py"]),
        lambda: check_values({"threshold": 1.5}, RULES["serve.py"]),
        lambda: check_threshold(1.5),
    ):
        with pytest.raises(ConfigError) as info:
            check()
        messages.add(str(info.value))
    assert messages == {
        "threshold=1.5 must be > 0 and < 1, or null for the thresholds saved with the model: e.g. threshold=0.5"
    }
