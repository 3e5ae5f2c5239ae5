"""A user's own PyTorch space and blocks: validated by a forward pass, costed per block, fingerprinted."""

from functools import partial

import pytest
import torch
from torch import nn

from blocknas.workers.costs import analytic_costs
from blocknas.workers.profiling import count_flops, count_params
from blocknas.workers.spaces import SearchSpaceError, TorchSlot, TorchSpace, space_from_dict


class Widen(nn.Module):
    """A block of the user's own, taking the builder signature of cnn spaces: (in, out, stride)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, 1)

    def forward(self, x):
        return torch.relu(self.conv(x))


def make_space(width: int = 4, bad_slot: bool = False, head_classes: int = 3) -> TorchSpace:
    candidates = {
        "skip": nn.Identity,
        "conv": partial(nn.Conv2d, width, width, 3, padding=1),
        "wide": lambda: nn.Sequential(nn.Conv2d(width, 2 * width, 1), nn.Conv2d(2 * width, width, 1)),
    }
    if bad_slot:
        candidates["shrink"] = partial(nn.Conv2d, width, width, 3)  # no padding: 6x6 -> 4x4
    return TorchSpace(
        name="tiny",
        input_shape=(1, 6, 6),
        num_classes=3,
        stem=lambda: nn.Conv2d(1, width, 3, padding=1),
        slots=[TorchSlot("a", candidates), TorchSlot("b", candidates)],
        head=lambda: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, head_classes)),
    )


SPEC = {"kind": "torch", "factory": f"{__name__}:make_space", "options": {"width": 4}}


def test_a_torch_space_from_its_factory_builds_networks_and_additive_costs():
    space = space_from_dict(SPEC)
    assert space.num_networks == 9 and space.base == ("skip", "skip") and space.slot_input_shape(1) == (1, 4, 6, 6)
    net = space.build_network(("conv", "wide"))
    assert net(torch.zeros(2, 1, 6, 6)).shape == (2, 3)
    for metric, whole in (("flops", count_flops(net, space.input_shape)), ("params", count_params(net))):
        assert analytic_costs(space, metric).total(("conv", "wide")) == whole


@pytest.mark.parametrize(
    "options,message",
    [
        ({"bad_slot": True}, "slot 'a': its candidates give different output shapes"),
        ({"head_classes": 5}, r"the head gives shape \[1, 5\], expected \[batch, num_classes\] = \[1, 3\]"),
        ({"colour": 1}, "does not take space.options"),
    ],
)
def test_a_space_whose_blocks_do_not_fit_is_refused(options, message):
    with pytest.raises(SearchSpaceError, match=message):
        space_from_dict({**SPEC, "options": options})


def test_bad_torch_specs_are_refused():
    with pytest.raises(SearchSpaceError, match="space.factory: cannot import 'nope'"):
        space_from_dict({**SPEC, "factory": "nope:make"})
    with pytest.raises(SearchSpaceError, match="returned dict, not a TorchSpace"):
        space_from_dict({**SPEC, "factory": "builtins:dict", "options": {"a": 1}})
    with pytest.raises(ValueError, match="unknown config key 'space.factroy' \\(did you mean 'factory'\\?\\)"):
        space_from_dict({**SPEC, "factroy": "x"})


def test_the_fingerprint_follows_the_modules_and_a_worker_with_other_code_is_refused():
    fingerprint = space_from_dict(SPEC).fingerprint()
    assert space_from_dict(SPEC).fingerprint() == fingerprint
    assert space_from_dict({**SPEC, "options": {"width": 5}}).fingerprint() != fingerprint
    assert space_from_dict({**SPEC, "fingerprint": fingerprint}).fingerprint() == fingerprint
    with pytest.raises(SearchSpaceError, match="builds other modules"):
        space_from_dict({**SPEC, "fingerprint": "0" * 16})


def test_cnn_spaces_take_registered_and_imported_blocks():
    spec = {
        "kind": "cnn",
        "name": "own",
        "input_channels": 1,
        "input_size": 8,
        "num_classes": 10,
        "stem_channels": 4,
        "slots": [
            {
                "name": "s0",
                "in_channels": 4,
                "out_channels": 8,
                "stride": 2,
                "choices": ["resnet_basic", f"{__name__}:Widen", f"{__name__}.Widen"],
            }
        ],
    }
    space = space_from_dict(spec)
    for choice in space.slots[0].choices:
        out = space.build_block(0, choice)(torch.zeros(1, 4, 8, 8))
        assert out.shape == (1, 8, 4, 4)
    with pytest.raises(SearchSpaceError, match="unknown block .resnet_basci. \\(did you mean .resnet_basic."):
        space_from_dict({**spec, "slots": [{**spec["slots"][0], "choices": ["resnet_basci"]}]})
