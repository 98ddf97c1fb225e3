"""hodlflow: Bitcoin on-chain analytics on Spark and Delta Lake."""

__version__ = "0.1.0"
