import json

import pytest

from tools.data.make_synthetic_world import main

TINY = ['--image-size', '64', '--num-train', '12', '--num-retrieval', '6', '--num-cls-train-per-class', '2',
        '--num-cls-val-per-class', '1', '--num-seg-train', '4', '--num-seg-val', '3', '--num-det-val', '3']


def test_cli_writes_the_sizes_asked_for(tmp_path):
    out = tmp_path / 'world'
    assert main(['--out', str(out), '--seed', '5', '--num-det-train', '7', '--no-progress', *TINY]) == str(out)
    meta = json.loads((out / 'meta.json').read_text())
    assert meta['seed'] == 5 and meta['image_size'] == 64
    assert meta['splits']['coco_train'] == 7 and meta['splits']['pretrain'] == 12
    coco = json.loads((out / 'coco' / 'annotations' / 'instances_train2017.json').read_text())
    assert len(coco['images']) == 7
    with pytest.raises(Exception, match='overwrite'):  # an existing world is kept unless asked
        main(['--out', str(out), '--no-progress', *TINY])
