"""Real training on real MNIST digits: a few steps, seeded and deterministic on CPU."""

from blocknas.orchestrator.config import load_settings
from blocknas.workers.data import load_dataset
from blocknas.workers.records import NetworkJob, TrainSettings
from blocknas.workers.scoring import score_network

SMOKE = load_settings(["experiment=smoke"])


def _job(steps: int, seed: int = 0) -> NetworkJob:
    settings = TrainSettings(
        steps=steps, batch_size=32, lr=0.02, weight_decay=1e-4, seed=seed, train_size=1000, val_size=500
    )
    return NetworkJob("h", SMOKE.space_definition, ("conv_k3", "conv_k3"), settings, "cpu")


def test_split_is_disjoint_and_covers_all_classes():
    split = load_dataset({"kind": "mnist"}).split(4000, 1000, seed=0)
    assert split.train_x.shape == (4000, 1, 28, 28) and split.val_x.shape == (1000, 1, 28, 28)
    assert set(split.val_y.tolist()) == set(range(10))
    assert 0.0 <= float(split.train_x.min()) and float(split.train_x.max()) <= 1.0
    train_rows = {bytes(x.numpy().tobytes()) for x in split.train_x[:500]}
    assert not any(bytes(x.numpy().tobytes()) in train_rows for x in split.val_x)


def test_training_learns_beyond_chance():
    untrained, trained = score_network(_job(1)), score_network(_job(120))
    assert trained.loss < untrained.loss
    assert trained.accuracy > 60.0, trained  # chance is 10 %
    assert trained.params > 0 and trained.flops > 0 and trained.device == "cpu"


def test_same_job_gives_identical_results_and_another_seed_does_not():
    first, second, other_seed = score_network(_job(15)), score_network(_job(15)), score_network(_job(15, seed=1))
    assert (first.accuracy, first.loss, first.train_loss) == (second.accuracy, second.loss, second.train_loss)
    assert (first.loss, first.train_loss) != (other_seed.loss, other_seed.train_loss)
