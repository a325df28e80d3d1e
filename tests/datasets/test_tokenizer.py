"""CLIP tokenizer (docs/methods.md 1.1): ids, padding, shapes, truncation with or without EOT, cleaning, transform."""
import pytest
import torch
from open_clip.tokenizer import SimpleTokenizer

from detailclip.datasets.tokenizer import CLIPTokenizer, Tokenize
from detailclip.registry import TRANSFORMS

SOT, EOT = 49406, 49407
# Known OpenAI CLIP BPE ids (bpe_simple_vocab_16e6): 'a' 320, 'photo' 1125, 'of' 539, 'dog' 1929, '.' 269.
A_PHOTO_OF_A_DOG = [320, 1125, 539, 320, 1929, 269]
LONG = ' '.join(f'word{i} red circle' for i in range(40))  # far more than 77 BPE ids
CAPTIONS = ['A photo of a dog.', 'a red circle left of a blue square', 'Two  green\ttriangles\n on grass!',
            "it's a CAT's toy, isn't it?", 'Caf\u00e9 &amp; cr\u00e8me br\u00fbl\u00e9e 42x', '']


@pytest.fixture(scope='module')
def reference():
    return SimpleTokenizer()


def test_special_ids_vocab_and_known_caption():
    tok = CLIPTokenizer(context_length=12)
    assert (tok.sot_id, tok.eot_id, tok.vocab_size) == (SOT, EOT, 49408)
    ids = tok('A photo of a dog.')
    assert ids.dtype == torch.long and ids.shape == (12, )
    expected = [SOT, *A_PHOTO_OF_A_DOG, EOT] + [0] * 4
    assert ids.tolist() == expected
    # EOT is the row maximum: what the text tower pools at
    assert int(ids.argmax()) == 7


@pytest.mark.parametrize('context_length', [2, 8, 77])
def test_shapes_and_zero_padding(context_length):
    tok = CLIPTokenizer(context_length=context_length)
    single = tok('a dog')
    batch = tok(['a dog', 'a photo of a dog.', ''])
    assert single.shape == (context_length, ) and batch.shape == (3, context_length)
    assert batch.dtype == single.dtype == torch.long
    assert torch.equal(batch[0], single)
    for row, caption in zip(batch, ['a dog', 'a photo of a dog.', '']):
        full = [SOT, *tok.bpe.encode(caption), EOT]
        n = min(len(full), context_length)
        assert row[0] == SOT and row[n - 1] == EOT
        assert (row[n:] == 0).all(), 'padding must be zeros'
        assert (row[:n] != 0).all()
    # an empty caption is just SOT, EOT
    assert batch[2, :2].tolist() == [SOT, EOT]
    # a list of one caption keeps the batch dimension
    assert tok(['a dog']).shape == (1, context_length)


@pytest.mark.parametrize('context_length', [5, 16, 77])
def test_long_caption_keeps_eot(reference, context_length):
    full = [SOT] + reference.encode(LONG) + [EOT]
    assert len(full) > 77
    keep = CLIPTokenizer(context_length, truncate_keep_eot=True)(LONG)
    assert keep.tolist() == full[:context_length - 1] + [EOT]
    assert int(keep.argmax()) == context_length - 1, 'EOT pooling must land on the last position'
    # open_clip's own tokenizer also keeps EOT on truncation
    assert torch.equal(keep, reference(LONG, context_length=context_length)[0])


@pytest.mark.parametrize('context_length', [5, 16, 77])
def test_long_caption_reference_truncation_drops_eot(reference, context_length):
    full = [SOT] + reference.encode(LONG) + [EOT]
    ref = CLIPTokenizer(context_length, truncate_keep_eot=False)(LONG)
    assert ref.tolist() == full[:context_length]
    assert EOT not in ref.tolist()
    # batched: one long and one short caption
    both = CLIPTokenizer(context_length, truncate_keep_eot=False)([LONG, 'a'])
    assert both[0].tolist() == full[:context_length]
    assert both[1, :3].tolist() == [SOT, 320, EOT]


def test_exact_fit_is_not_truncated(reference):
    n = len(reference.encode('a photo of a dog.')) + 2  # 8: SOT + 6 + EOT
    for keep in (True, False):
        ids = CLIPTokenizer(n, truncate_keep_eot=keep)('a photo of a dog.')
        assert ids.tolist() == [SOT, *A_PHOTO_OF_A_DOG, EOT]
    # one shorter: the dot is cut (keep EOT) or EOT is cut (reference)
    assert CLIPTokenizer(n - 1, True)('a photo of a dog.').tolist() == [SOT, *A_PHOTO_OF_A_DOG[:-1], EOT]
    assert CLIPTokenizer(n - 1, False)('a photo of a dog.').tolist() == [SOT, *A_PHOTO_OF_A_DOG]


def test_cleaning_matches_open_clip(reference):
    tok = CLIPTokenizer(context_length=77)
    ours = tok(CAPTIONS)
    theirs = reference(CAPTIONS, context_length=77)
    assert torch.equal(ours, theirs)
    # lowercase and whitespace collapse: these all tokenize the same
    variants = ['A PHOTO OF A DOG.', '  a   photo\tof a\n dog. ', 'A Photo Of A Dog.']
    for v in variants:
        assert tok(v).tolist() == tok('a photo of a dog.').tolist()
    # HTML entities are unescaped: '&amp;' == '&'
    assert torch.equal(tok('salt &amp; pepper'), tok('salt & pepper'))
    # different words are different ids
    assert not torch.equal(tok('a photo of a cat.'), tok('a photo of a dog.'))


def test_context_length_too_small():
    with pytest.raises(ValueError, match='context_length'):
        CLIPTokenizer(context_length=1)


def test_tokenize_transform_keys():
    step = TRANSFORMS.build(dict(type='Tokenize', context_length=10))
    assert isinstance(step, Tokenize)
    out = step(dict(caption='A photo of a dog.', other=1))
    assert out['text'].tolist() == [SOT, *A_PHOTO_OF_A_DOG, EOT, 0, 0]
    assert out['caption'] == 'A photo of a dog.' and out['other'] == 1

    step = Tokenize(context_length=6, truncate_keep_eot=True, key='captions', out_key='caption_tokens')
    out = step(dict(captions=['a dog', 'A photo of a dog.']))
    assert 'text' not in out
    assert out['caption_tokens'].shape == (2, 6)
    assert out['caption_tokens'].tolist() == [[SOT, 320, 1929, EOT, 0, 0], [SOT, *A_PHOTO_OF_A_DOG[:4], EOT]]

    ref_step = Tokenize(context_length=6, truncate_keep_eot=False, key='captions', out_key='caption_tokens')
    assert ref_step(dict(captions=['A photo of a dog.']))['caption_tokens'].tolist() == [[SOT,
                                                                                          *A_PHOTO_OF_A_DOG[:5]]]
    with pytest.raises(KeyError):
        Tokenize(key='missing')(dict(caption='a'))
