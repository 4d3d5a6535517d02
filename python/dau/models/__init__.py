"""Defender architectures: every model maps [0, 1] images to ``(logits, features)``."""

from dau.models import resnet, vgg  # noqa: F401  (registers the architectures)
from dau.models._registry import create_model, list_models, register_model
from dau.models.layout import default_layout_convs, place_model

__all__ = ["create_model", "default_layout_convs", "list_models", "place_model", "register_model"]
