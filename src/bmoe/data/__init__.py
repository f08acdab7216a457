"""bmoe.data: offline datasets (digits, Fashion-MNIST, CIFAR-10, synthetic) and data order.

Never downloads anything; depends on no other bmoe module.
"""

from .batches import task_batches
from .cifar10 import RestrictedUnpickler, load_cifar10
from .cifar10_writer import write_cifar10_batches
from .dataset import Dataset
from .digits import load_digits_dataset
from .errors import DataError
from .fashion_mnist import load_fashion_mnist
from .idx import read_idx, write_idx
from .registry import DATASETS, load_dataset
from .synthetic import make_synthetic

__all__ = [
    "DATASETS",
    "DataError",
    "Dataset",
    "RestrictedUnpickler",
    "load_cifar10",
    "load_dataset",
    "load_digits_dataset",
    "load_fashion_mnist",
    "make_synthetic",
    "read_idx",
    "task_batches",
    "write_cifar10_batches",
    "write_idx",
]
