"""Loading the released checkpoint: key conversion and the errors for foreign files.

Most tests build a released-layout state dict from a randomly initialised network (by
inverting the rename table), so they run without ../shared.
"""

from __future__ import annotations

import pytest
import torch

from iea_data.core.errors import IeaError
from iea_data.core.model import PIEANET_CFG, PIEANet, create_model, official_weights_path, sha256_file
from iea_data.core.model._convert import _all_released_keys, _convert_official, _ours_to_released

from .conftest import official_path


@pytest.fixture(scope="module")
def released_state():
    """A state dict in the released key layout (random values, right shapes)."""
    torch.manual_seed(0)
    ours = PIEANet().state_dict()
    names = _ours_to_released()
    state = {names[k]: v.clone() for k, v in ours.items()}
    state["fusion.blur_conv.0.weight"] = torch.zeros(3, 3, 3, 3)  # unused by the release
    state["fusion.blur_conv.0.bias"] = torch.zeros(3)
    state["fusion.blur_conv.2.weight"] = torch.zeros(1, 3, 3, 3)
    state["fusion.blur_conv.2.bias"] = torch.zeros(1)
    return state


def _save(tmp_path, state, name="ckpt.pth"):
    path = tmp_path / name
    torch.save(state, path)
    return path


def test_released_key_list_matches_the_published_one():
    listed = official_path("state_dict_keys.txt").read_text().split("\n")
    published = [line.split(" ")[0] for line in listed if line.strip()]
    assert sorted(_all_released_keys()) == sorted(published)
    assert len(published) == 472


def test_official_checkpoint_loads_and_hash_matches():
    path = official_path("official_epoch2.pth")
    assert sha256_file(path) == PIEANET_CFG.sha256
    model = PIEANet.from_official(path)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert torch.equal(
        model.structure.transformer[3].decoder.layers[0].multihead_attn.in_proj_weight,
        raw["encoder.transformer3.transformer.decoder.layers.0.multihead_attn.in_proj_weight"],
    )
    assert torch.equal(model.dwt_high[2].weight, raw["High_3.conv.weight"])
    assert torch.equal(model.merge[4].bias, raw["fusion.tail_conv.4.bias"])
    assert not model.training


def test_conversion_round_trip(released_state, tmp_path):
    converted = _convert_official(released_state)
    assert not any(k.startswith("fusion.blur_conv") for k in converted)
    model = PIEANet.from_official(_save(tmp_path, released_state))
    names = _ours_to_released()
    for key, value in model.state_dict().items():
        assert torch.equal(value, released_state[names[key]]), key


def test_wrapped_and_dataparallel_checkpoints_load(released_state, tmp_path):
    wrapped = {"state_dict": {f"module.{k}": v for k, v in released_state.items()}}
    model = PIEANet.from_official(_save(tmp_path, wrapped))
    assert torch.equal(model.ffa.head.weight, released_state["ffa_group.pre.0.weight"])


def test_missing_key_is_named(released_state, tmp_path):
    state = dict(released_state)
    del state["encoder.fusion4.conv.bias"]
    with pytest.raises(IeaError, match=r"'encoder\.fusion4\.conv\.bias' is missing"):
        PIEANet.from_official(_save(tmp_path, state))


def test_wrong_shape_is_named(released_state, tmp_path):
    state = dict(released_state)
    state["ffa_group.g2.gp.1.conv2.weight"] = torch.zeros(64, 64, 5, 5)
    with pytest.raises(
        IeaError, match=r"'ffa_group\.g2\.gp\.1\.conv2\.weight' has shape \(64, 64, 5, 5\), expected \(64, 64, 3, 3\)"
    ):
        PIEANet.from_official(_save(tmp_path, state))


def test_unexpected_key_is_named(released_state, tmp_path):
    state = dict(released_state)
    state["head.fc.weight"] = torch.zeros(3)
    with pytest.raises(IeaError, match=r"unexpected key 'head\.fc\.weight'"):
        PIEANet.from_official(_save(tmp_path, state))


def test_other_network_checkpoint_is_refused(tmp_path):
    path = _save(tmp_path, torch.nn.Linear(3, 2).state_dict())
    with pytest.raises(IeaError, match="not a released P-IEANet checkpoint"):
        PIEANet.from_official(path)


@pytest.mark.parametrize("content", [b"not a checkpoint\n", b"", b"\x89PNG\r\n\x1a\n0000"])
def test_non_torch_file_says_so(tmp_path, content):
    path = tmp_path / "weights.pth"
    path.write_bytes(content)
    with pytest.raises(IeaError, match="is not a PyTorch checkpoint"):
        PIEANet.from_official(path)


def test_pickle_with_objects_is_refused(tmp_path):
    import pickle

    path = tmp_path / "obj.pth"
    path.write_bytes(pickle.dumps({"model": object}, protocol=2))
    with pytest.raises(IeaError, match="refused"):
        PIEANet.from_official(path)


def test_corrupt_zip_is_reported(tmp_path):
    import zipfile

    path = tmp_path / "broken.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.txt", "hi")
    with pytest.raises(IeaError, match="not a readable PyTorch checkpoint"):
        PIEANet.from_official(path)


def test_torch_file_without_state_dict(tmp_path):
    path = _save(tmp_path, torch.zeros(3))
    with pytest.raises(IeaError, match="not a state dict"):
        PIEANet.from_official(path)


def test_missing_file(tmp_path):
    with pytest.raises(IeaError, match="does not exist"):
        PIEANet.from_official(tmp_path / "nope.pth")


def test_weights_env_var(monkeypatch, tmp_path, released_state):
    monkeypatch.setenv("IEA_PIEANET_WEIGHTS", str(tmp_path / "absent.pth"))
    with pytest.raises(IeaError, match="IEA_PIEANET_WEIGHTS"):
        official_weights_path()
    # a file that exists but is not the official release is refused by weights="official"
    path = _save(tmp_path, released_state)
    monkeypatch.setenv("IEA_PIEANET_WEIGHTS", str(path))
    assert official_weights_path() == path
    with pytest.raises(IeaError, match="sha256"):
        create_model("pieanet", weights="official")
    # ... and loaded deliberately by path
    assert isinstance(create_model("pieanet", weights=path), PIEANet)


def test_absent_weights_error_says_what_to_do(monkeypatch, tmp_path):
    import iea_data.core.model._config as cfg

    monkeypatch.delenv("IEA_PIEANET_WEIGHTS", raising=False)
    monkeypatch.setattr(cfg, "_SHARED_WEIGHTS", tmp_path / "official_epoch2.pth")
    with pytest.raises(IeaError, match="IEA_PIEANET_WEIGHTS=/path/to/official_epoch2.pth"):
        official_weights_path()


def test_default_location_is_shared(monkeypatch):
    monkeypatch.delenv("IEA_PIEANET_WEIGHTS", raising=False)
    expected = official_path("official_epoch2.pth")
    assert official_weights_path() == expected.resolve()


def test_sha256_file(tmp_path):
    path = tmp_path / "abc"
    path.write_bytes(b"abc")
    assert sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
