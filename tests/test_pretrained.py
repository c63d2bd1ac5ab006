"""conv_course.pretrained: the shipped, checksummed glyph backbone and its reproduction script."""

import os
import shutil

import pytest
import torch

from conv_course import data, glyphs, models, pretrained, train


def test_shipped_weights_are_small_and_checksummed():
    assert os.path.getsize(pretrained.WEIGHTS) < 5_000_000
    with open(pretrained.WEIGHTS.replace(".pt", ".sha256")) as f:
        assert f.read().split()[0] == data.sha256_of(pretrained.WEIGHTS)


def test_loaded_backbone_recognises_fresh_glyphs():
    model = pretrained.load_backbone()
    assert isinstance(model, models.Backbone) and not model.training
    assert model.head.out_features == len(glyphs.CLASSES)
    fresh = glyphs.glyph_dataset(300, seed=987)  # a seed pretraining never drew from
    assert train.evaluate(model, fresh, device="cpu") > 0.8  # chance is 1/140


def test_load_backbone_can_replace_the_head():
    full = pretrained.load_backbone()
    digits = pretrained.load_backbone(num_classes=10)
    assert digits.head.out_features == 10
    for (n, a), b in zip(full.features.state_dict().items(), digits.features.state_dict().values()):
        assert torch.equal(a, b), n


def test_load_backbone_refuses_a_modified_file(tmp_path):
    path = tmp_path / "backbone.pt"
    shutil.copy(pretrained.WEIGHTS, path)
    shutil.copy(pretrained.WEIGHTS.replace(".pt", ".sha256"), tmp_path / "backbone.sha256")
    pretrained.load_backbone(path=str(path))  # the intact copy loads
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(RuntimeError, match="corrupted or was replaced"):
        pretrained.load_backbone(path=str(path))


def test_load_backbone_names_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m conv_course.pretrained"):
        pretrained.load_backbone(path=str(tmp_path / "none.pt"))


def test_the_script_writes_weights_that_load(tmp_path, capsys):
    out = tmp_path / "w" / "bb.pt"
    assert pretrained.main(["--steps", "3", "--batch-size", "8", "--out", str(out), "--eval-samples", "20",
                            "--threads", str(torch.get_num_threads()), "--quiet", "--device", "cpu"]) == 0
    assert "accuracy on 20 fresh glyphs" in capsys.readouterr().out
    model = pretrained.load_backbone(path=str(out))
    assert isinstance(model, models.Backbone)
