"""The URN's minibatch and activity-term reading: one choice in the schema, the scenarios and the docs.

Eq. 5 puts the 1/N on the cross-entropy only, so the activity term is summed
over a minibatch's samples; the paper gives no minibatch size, so it is 32.
Every URN scenario states both, and docs/urn.md says the same.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from neurograph.urn.scenario import LossConfig, TrainingConfig

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((ROOT / "scenarios").glob("urn_*.yaml"))


def test_schema_defaults_follow_the_paper_text_and_say_why():
    assert TrainingConfig().batch_size == 32
    assert LossConfig().activity_reduction == "sum"
    assert LossConfig().synapse_pairs == "all"
    batch = TrainingConfig.model_fields["batch_size"].description
    assert "gives none" in batch and "32" in batch
    assert "eq. 5 as printed" in LossConfig.model_fields["activity_reduction"].description
    assert "i<j" in LossConfig.model_fields["synapse_pairs"].description


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_every_scenario_states_the_default_reading(path):
    data = yaml.safe_load(path.read_text())
    assert data["training"]["batch_size"] == TrainingConfig().batch_size
    assert data["loss"]["activity_reduction"] == LossConfig().activity_reduction


def test_docs_state_the_same_choices():
    table = {
        line.split("|")[1].strip(): line
        for line in (ROOT / "docs" / "urn.md").read_text().splitlines()
        if line.startswith("| ") and line.count("|") >= 5
    }
    assert "| 32 |" in table["minibatch"] and "`training.batch_size`" in table["minibatch"]
    assert "`sum`" in table["activity L1 over a minibatch"].split("|")[2]
    assert "`all`" in table["synapse sum"].split("|")[2] and "`loss.synapse_pairs`" in table["synapse sum"]
