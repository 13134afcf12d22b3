"""How rough `bench reproduce --dry-run`'s other-row estimate is: each row of Tables 6 and 7 that ran at the
paper's protocol, estimated as if it had not (another row's run on the same data, times the two rows' pace
ratio where both ran elsewhere: `scale_by_other_rows`), against the compute its record measured.

    python tools/estimate_check.py [--output-root outputs] [--results-dir results]

Prints one line per (row, reference row, place of the ratio) and the estimate over the measured compute.
Reads records only; nothing trains.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pnlp_bench.commands import reproduce
from pnlp_bench.commands import table as tables
from pnlp_bench.core import store
from pnlp_bench.core.record import compute_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-root", type=Path, default=Path("outputs"))
    parser.add_argument("--results-dir", type=Path, default=Path("results"))
    args = parser.parse_args()
    done = store.finished(args.output_root, args.results_dir)
    by_row = reproduce.runs_by_row(args.output_root, args.results_dir, done)
    names = {tuple(sorted(row.overrides)): row.name for number in ("5", "6", "7") for row in tables.load_spec(number).rows}
    lines = set()
    for key, places in by_row.items():
        for (table, budget, data), (record, _) in places.items():
            if table not in ("6", "7") or budget != "paper":
                continue
            measured = compute_seconds(store.with_history(record))
            for other, their_places in by_row.items():
                reference = next((entry for (t, _, d), entry in their_places.items() if (t, d) == (table, data)), None)
                if other == key or reference is None:
                    continue
                paced = reproduce.paced_seconds(store.with_history(reference[0]), record.get("epochs") or 80)
                for place, (mine, _) in places.items():
                    if place[0] == table or place not in their_places or not paced:
                        continue
                    ours, theirs = reproduce.train_pace(mine), reproduce.train_pace(their_places[place][0])
                    if ours and theirs:
                        guess = paced * ours / theirs
                        lines.add(f"table {table} {names.get(key, key)} on {' '.join(data) or 'its data'}: measured "
                                  f"{measured / 3600:.2f} h; from {names.get(other, other)} ({reference[1]} budget) x "
                                  f"{ours / theirs:.2f} (table {place[0]}, {place[1]}): {guess / 3600:.2f} h, "
                                  f"{guess / measured:.2f}x")
    print("\n".join(sorted(lines)))


if __name__ == "__main__":
    main()
