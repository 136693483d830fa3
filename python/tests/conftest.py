"""Shared fixtures: the isovec binary, the benchmark data and the default model.

Like the Rust tests, a test whose data or model is missing is skipped, and fails instead under
ISOVEC_REQUIRE_DATA=1 (which .ci/run sets).
"""

import os
import pathlib
import subprocess

import pytest

# The Ray test starts a local cluster: its processes talk over loopback only, instead of the
# address of the machine's network interface (Ray reads this when it is imported), and send no
# usage statistics anywhere.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

REPO = pathlib.Path(__file__).resolve().parents[2]


def missing(what, how):
    """Fails under ISOVEC_REQUIRE_DATA=1, else skips; says what is missing and how to get it."""
    message = f"{what} ({how})"
    if os.environ.get("ISOVEC_REQUIRE_DATA") == "1":
        pytest.fail(message + "; ISOVEC_REQUIRE_DATA=1 makes this a failure instead of a skip")
    pytest.skip(message)


@pytest.fixture(scope="session")
def isovec_bin():
    """The isovec command line built in this checkout (ISOVEC_BIN overrides)."""
    path = pathlib.Path(os.environ.get("ISOVEC_BIN", REPO / "target" / "release" / "isovec"))
    if not path.is_file():
        missing(f"no isovec binary at {path}", "run `cargo build --release`, or set ISOVEC_BIN")
    return path


@pytest.fixture(scope="session")
def data_dir():
    """The benchmark data folder (ISOVEC_DATA, else ../shared/data beside the checkout)."""
    path = pathlib.Path(os.environ.get("ISOVEC_DATA", REPO.parent / "shared" / "data"))
    if not (path / "retrieval" / "scifact" / "corpus.jsonl.gz").is_file():
        missing(f"no SciFact corpus under {path}", "set ISOVEC_DATA to the data folder")
    return path


@pytest.fixture(scope="session")
def pipeline():
    """The default pipeline (the installed default model, mean pooling)."""
    import isovec

    try:
        return isovec.Pipeline()
    except isovec.IsovecError as e:
        if "not installed" in str(e):
            missing(str(e), "run `isovec model fetch`")
        raise


@pytest.fixture(scope="session")
def default_model_dir(pipeline):
    """The installed default model's folder, as isovec finds it: ISOVEC_MODEL, else the cache
    (ISOVEC_HOME, else XDG_CACHE_HOME/isovec or ~/.cache/isovec)."""
    if os.environ.get("ISOVEC_MODEL"):
        return pathlib.Path(os.environ["ISOVEC_MODEL"])
    home = os.environ.get("ISOVEC_HOME")
    if home is None:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        home = os.path.join(cache, "isovec")
    return pathlib.Path(home) / "models" / "all-MiniLM-L6-v2"
