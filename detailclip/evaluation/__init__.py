from .knn import KNNAccuracy, knn_predict
from .retrieval import RetrievalRecall, retrieval_recall
from .zero_shot import ZeroShotAccuracy, build_zero_shot_classifier

__all__ = ['KNNAccuracy', 'RetrievalRecall', 'ZeroShotAccuracy', 'build_zero_shot_classifier', 'knn_predict',
           'retrieval_recall']
