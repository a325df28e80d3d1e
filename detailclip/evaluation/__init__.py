from .retrieval import RetrievalRecall, retrieval_recall
from .zero_shot import ZeroShotAccuracy, build_zero_shot_classifier

__all__ = ['RetrievalRecall', 'ZeroShotAccuracy', 'build_zero_shot_classifier', 'retrieval_recall']
