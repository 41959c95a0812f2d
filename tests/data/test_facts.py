"""`lenetlab.data.inspect`: a dataset measured from its index and image headers, without decoding it."""

from __future__ import annotations

from PIL import Image

from lenetlab.data import inspect


def test_image_table_facts(tmp_path):
    root = tmp_path / "kaggle"
    (root / "images").mkdir(parents=True)
    rows = []
    for i in range(30):
        size = (20 + i, 30 + 2 * i)  # mixed sizes, not square
        Image.new("RGB", size, (255, 0, 0) if i % 3 else (0, 200, 0)).save(root / "images" / f"{i}.jpg")
        rows.append(f"images/{i}.jpg,{'a' if i < 20 else 'b'}")
    (root / "train.csv").write_text("image,label\n" + "\n".join(rows[:26]) + "\n")
    (root / "test.csv").write_text("image\n" + "".join(f"images/{i}.jpg\n" for i in range(26, 30)))
    f = inspect(str(root))
    assert (f.kind, f.n_labelled, f.n_test, f.test_labelled) == ("image-csv", 26, 4, False)
    assert f.class_names == ["a", "b"] and f.class_counts == [20, 6] and f.imbalance == 20 / 6
    assert f.channels == 3 and f.mixed_sizes and len(f.sizes) == 30
    assert "26 labelled images, 4 test (unlabelled), 2 classes (imbalanced 3.3:1), colour" in f.describe()


def test_gray_pictures_in_rgb_files_count_as_one_channel(tmp_path):
    for c in ("x", "y"):
        for i in range(4):
            p = tmp_path / "g" / "train" / c / f"{i}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (16, 16), (90 + i, 90 + i, 90 + i)).save(p)
    f = inspect(str(tmp_path / "g"))
    assert (f.kind, f.channels, f.n_labelled, f.median_size, f.mixed_sizes) == ("class-folders", 1, 8, (16, 16), False)


def test_pixel_table_and_named_facts(digitrec):
    f = inspect(str(digitrec))
    assert (f.kind, f.n_labelled, f.n_test, f.channels, f.sizes) == ("pixel-csv", 300, 100, 1, [(28, 28)])
    assert sum(f.class_counts) == 300 and f.n_classes == 10
    m = inspect("mnist")
    assert (m.kind, m.n_labelled, m.n_classes) == ("named", 60000, 10)


def test_idx_folder_facts(idx_dir):
    f = inspect(str(idx_dir))  # 60 train / 20 test random 28x28 images, labels 0..9
    assert (f.kind, f.n_labelled, f.n_test, f.sizes, f.n_classes, sum(f.class_counts)) == (
        "idx",
        60,
        20,
        [(28, 28)],
        10,
        60,
    )


def test_orientation_anisotropy_tells_upright_sets_from_sets_at_any_angle(subset):
    import numpy as np
    import torch

    from lenetlab.data.facts import ISOTROPIC, orientation_anisotropy

    digits = subset.train.x[:256]
    assert orientation_anisotropy(digits) > 2 * ISOTROPIC  # MNIST digits are upright
    # the same digits, each turned by its own random angle: no preferred orientation is left
    rng = np.random.default_rng(0)
    turned = torch.stack(
        [
            torch.from_numpy(
                np.array(Image.fromarray(d[0].numpy()).rotate(float(rng.uniform(0, 360)), resample=Image.BILINEAR))
            ).unsqueeze(0)
            for d in digits
        ]
    )
    assert orientation_anisotropy(turned) < ISOTROPIC
    assert orientation_anisotropy(digits[:0]) == 0.0


def test_facts_measure_the_orientation_of_folder_images(tmp_path):
    from PIL import ImageDraw

    for upright in (True, False):
        root = tmp_path / ("up" if upright else "any")
        for i in range(64):
            im = Image.new("L", (32, 32), 0)
            ImageDraw.Draw(im).rectangle([8, 4, 12, 28], fill=255)  # a vertical bar
            if not upright:
                im = im.rotate(i * 360 / 64 + 3, resample=Image.BILINEAR)
            p = root / ("a" if i % 2 else "b") / f"{i}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            im.save(p)
        f = inspect(str(root))
        assert f.upright is upright and ("no preferred orientation" in f.describe()) is not upright
