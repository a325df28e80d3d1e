from .base import NetworkMetric, network_field
from .benchmark import BenchmarkJSONHook, benchmark_records, write_benchmark_records
from .dense_probe import read_dense_data, run_dense_probes
from .knn import KNNAccuracy, knn_predict
from .retrieval import RetrievalRecall, retrieval_recall
from .zero_shot import ZeroShotAccuracy, build_zero_shot_classifier, zero_shot_preset

__all__ = ['BenchmarkJSONHook', 'KNNAccuracy', 'NetworkMetric', 'RetrievalRecall', 'ZeroShotAccuracy',
           'benchmark_records', 'build_zero_shot_classifier', 'knn_predict', 'read_dense_data', 'retrieval_recall',
           'run_dense_probes', 'network_field', 'write_benchmark_records', 'zero_shot_preset']
