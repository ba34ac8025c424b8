"""Multi-label metrics and baselines shared by the C2AE and order-free RNN models.

* micro-F1 / macro-F1 (the metrics of C2AE, Yeh et al. AAAI 2017, Tables 2-3, and of the order-free
  RNN, Chen et al. AAAI 2018, "O-F1" / "C-F1").
* binary relevance: one logistic-regression classifier per label on the same features
  (scikit-learn ``OneVsRestClassifier(LogisticRegression)``), the baseline both papers compare to.
* the best constant predictor ("prior" baseline): predict the same label set for every instance,
  namely the labels whose training prevalence is at least a threshold chosen to maximise training
  micro-F1 (this includes "predict labels with prevalence > 0.5", the trivial prior).

Labels are ``[N, L]`` arrays in {0, 1}.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

__all__ = ["micro_f1", "macro_f1", "binary_relevance_baseline", "prior_baseline"]


def _check(y_true, y_pred):
    y_true = np.asarray(y_true) > 0.5
    y_pred = np.asarray(y_pred) > 0.5
    if y_true.shape != y_pred.shape or y_true.ndim != 2:
        raise ValueError("labels must be [N, L] arrays of equal shape, got %s and %s" % (y_true.shape, y_pred.shape))
    return y_true, y_pred


def micro_f1(y_true, y_pred) -> float:
    """Micro-averaged F1: ``2 TP / (2 TP + FP + FN)`` pooled over all instances and labels.

    Args:
        y_true, y_pred: ``[N, L]`` in {0, 1} (values > 0.5 count as positive).

    Returns:
        F1 in [0, 1] (0 when there are no positives at all).

    Raises:
        ValueError: shapes differ or are not 2-D.
    """
    t, p = _check(y_true, y_pred)
    tp = np.sum(t & p)
    denominator = 2 * tp + np.sum(~t & p) + np.sum(t & ~p)
    return float(2 * tp / denominator) if denominator else 0.0


def macro_f1(y_true, y_pred) -> float:
    """Macro-averaged F1: the mean over labels of each label's F1 (a label with no positives in
    either array scores 0). Shapes and errors as :func:`micro_f1`."""
    t, p = _check(y_true, y_pred)
    tp = np.sum(t & p, axis=0)
    denominator = 2 * tp + np.sum(~t & p, axis=0) + np.sum(t & ~p, axis=0)
    f1 = np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)
    return float(np.mean(f1))


def binary_relevance_baseline(train_x, train_y, test_x, test_y, C: float = 1.0, max_iter: int = 200,
                              seed: int = 0) -> Dict[str, float]:
    """Binary relevance: one L2-regularised logistic regression per label (scikit-learn,
    lbfgs, features standardised on the training set), thresholded at probability 0.5.

    Args:
        train_x, test_x: float ``[N, D]`` features. train_y, test_y: ``[N, L]`` in {0, 1}.
        C: inverse regularisation strength. max_iter: lbfgs iterations.

    Returns:
        ``{"micro_f1", "macro_f1"}`` on the test set.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train_x = np.asarray(train_x, np.float64).reshape(len(train_x), -1)
    test_x = np.asarray(test_x, np.float64).reshape(len(test_x), -1)
    model = make_pipeline(StandardScaler(), OneVsRestClassifier(
        LogisticRegression(C=C, max_iter=max_iter, random_state=seed)))
    model.fit(train_x, (np.asarray(train_y) > 0.5).astype(np.int64))
    predicted = model.predict(test_x)
    return {"micro_f1": micro_f1(test_y, predicted), "macro_f1": macro_f1(test_y, predicted)}


def prior_baseline(train_y, test_y) -> Dict[str, float]:
    """The best constant label set: labels with training prevalence >= t, with t chosen among the
    prevalences (and 0.5) to maximise training micro-F1; scored on the test set.

    Returns:
        ``{"micro_f1", "macro_f1", "threshold"}``.
    """
    train_y = np.asarray(train_y) > 0.5
    prevalence = train_y.mean(axis=0)
    best_t, best_f1 = 0.5, -1.0
    for t in sorted(set(prevalence.tolist()) | {0.5}):
        predicted = np.broadcast_to(prevalence >= t, train_y.shape)
        f1 = micro_f1(train_y, predicted)
        if f1 > best_f1:
            best_t, best_f1 = t, f1
    test_y = np.asarray(test_y)
    predicted = np.broadcast_to(prevalence >= best_t, test_y.shape)
    return {"micro_f1": micro_f1(test_y, predicted), "macro_f1": macro_f1(test_y, predicted),
            "threshold": float(best_t)}
