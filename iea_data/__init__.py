"""iea_data: the library of the pixel-level image exposure assessment (IEA) data toolkit."""

try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("iea-toolkit")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0"
