"""The Apache Spark runner of the batch query (local mode by default).

One SparkSession per process, from :func:`get_spark`: master from ``SOCRED_SPARK_MASTER``
(default ``local[2]``), few shuffle partitions, no UI, bound to 127.0.0.1, so nothing
depends on a network. An Arrow input is handed to Spark as a temporary Parquet file; the
result comes back as Arrow.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from socred.domain.catalog import Catalog
from socred.engines.sql import RECORD_COLUMNS, build_query, check_effective, finalize

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["LOCAL_CONF", "SPARK_CONF", "SparkBackend", "get_spark"]

#: Settings of the shared session (stack.md, "Gotchas"), plus string-typed partition columns.
SPARK_CONF: dict[str, str] = {
    "spark.sql.shuffle.partitions": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}

#: Added in local mode: with a handful of partitions, adaptive re-planning only costs time
#: (the one join that needs a broadcast asks for it with a hint).
LOCAL_CONF: dict[str, str] = {"spark.sql.adaptive.enabled": "false"}

_lock = threading.Lock()
_session: SparkSession | None = None


def get_spark() -> SparkSession:
    """The process's SparkSession, created on first use and reused afterwards."""
    global _session
    with _lock:
        if _session is not None and not _session_stopped(_session):
            return _session
        from pyspark.sql import SparkSession

        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # never resolve the host name
        master = os.environ.get("SOCRED_SPARK_MASTER", "local[2]")
        conf = dict(SPARK_CONF)
        if master.startswith("local"):
            conf.update(LOCAL_CONF)
            # In local mode the driver JVM does all the work; 1g (Spark's default) spills.
            conf["spark.driver.memory"] = os.environ.get("SOCRED_SPARK_DRIVER_MEMORY", "2g")
        elif "SOCRED_SPARK_DRIVER_MEMORY" in os.environ:
            conf["spark.driver.memory"] = os.environ["SOCRED_SPARK_DRIVER_MEMORY"]
        builder = SparkSession.builder.master(master).appName("socred-batch")
        for key, value in conf.items():
            builder = builder.config(key, value)
        session = builder.getOrCreate()
        session.sparkContext.setLogLevel("ERROR")
        # getOrCreate may return a session someone else built: the runtime SQL settings matter.
        for key in ("spark.sql.sources.partitionColumnTypeInference.enabled", "spark.sql.session.timeZone"):
            session.conf.set(key, SPARK_CONF[key])
        _session = session
        return session


def _session_stopped(session: SparkSession) -> bool:
    try:
        return session.sparkContext._jsc is None  # a stopped context has no Java peer
    except Exception:
        return True


class SparkBackend:
    """Runs the batch query in the shared SparkSession: one job fills ``scored``, two read results."""

    name = "spark"

    def __init__(self, spark: SparkSession | None = None) -> None:
        self._spark = spark

    @property
    def spark(self) -> SparkSession:
        return self._spark if self._spark is not None else get_spark()

    def score(self, records: pa.Table | str | Path, catalog: Catalog, as_of: date) -> pa.Table:
        check_effective(catalog, as_of)
        query = build_query(catalog, as_of)
        spark = self.spark
        tmp: str | None = None
        views: list[str] = []
        kept: list[DataFrame] = []
        try:
            if isinstance(records, pa.Table):
                tmp = tempfile.mkdtemp(prefix="socred-spark-")
                path = os.path.join(tmp, "records.parquet")
                pq.write_table(records, path)
                df = spark.read.parquet(path)
            else:
                df = self._read(spark, str(records))
            missing = [c for c in RECORD_COLUMNS if c not in set(df.columns)]
            if missing:
                raise ValueError(f"the records lack the column(s) {', '.join(missing)}.")
            df.createOrReplaceTempView(query.records)
            views.append(query.records)
            for rel_name, table in query.relations.items():
                spark.createDataFrame(table).createOrReplaceTempView(rel_name)
                views.append(rel_name)
            # Spark inlines views: a step read by both results is cached, so the records are
            # scanned once. A large one is filled ahead (a job of its own is cheaper than
            # filling it from inside the next query); a small one when first computed.
            for step in query.steps:
                stage = spark.sql(step.sql)
                if step.materialize:
                    stage = stage.persist()
                    kept.append(stage)
                    if not step.small:
                        stage.count()
                stage.createOrReplaceTempView(step.name)
                views.append(step.name)
            combos = spark.sql(query.combos).toArrow()
            rows = spark.sql(query.rows).toArrow()
        finally:
            for v in views:
                spark.catalog.dropTempView(v)
            for stage in kept:
                stage.unpersist()
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
        return finalize(rows, combos)

    @staticmethod
    def _read(spark: SparkSession, path: str) -> DataFrame:
        from pyspark.errors import AnalysisException

        if not any(ch in path for ch in "*?[") and not Path(path).exists():
            raise ValueError(f"records file {path} does not exist.")
        try:
            return spark.read.parquet(path)
        except AnalysisException as e:
            raise ValueError(f"cannot read the records at {path}: {str(e).splitlines()[0]}") from e
