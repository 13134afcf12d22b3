"""One module per `bench` verb (run, table, predict, report, speed). Only `pnlp_bench/cli.py` imports them."""
