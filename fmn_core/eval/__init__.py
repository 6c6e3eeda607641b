"""Evaluation: class-level retrieval metrics, their exact random-ranking baseline, and the paper's baselines.

``metrics`` turns a score matrix into R@k, mAP and ranks (and the expected values under random
ranking); ``baselines`` builds by name CCA, KCCA (``cca_baselines``), DCCA (the paper's §4
comparisons) and a contrastive (InfoNCE) dual encoder (``neural_baselines``), all fitted on frozen
features.
"""
