"""Which earlier flows an entities run re-classes: the entities whose type the run changed and
the survivors of its merges, over entities.retype_days before the run (hand-made tables)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from hodlflow.config import load_settings
from hodlflow.entities.transforms import first_retyped_day, retyped_ids

RUN_DAY = dt.date(2025, 6, 1)
TYPES = "entity_id bigint, entity_type string"


def _ids(df) -> list[int]:
    return sorted(r.entity_id for r in df.collect())


def test_retyped_entities_are_type_changes_and_merge_survivors(spark):
    old = spark.createDataFrame(
        [(1, "unknown"), (2, "unknown"), (3, "miner"), (4, "exchange"), (9, "unknown")], TYPES
    )
    # After the run: 1 became an exchange, 2 stayed unknown, 3 a miner still, 4 absorbed 9
    # (merged away), 5 is new.
    final = spark.createDataFrame([(1, "exchange"), (2, "unknown"), (3, "miner"), (4, "exchange"),
                                   (5, "unknown")], TYPES)  # fmt: skip
    merged = spark.createDataFrame([(9, 4)], "old_entity_id bigint, new_entity_id bigint")
    assert _ids(retyped_ids(final, old, merged)) == [1, 4]


def test_the_first_day_to_reclass_is_the_earliest_transfer_of_a_retyped_entity_in_the_window(spark):
    ent = load_settings("test").entities
    transfers = spark.createDataFrame(
        [
            (RUN_DAY - dt.timedelta(days=400), 7, 1),  # retyped receiver, out of the window
            (RUN_DAY - dt.timedelta(days=90), 2, 3),  # nobody retyped
            (RUN_DAY - dt.timedelta(days=40), 1, 8),  # retyped sender
            (RUN_DAY - dt.timedelta(days=20), 6, 1),  # retyped receiver
        ],
        "day date, sender bigint, receiver bigint",
    )
    retyped = spark.createDataFrame([(1,)], "entity_id bigint")
    assert ent.retype_days == 365
    assert first_retyped_day(transfers, retyped, RUN_DAY, ent) == RUN_DAY - dt.timedelta(days=40)
    none = spark.createDataFrame([], "entity_id bigint")
    assert first_retyped_day(transfers, none, RUN_DAY, ent) == RUN_DAY
    off = replace(ent, retype_days=0)
    assert first_retyped_day(transfers, retyped, RUN_DAY, off) == RUN_DAY
    short = replace(ent, retype_days=30)
    assert first_retyped_day(transfers, retyped, RUN_DAY, short) == RUN_DAY - dt.timedelta(days=20)
