"""A Spark step: reads text lines from its input folder, writes their lengths as parquet."""

import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

source, target = sys.argv[1], sys.argv[2]
spark = SparkSession.builder.appName("word-lengths").getOrCreate()
lines = spark.read.text(source)
lines.select(F.col("value").alias("word"), F.length("value").alias("length")).write.mode("overwrite").parquet(
    target
)
print(f"wrote {lines.count()} rows to {target}")
spark.stop()
