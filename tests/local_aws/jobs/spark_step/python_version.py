"""A Spark step that reports the Python of its driver and of its executors (PYSPARK_PYTHON)."""

import sys

from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("python-version").getOrCreate()
workers = spark.sparkContext.parallelize([0, 1], 2).map(lambda _: "%d.%d" % sys.version_info[:2]).collect()
print("driver python %d.%d" % sys.version_info[:2])
print("executor python " + ",".join(sorted(set(workers))))
spark.stop()
