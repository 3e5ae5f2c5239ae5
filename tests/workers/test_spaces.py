import pytest
import torch

from blocknas.orchestrator.config import load_settings
from blocknas.workers.spaces import CnnSpace, SearchSpaceError, decode_block

CONFIGURED_SPACES = ["mnist_cnn", "smoke_cnn"]


@pytest.mark.parametrize("space_name", CONFIGURED_SPACES)
def test_every_block_of_every_configured_space_runs_forward_and_backward(space_name):
    space = load_settings([f"space={space_name}"]).space
    for i, slot in enumerate(space.slots):
        for choice in slot.choices:
            block = space.build_block(i, choice)
            x = torch.randn(space.slot_input_shape(i)).repeat(2, 1, 1, 1).requires_grad_()
            out = block(x)
            _, c, h, w = space.slot_input_shape(i + 1) if i + 1 < len(space.slots) else space.head_input_shape()
            assert out.shape == (2, c, h, w), slot.key(choice)
            out.sum().backward()
            assert x.grad is not None


def test_block_keys_are_stable_and_unique():
    space = load_settings(["space=mnist_cnn"]).space
    keys = [slot.key(c) for slot in space.slots for c in slot.choices]
    assert len(keys) == len(set(keys)) == 16
    assert keys[0] == "s0:skip"
    assert space.num_networks == 256


def test_network_output_is_logits_per_class():
    space = load_settings(["space=mnist_cnn"]).space
    net = space.build_network([s.choices[-1] for s in space.slots])
    assert net(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


@pytest.mark.parametrize("bad", ["conv_k4", "mbconv_k3", "pool", "mbconv_k3_e0", ""])
def test_bad_block_strings_name_the_grammar(bad):
    with pytest.raises(ValueError, match="kernel|expansion|expected skip"):
        decode_block(bad)


def test_space_validation_names_the_slot_and_the_fix():
    spec = {
        "name": "x",
        "input_channels": 1,
        "input_size": 28,
        "num_classes": 10,
        "stem_channels": 8,
        "slots": [{"name": "a", "in_channels": 8, "out_channels": 16, "stride": 2, "choices": ["skip"]}],
    }
    with pytest.raises(SearchSpaceError, match="slot 'a'.*skip"):
        CnnSpace.from_dict(spec)
    spec["slots"][0] |= {"in_channels": 4, "choices": ["conv_k3"]}
    with pytest.raises(SearchSpaceError, match="set in_channels: 8"):
        CnnSpace.from_dict(spec)
