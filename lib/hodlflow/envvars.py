"""The environment variables hodlflow reads its secrets from, named in one place.

A password never goes on a command line (``ps`` and shell histories show those) nor into the
settings files by default: the commands read it from these variables and hand it on in private
(mode 0600) files that are deleted when the process ends (docs/sql-and-bi.md,
docs/real-node.md). Settings themselves never read the environment (``hodlflow.config``); the
command line does, and passes the value as a setting.
"""

from __future__ import annotations

# The PostgreSQL metastore's password (setting spark.metastore.password).
METASTORE_PASSWORD = "HODLFLOW_METASTORE_PASSWORD"
# The node's JSON-RPC password of `hodlflow ingest --rpc-user` (setting ingest.rpc.password).
RPC_PASSWORD = "HODLFLOW_RPC_PASSWORD"
# The TLS keystore's password of `hodlflow serve-sql` (setting serve.tls_keystore_password).
SERVE_KEYSTORE_PASSWORD = "HODLFLOW_SERVE_KEYSTORE_PASSWORD"
# A new login's password for `hodlflow serve-sql-user add` (instead of the prompt or stdin).
SERVE_USER_PASSWORD = "HODLFLOW_SERVE_USER_PASSWORD"

SECRETS = (METASTORE_PASSWORD, RPC_PASSWORD, SERVE_KEYSTORE_PASSWORD, SERVE_USER_PASSWORD)
