"""Harnesses the tests start real parts with: a btcd node, a PostgreSQL server, a Spark
standalone cluster, Airflow's own environment, free ports, signed regtest transactions, and the
hand-built and simulated tiny chains."""
