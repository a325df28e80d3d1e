"""The shipped ImageNet-1k zero-shot list and how ImageFolderClassification reads zero-shot lists."""
import json

import pytest
from PIL import Image

from detailclip.datasets import ImageFolderClassification
from detailclip.evaluation import zero_shot_preset

# docs/methods.md 9.1: the 7-template CLIP subset used by SLIP/DetailCLIP for ImageNet
SEVEN_TEMPLATES = ['itap of a {}.', 'a bad photo of the {}.', 'a origami {}.', 'a photo of the large {}.',
                   'a {} in a video game.', 'art of the {}.', 'a photo of the small {}.']


def _image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new('RGB', (8, 8), (200, 10, 10)).save(path)


def test_imagenet1k_list():
    spec = zero_shot_preset('imagenet1k')
    assert spec['templates'] == SEVEN_TEMPLATES
    assert len(spec['classes']) == len(spec['folders']) == 1000
    assert spec['classes'][:3] == ['tench', 'goldfish', 'great white shark'] and spec['classes'][-1] == 'toilet paper'
    assert spec['folders'][0] == 'n01440764' and spec['folders'] == sorted(spec['folders'])
    assert 'open_clip' in spec['source']
    with pytest.raises(FileNotFoundError, match="imagenet1k"):
        zero_shot_preset('imagenet21k')


def test_image_folder_with_imagenet_preset(tmp_path):
    folders = zero_shot_preset('imagenet1k')['folders']
    for wnid in folders:
        (tmp_path / 'val' / wnid).mkdir(parents=True)
    _image(tmp_path / 'val' / folders[1] / 'a.JPEG')
    _image(tmp_path / 'val' / folders[999] / 'b.JPEG')
    ds = ImageFolderClassification(split='val', data_root=str(tmp_path), zero_shot_preset='imagenet1k')
    assert ds.metainfo['classes'][1] == 'goldfish' and ds.metainfo['templates'] == SEVEN_TEMPLATES
    assert [ds.get_data_info(i)['gt_label'] for i in range(len(ds))] == [1, 999]
    (tmp_path / 'val' / folders[5]).rmdir()
    with pytest.raises(FileNotFoundError, match='electric ray'):
        ImageFolderClassification(split='val', data_root=str(tmp_path), zero_shot_preset='imagenet1k')
    with pytest.raises(ValueError, match='not both'):
        ImageFolderClassification(split='val', data_root=str(tmp_path), zero_shot_preset='imagenet1k',
                                  zero_shot_file='x.json')


def test_image_folder_with_folders_and_synonyms(tmp_path):
    for folder in ('c0', 'c1'):
        _image(tmp_path / 'val' / folder / 'x.png')
    spec = dict(classes=[['happy', 'smiling'], 'sad'], folders=['c1', 'c0'], templates=['a {} face.'])
    (tmp_path / 'list.json').write_text(json.dumps(spec))
    ds = ImageFolderClassification(split='val', data_root=str(tmp_path), zero_shot_file='list.json')
    assert ds.metainfo['classes'] == [['happy', 'smiling'], 'sad']
    assert [(ds.get_data_info(i)['img_path'].split('/')[-2], ds.get_data_info(i)['gt_label']) for i in range(2)] == \
        [('c1', 0), ('c0', 1)]
    (tmp_path / 'list.json').write_text(json.dumps(dict(spec, folders=None)))
    with pytest.raises(ValueError, match='"folders"'):
        ImageFolderClassification(split='val', data_root=str(tmp_path), zero_shot_file='list.json')
    (tmp_path / 'list.json').write_text(json.dumps(dict(spec, folders=['c0'])))
    with pytest.raises(ValueError, match='2 classes but 1 folders'):
        ImageFolderClassification(split='val', data_root=str(tmp_path), zero_shot_file='list.json')
