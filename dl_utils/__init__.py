"""dl_utils — the small shared package behind the Deep Learning in Practice notebooks.

Import the modules you need: ``from dl_utils import config, data, metrics, plots, results``.
Importing the package (or ``dl_utils.data``) never imports PyTorch or TensorFlow; the
framework helpers live in ``dl_utils.train_torch`` and ``dl_utils.train_keras``.
"""

__version__ = "0.1.0"
