"""malak-pipe: declarative, cached, reproducible compression pipelines for edge AI."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("malak-pipe")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+local"

__all__ = ["__version__"]
