"""The columnar hand-off: tagged rows reach Spark as Arrow batches, value for value."""

from __future__ import annotations

from hodlflow.ingest import arrow_rows
from hodlflow.ingest.blocks_dir import PARSED_SCHEMA

# Hand-written tagged rows: every kind, NULLs where the tables have them (an output without an
# address, a block without a pool tag, a coinbase without a BIP34 height), values at the ends
# of their types (nSequence 0xffffffff and nLockTime in a bigint, a negative block version in an
# int, 21M BTC in satoshis, a non-ASCII tag).
BLOCK = (840_000, "00" * 32, "11" * 32, 1_713_571_767, 1_713_570_000, 19_833, -0x20000000,
         "22" * 32, 0x17034219, 86_388_558_925_171.1, 4_294_967_295, 2_325_617, 800_000,
         3_993_000, 2, 2_100_000_000_000_000, 312_500_000, 312_510_000, "ViaBTC/€", None)  # fmt: skip
TX = ("aa" * 32, "bb" * 32, 840_000, 19_833, "00" * 32, 1, False, 225, 144, 573, 2,
      4_294_967_295, True, 1, 2, 99_000)  # fmt: skip
OUTPUTS = [
    ("aa" * 32, 0, 840_000, 19_833, 1, False, 90_000, "p2wpkh", "bc1qexample", True),
    ("aa" * 32, 1, 840_000, 19_833, 1, False, 0, "nulldata", None, False),
]
INPUT = ("aa" * 32, 0, 840_000, 19_833, 1, "cc" * 32, 4_294_967_295, 4_294_967_293)


def tagged(n_outputs: int) -> list[tuple]:
    rows = [("b", BLOCK, None, None, None), ("t", None, TX, None, None)]
    rows += [("o", None, None, OUTPUTS[i % 2], None) for i in range(n_outputs)]
    rows += [("i", None, None, None, INPUT)]
    return rows


def test_arrow_batches_give_the_rows_createdataframe_gives(spark):
    rows = tagged(5)
    expected = spark.createDataFrame(rows, PARSED_SCHEMA).collect()
    # Two tasks, each parsing its item into the rows; batches of 2 rows split the outputs.
    got = arrow_rows.parsed_frame(
        spark, [(1,), (2,)], "n int", lambda items: (r for _ in items for r in rows),
        PARSED_SCHEMA,
    ).collect()  # fmt: skip
    key = lambda r: (r.kind, str(r))  # noqa: E731
    assert sorted(got, key=key) == sorted(expected * 2, key=key)
    assert len(got) == 2 * len(rows)


def test_batches_hold_one_kind_each_and_at_most_the_batch_size():
    schema = arrow_rows.arrow_schema(PARSED_SCHEMA)
    batches = list(arrow_rows.tagged_batches(tagged(5), schema, batch_rows=2))
    kinds = [(b.column(0).to_pylist(), b.num_rows) for b in batches]
    assert [k for k, _ in kinds if len(set(k)) != 1] == []
    assert sorted(k[0] + str(n) for k, n in kinds) == ["b1", "i1", "o1", "o2", "o2", "t1"]
    outputs = [b for b in batches if b.column(0)[0].as_py() == "o"]
    assert [r["o"] for b in outputs for r in b.to_pylist()] == [
        dict(zip(PARSED_SCHEMA["o"].dataType.names, OUTPUTS[i % 2], strict=True)) for i in range(5)
    ]
    assert all(r["b"] is None and r["t"] is None for b in outputs for r in b.to_pylist())


def test_items_reach_the_parser_as_the_tuples_they_were(spark):
    items = [("blk00000.dat", [(1, 10, 8, 100, "h1"), (2, 11, 116, 90, "h2")])]
    seen = (
        arrow_rows.parsed_frame(
            spark, items, "path string, blocks array<struct<a:int,b:bigint,c:bigint,d:bigint,e:string>>",
            lambda it: (("t", None, (repr(item),) + (None,) * 15, None, None) for item in it),
            PARSED_SCHEMA,
        )
        .select("t.txid")
        .collect()
    )  # fmt: skip
    assert [r.txid for r in seen] == [repr(items[0])]
