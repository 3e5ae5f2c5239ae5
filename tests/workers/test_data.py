"""Data loaders: the built-in datasets and the user's files load, or fail naming the file and the fix."""

import numpy as np
import pytest

from blocknas.workers.data import DataError, check_fits, data_settings, load_dataset


def test_shipped_datasets_have_their_shapes():
    mnist, digits = load_dataset({"kind": "mnist"}), load_dataset({"kind": "digits"})
    assert mnist.shape == (1, 28, 28) and len(mnist.labels) == 5000 and mnist.num_classes == 10
    assert digits.shape == (1, 8, 8) and len(digits.labels) == 1797 and digits.num_classes == 10
    assert 0.0 <= digits.images.min() and digits.images.max() <= 1.0
    split = digits.split(1000, 700, seed=0)
    assert split.train_x.shape == (1000, 1, 8, 8) and split.val_y.shape == (700,)
    with pytest.raises(DataError, match="exceeds the 1797 examples of dataset 'digits'"):
        digits.split(1500, 500, seed=0)


def test_npz_and_csv_files_load_and_their_fingerprint_follows_the_content(tmp_path):
    rng = np.random.default_rng(0)
    images, labels = rng.random((40, 2, 4, 4)).astype(np.float32), rng.integers(0, 3, 40)
    np.savez(tmp_path / "a.npz", x=images, y=labels)
    a = load_dataset({"kind": "npz", "path": str(tmp_path / "a.npz")})
    assert a.shape == (2, 4, 4) and np.allclose(a.images, images) and a.num_classes == int(labels.max()) + 1
    (tmp_path / "moved").mkdir()
    np.savez(tmp_path / "moved" / "b.npz", x=images, y=labels)
    assert load_dataset({"kind": "npz", "path": str(tmp_path / "moved" / "b.npz")}).fingerprint() == a.fingerprint()
    np.savez(tmp_path / "c.npz", x=images, y=(labels + 1) % 3)
    assert load_dataset({"kind": "npz", "path": str(tmp_path / "c.npz")}).fingerprint() != a.fingerprint()

    rows = ["label," + ",".join(f"p{i}" for i in range(9))]
    rows += [f"{i % 2}," + ",".join(str(i + j) for j in range(9)) for i in range(6)]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    d = load_dataset({"kind": "csv", "path": str(tmp_path / "d.csv"), "shape": [3, 3], "scale": 0.5})
    assert d.shape == (1, 3, 3) and d.images[1, 0, 0, 0] == 0.5 and list(d.labels) == [0, 1, 0, 1, 0, 1]


@pytest.mark.parametrize(
    "spec,message",
    [
        ({"kind": "npz", "path": "/nonexistent.npz"}, "data.path: the .npz file /nonexistent.npz does not exist"),
        ({"kind": "npz", "path": "A", "images_key": "images"}, "has no array 'images'"),
        ({"kind": "csv", "path": "B", "shape": [2, 2]}, "9 value columns but data.shape [2, 2] has 4 values"),
        ({"kind": "csv", "path": "B", "shape": [3, 3], "label_column": "y"}, "no column 'y' in the header"),
        ({"kind": "csv", "path": "B", "shape": [3, 1, 1, 1]}, "data.shape must be [F] .features., [H, W] or [C, H, W]"),
        ({"kind": "npz", "path": "A", "colour": True}, "unknown config key 'data.colour'"),
    ],
)
def test_bad_data_is_a_clear_error(spec, message, tmp_path):
    np.savez(tmp_path / "a.npz", x=np.zeros((4, 4, 4)), y=np.zeros(4, int))
    (tmp_path / "b.csv").write_text("label," + ",".join(f"p{i}" for i in range(9)) + "\n1," + ",".join("0" * 9) + "\n")
    files = {"A": str(tmp_path / "a.npz"), "B": str(tmp_path / "b.csv")}
    spec = {**spec, "path": files.get(spec["path"], spec["path"])}
    with pytest.raises(DataError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_dataset(spec)


def test_image_folder_reads_class_folders(tmp_path):
    from PIL import Image

    for label, name in enumerate(["cat", "dog"]):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.fromarray(np.full((6, 5, 3), 40 * label + i, np.uint8)).save(tmp_path / name / f"{i}.png")
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    data = load_dataset({"kind": "image_folder", "path": str(tmp_path)})
    assert data.shape == (3, 6, 5) and list(data.labels) == [0, 0, 0, 1, 1, 1]
    gray = load_dataset({"kind": "image_folder", "path": str(tmp_path), "size": 4, "grayscale": True})
    assert gray.shape == (1, 4, 4)
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(tmp_path / "cat" / "big.png")
    with pytest.raises(DataError, match="set data.size to resize"):
        load_dataset({"kind": "image_folder", "path": str(tmp_path), "grayscale": False, "size": None})
    (tmp_path / "cat" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="broken.png: not a readable image"):
        load_dataset({"kind": "image_folder", "path": str(tmp_path), "size": 4})


def test_data_is_checked_against_the_space():
    digits = load_dataset({"kind": "digits"})
    check_fits(digits, (1, 8, 8), 10)
    check_fits(digits, (1, 8, 8), 12)  # a head with spare outputs is fine
    with pytest.raises(DataError, match="inputs of shape 1x8x8 .* but the space takes 3x8x8"):
        check_fits(digits, (3, 8, 8), 10)
    with pytest.raises(DataError, match="has 10 classes but the space's head has 5 outputs"):
        check_fits(digits, (1, 8, 8), 5)
    with pytest.raises(Exception, match="data.kind 'mnsit' is not a known dataset \\(did you mean 'mnist'"):
        data_settings({"kind": "mnsit"})


def test_mnist_is_parsed_once_and_kept_in_the_user_cache(tmp_path, monkeypatch):
    """The parsed MNIST array is kept, named by the shipped CSV's stamp: the same digits, whichever way
    they were read, and a kept file that cannot be read is parsed again and replaced."""
    from blocknas.workers.data import load_mnist
    from blocknas.workers.user_cache import CACHE_ENV

    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    parsed = load_mnist(None)
    (kept,) = (tmp_path / "data").glob("mnist-*.npy")
    loaded = load_mnist(None)
    assert np.array_equal(parsed.images, loaded.images) and np.array_equal(parsed.labels, loaded.labels)
    assert parsed.fingerprint() == loaded.fingerprint()
    kept.write_bytes(b"not an array")
    assert np.array_equal(load_mnist(None).images, parsed.images)
    assert np.load(kept).shape == (5000, 785)  # replaced by the parsed table again
