"""Datasets (held in memory or streamed from disk), their on-disk formats, batching, splits.

``types`` holds the in-memory classes; ``registry`` loads a dataset by name
(:func:`load_dataset`, :func:`list_datasets`); ``builtin`` (synthetic, digits) and ``readers``
(CIFAR, SVHN, (Fashion-)MNIST files and downloads) and ``streaming`` (ImageFolder trees, file
lists, any torch Dataset, read batch by batch) register the datasets, imported here so
that every name is registered; ``loaders`` batches and augments on the device
(:func:`iterate_batches`, :func:`augment`); ``formats`` writes small files in the real on-disk
formats; ``splits``, ``requests`` and ``fingerprints`` plan forget splits and resolve deletion
requests by content.
"""

from dau.data import builtin, readers  # noqa: F401  (registers the datasets)
from dau.data.loaders import augment, iterate_batches, to_device
from dau.data.registry import list_datasets, load_dataset, register_dataset
from dau.data.streaming import StreamData, file_list, from_torch, image_folder
from dau.data.types import Dataset, DatasetInfo, ImageData

__all__ = [
    "Dataset",
    "DatasetInfo",
    "ImageData",
    "StreamData",
    "augment",
    "file_list",
    "from_torch",
    "image_folder",
    "iterate_batches",
    "list_datasets",
    "load_dataset",
    "register_dataset",
    "to_device",
]
