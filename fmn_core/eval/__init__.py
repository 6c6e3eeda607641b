"""Evaluation: class-level retrieval metrics, their exact random-ranking baseline, and the paper's baselines.

``metrics`` turns a score matrix into R@k, mAP and ranks (and the expected values under random
ranking); ``baselines`` holds CCA, KCCA, DCCA (the paper's §4 comparisons) and a contrastive
(InfoNCE) dual encoder, all fitted on frozen features.
"""
