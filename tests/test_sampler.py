import torch

from ssl_bench.data.sampler import epoch_batches, steps_per_epoch


def test_ranks_get_disjoint_shards_of_the_same_batches():
    world = 3
    shards = [
        list(epoch_batches(100, 12, epoch=2, seed=1, rank=r, world_size=world))
        for r in range(world)
    ]
    assert all(len(s) == steps_per_epoch(100, 12) == 8 for s in shards)
    for step in range(8):
        parts = [shards[r][step] for r in range(world)]
        together = torch.cat(parts)
        assert len(together) == 12 and len(set(together.tolist())) == 12
    single = list(epoch_batches(100, 12, epoch=2, seed=1))
    assert all(
        set(torch.cat([s[i] for s in shards]).tolist()) == set(single[i].tolist()) for i in range(8)
    )


def test_epochs_and_seeds_change_the_order():
    a = next(epoch_batches(50, 10, epoch=0, seed=0))
    assert not torch.equal(a, next(epoch_batches(50, 10, epoch=1, seed=0)))
    assert not torch.equal(a, next(epoch_batches(50, 10, epoch=0, seed=1)))
    assert torch.equal(a, next(epoch_batches(50, 10, epoch=0, seed=0)))
