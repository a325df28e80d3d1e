"""Numbers written for people: float32 noise rounded away, everything else untouched."""
import numpy as np
import torch

from detailclip.utils.numbers import round_floats


def test_float32_noise_is_rounded_everywhere():
    noisy = float(np.float32(0.2))  # 0.20000000298023224
    assert noisy != 0.2
    metrics = {'zero-shot/top1': noisy, 'numpy': np.float32(14.29), 'tensor': torch.tensor(14.29),
               'nested': {'ap': [noisy, (noisy, 3)]}, 'count': 7, 'name': 'clip', 'missing': None, 'flag': True}
    assert round_floats(metrics) == {'zero-shot/top1': 0.2, 'numpy': 14.29, 'tensor': 14.29,
                                     'nested': {'ap': [0.2, (0.2, 3)]}, 'count': 7, 'name': 'clip', 'missing': None,
                                     'flag': True}
    assert type(round_floats(np.int64(3))) is int and round_floats(1 / 3, decimals=2) == 0.33
