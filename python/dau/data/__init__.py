"""Datasets held in memory, their on-disk formats and batching over them.

``dau.data.datasets`` loads a dataset by name (:func:`load_dataset`, :func:`list_datasets`);
``dau.data.loaders`` batches and augments it on the device (:func:`iterate_batches`,
:func:`augment`); ``dau.data.formats`` writes small files in the real on-disk formats.
"""

from dau.data.datasets import Dataset, DatasetInfo, ImageData, list_datasets, load_dataset
from dau.data.loaders import augment, iterate_batches, to_device

__all__ = [
    "Dataset",
    "DatasetInfo",
    "ImageData",
    "augment",
    "iterate_batches",
    "list_datasets",
    "load_dataset",
    "to_device",
]
