"""Fixtures of the batch-engine tests: one Spark session per run, engines as parameters.

In the style of Splink's backend-parametrised tests, a test that takes ``backend`` runs
once per engine; the Spark runs carry the ``spark`` mark (deselect with ``-m "not spark"``)
and are skipped when pyspark or a Java runtime is missing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from socred.engines import BatchBackend, get_backend

ENGINES = ["duckdb", pytest.param("spark", marks=pytest.mark.spark)]


def _spark_problem() -> str | None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install socred[spark])"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java runtime for Spark"
    return None


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """The process's SparkSession (local mode, test settings), started once per test run."""
    problem = _spark_problem()
    if problem is not None:
        pytest.skip(problem)
    from socred.engines.spark_engine import get_spark

    yield get_spark()


@pytest.fixture(scope="session")
def duckdb_backend() -> BatchBackend:
    return get_backend("duckdb")


@pytest.fixture(scope="session")
def spark_backend(spark: Any) -> BatchBackend:
    return get_backend("spark")


@pytest.fixture(scope="session", params=ENGINES)
def backend(request: pytest.FixtureRequest) -> BatchBackend:
    """Each batch engine in turn."""
    fixture = "spark_backend" if request.param == "spark" else "duckdb_backend"
    backend: BatchBackend = request.getfixturevalue(fixture)
    return backend
