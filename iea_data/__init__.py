"""iea_data: the library of the pixel-level image exposure assessment (IEA) data toolkit."""


def __getattr__(name: str) -> str:
    # ``__version__`` is looked up on first use: importlib.metadata costs ~20 ms of every start-up.
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("iea-toolkit")
    except PackageNotFoundError:  # running from a source tree that is not installed
        value = "0.2.0"
    globals()["__version__"] = value
    return value
