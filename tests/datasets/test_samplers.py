"""ResumableInfiniteSampler: per-epoch permutations, determinism, exact resume, rank slicing."""
from itertools import islice

import pytest

from detailclip.datasets import samplers
from detailclip.datasets.samplers import ResumableInfiniteSampler
from detailclip.registry import DATA_SAMPLERS


def take(sampler, n):
    return list(islice(iter(sampler), n))


def make(monkeypatch, size, rank=0, world_size=1, **kwargs):
    monkeypatch.setattr(samplers, 'get_dist_info', lambda: (rank, world_size))
    return ResumableInfiniteSampler(list(range(size)), **kwargs)


@pytest.mark.parametrize('size', [1, 7, 32])
def test_epochs_are_permutations_and_differ(monkeypatch, size):
    sampler = make(monkeypatch, size, seed=3)
    assert len(sampler) == size
    draws = take(sampler, 4 * size)
    indices = [i for i, _ in draws]
    epochs = [indices[e * size:(e + 1) * size] for e in range(4)]
    for epoch in epochs:
        assert sorted(epoch) == list(range(size))
    if size >= 7:
        assert len({tuple(e) for e in epochs}) == 4, 'each epoch must have its own order'
        assert epochs[0] != list(range(size)), 'shuffle=True must shuffle'
    # every draw has its own augmentation seed, also when the index repeats in the next epoch
    seeds = [s for _, s in draws]
    assert len(set(seeds)) == len(seeds)
    assert all(isinstance(s, int) and 0 <= s < 2**63 for s in seeds)


def test_no_shuffle_is_identity_order(monkeypatch):
    sampler = make(monkeypatch, 5, seed=0, shuffle=False)
    assert [i for i, _ in take(sampler, 12)] == [0, 1, 2, 3, 4] * 2 + [0, 1]


def test_deterministic_for_a_seed(monkeypatch):
    a = take(make(monkeypatch, 11, seed=5), 50)
    b = take(make(monkeypatch, 11, seed=5), 50)
    c = take(make(monkeypatch, 11, seed=6), 50)
    assert a == b
    assert [i for i, _ in a] != [i for i, _ in c]
    assert not set(s for _, s in a) & set(s for _, s in c)
    # a second iter() over the same sampler restarts at its position, not where the last iterator stopped
    sampler = make(monkeypatch, 11, seed=5)
    take(sampler, 17)
    assert take(sampler, 50) == a


@pytest.mark.parametrize('position', [0, 1, 6, 13, 40])
def test_set_position_continues_the_stream(monkeypatch, position):
    size = 13
    full = take(make(monkeypatch, size, seed=9), 100)
    resumed = make(monkeypatch, size, seed=9)
    resumed.set_position(position)
    assert take(resumed, 100 - position) == full[position:]


@pytest.mark.parametrize('size', [8, 9])
def test_two_ranks_get_disjoint_interleaved_slices(monkeypatch, size):
    n = 5 * size
    global_stream = take(make(monkeypatch, size, seed=4), 2 * n)
    rank0 = take(make(monkeypatch, size, rank=0, world_size=2, seed=4), n)
    rank1 = take(make(monkeypatch, size, rank=1, world_size=2, seed=4), n)
    assert rank0 == global_stream[0::2] and rank1 == global_stream[1::2]
    # in the first epoch the two ranks see disjoint indices that together cover the dataset (size even)
    half = size // 2
    first0, first1 = {i for i, _ in rank0[:half]}, {i for i, _ in rank1[:half]}
    assert not first0 & first1
    if size % 2 == 0:
        assert first0 | first1 == set(range(size))
    # draw seeds are unique across ranks
    assert not {s for _, s in rank0} & {s for _, s in rank1}
    # per-rank epoch length is ceil(size / world_size)
    assert len(make(monkeypatch, size, rank=1, world_size=2, seed=4)) == -(-size // 2)

    # resuming each rank after k of its own samples continues its slice of the global stream
    k = size + 3
    for rank, stream in ((0, rank0), (1, rank1)):
        resumed = make(monkeypatch, size, rank=rank, world_size=2, seed=4)
        resumed.set_position(k)
        assert take(resumed, n - k) == stream[k:]


def test_seed_none_is_synchronised(monkeypatch):
    monkeypatch.setattr(samplers, 'sync_random_seed', lambda: 1234)
    assert take(make(monkeypatch, 6), 20) == take(make(monkeypatch, 6, seed=1234), 20)


def test_empty_dataset_raises(monkeypatch):
    with pytest.raises(ValueError, match='empty'):
        make(monkeypatch, 0, seed=0)


def test_built_from_registry():
    sampler = DATA_SAMPLERS.build(dict(type='ResumableInfiniteSampler', shuffle=True, seed=2),
                                  default_args=dict(dataset=list(range(4))))
    assert isinstance(sampler, ResumableInfiniteSampler)
    assert sorted(i for i, _ in take(sampler, 4)) == [0, 1, 2, 3]
