"""TraceDataset: items equal the stored arrays, masks and instructions; collate; splits; workers."""

import pickle

import numpy as np
import pytest
import torch

from store.dataset import TraceDataset, collate_samples, split_keys
from store.errors import SchemaError
from store.trace_store import TraceStore
from tests.store.conftest import FORGE_ATTRS, make_video_samples, video_attrs

KEYS = ["1a" * 32, "2b" * 32, "3c" * 32]
CFG = "00aa11bb22cc33dd"


@pytest.fixture
def written(store_path):
    store = TraceStore.create(store_path)
    samples = {
        KEYS[0]: make_video_samples(num_samples=2, seed=0),
        KEYS[1]: make_video_samples(num_samples=3, seed=1, with_depth=False),
        KEYS[2]: make_video_samples(num_samples=1, seed=2),
    }
    for i, (key, value) in enumerate(samples.items()):
        store.write_video(key, video_attrs(instructions=(f"task {i}", f"do task {i}")), CFG, FORGE_ATTRS, value)
    return store, samples


def test_items_are_the_stored_samples_with_masks(written):
    store, samples = written
    dataset = TraceDataset(store, steps=32)
    assert len(dataset) == 6 and dataset.keys == KEYS
    item = dataset[3]  # second video, sample 1
    source = samples[KEYS[1]]
    assert item["video_key"] == KEYS[1] and item["sample_index"] == 1
    assert item["instructions"] == ["task 1", "do task 1"]
    assert item["image"].dtype == torch.uint8 and item["image"].shape == (48, 64, 3)
    np.testing.assert_array_equal(item["image"].numpy(), source.image[1])
    np.testing.assert_array_equal(item["traj"].numpy(), source.traces[1, :, :33])
    np.testing.assert_array_equal(item["valid"].numpy(), source.valid[1, :33])
    np.testing.assert_array_equal(item["visible"].numpy(), source.visible[1, :, :33])
    np.testing.assert_array_equal(item["intrinsics"].numpy(), source.intrinsics[1])
    assert item["has_depth"] is False and torch.isnan(item["depth"]).all() and item["depth"].shape == (48, 64)
    last = dataset[-1]
    assert last["has_depth"] is True and last["video_key"] == KEYS[2]
    np.testing.assert_array_equal(last["depth"].numpy(), samples[KEYS[2]].depth[0])
    with pytest.raises(IndexError):
        dataset[6]


def test_key_subset_steps_and_bad_steps(written):
    store, samples = written
    dataset = TraceDataset(store.location, keys=["3c", "1a"], steps=128)
    assert dataset.keys == [KEYS[2], KEYS[0]] and len(dataset) == 3
    np.testing.assert_array_equal(dataset[0]["traj"].numpy(), samples[KEYS[2]].traces[0])
    with pytest.raises(SchemaError, match="steps=129 is out of range"):
        TraceDataset(store, steps=129)


def test_cache_is_bounded(written):
    store, _ = written
    dataset = TraceDataset(store, cache_bytes=1)
    for index in range(len(dataset)):
        dataset[index]
    assert len(dataset._cache) == 1


def test_collate_stacks_and_rejects_mixed_sizes(written, tmp_path):
    store, samples = written
    dataset = TraceDataset(store)
    batch = collate_samples([dataset[i] for i in range(4)])
    assert batch["image"].shape == (4, 48, 64, 3) and batch["traj"].shape == (4, 400, 33, 3)
    assert batch["has_depth"].tolist() == [True, True, False, False]
    assert batch["sample_index"].tolist() == [0, 1, 0, 1] and batch["video_key"][2] == KEYS[1]
    other = TraceStore.create(tmp_path / "other.zarr")
    other.write_video(KEYS[0], video_attrs(), CFG, FORGE_ATTRS, make_video_samples(num_samples=1, height=30, width=40))
    with pytest.raises(SchemaError, match=r"mixes image sizes \[\(30, 40, 3\), \(48, 64, 3\)\]"):
        collate_samples([dataset[0], TraceDataset(other)[0]])


def test_dataset_pickles_and_works_with_worker_processes(written):
    store, samples = written
    dataset = TraceDataset(store)
    dataset[0]
    clone = pickle.loads(pickle.dumps(dataset))
    assert clone._store is None and len(clone._cache) == 0
    np.testing.assert_array_equal(clone[5]["traj"].numpy(), samples[KEYS[2]].traces[0, :, :33])
    loader = torch.utils.data.DataLoader(dataset, batch_size=3, num_workers=2, collate_fn=collate_samples)
    keys = [key for batch in loader for key in batch["video_key"]]
    assert keys == [KEYS[0]] * 2 + [KEYS[1]] * 3 + [KEYS[2]]


def test_split_keys_is_deterministic_and_order_free():
    keys = [f"{i:064x}" for i in range(20)]
    train, val = split_keys(keys, 0.25, seed=3)
    assert len(val) == 5 and sorted(train + val) == keys and not set(train) & set(val)
    assert split_keys(list(reversed(keys)), 0.25, seed=3) == (train, val)
    assert split_keys(keys, 0.25, seed=4) != (train, val)
    assert split_keys(keys[:2], 0.01) [1] != [] and split_keys(keys, 0.0) == (keys, [])
    with pytest.raises(SchemaError, match="val_fraction=1.0"):
        split_keys(keys, 1.0)


def test_video_block_sampler_is_a_local_permutation(tmp_path):
    from store.dataset import VideoBlockSampler

    store = TraceStore.create(tmp_path / "many.zarr")
    for v in range(7):
        store.write_video(f"{v + 1:064x}", video_attrs(), CFG, FORGE_ATTRS, make_video_samples(num_samples=1 + v % 3, seed=v))
    dataset = TraceDataset(store)
    sampler = VideoBlockSampler(dataset, block_videos=2, seed=1)
    order = list(sampler)
    assert sorted(order) == list(range(len(dataset))) and len(sampler) == len(dataset)
    video_of = [dataset.locate(i)[0] for i in order]
    blocks, position = [], 0
    while position < len(order):  # consecutive runs covering two whole videos each
        first = set()
        while position < len(order) and (len(first) < 2 or video_of[position] in first):
            first.add(video_of[position])
            position += 1
        blocks.append(first)
    assert all(len(block) <= 2 for block in blocks) and len(blocks) == 4
    assert list(VideoBlockSampler(dataset, 2, seed=1)) == order
    sampler.set_epoch(1)
    assert list(sampler) != order
