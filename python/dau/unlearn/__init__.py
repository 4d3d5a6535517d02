"""Unlearning methods and the masked optimizer they share (:mod:`dau.unlearn.optim`)."""
