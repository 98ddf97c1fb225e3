"""Bitcoin blocks, transactions, scripts and addresses; blk files; node RPC."""
