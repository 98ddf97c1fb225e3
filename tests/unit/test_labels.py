"""Pool lists, exchange seeds and pool matching on hand-written files and blocks.

Every expected value is written out by hand from the file or the block drawn in the test;
the Spark matcher is checked against rows written by hand and against :func:`match_pool`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pyspark.testing import assertDataFrameEqual

from hodlflow.entities.labels import (
    LabelsError,
    Pool,
    block_pools,
    load_label_seeds,
    load_pools,
    match_pool,
)
from hodlflow.tables import SchemaError

ROOT = Path(__file__).resolve().parents[2]
BLOCKS = "height int, coinbase_tag string"
COINBASE_OUTPUTS = "height int, address string"
POOLS_OUT = "height int, pool_id int, pool_name string, matched_by string"


def _pool(pool_id: int, name: str, addresses=(), tags=()) -> Pool:
    return Pool(
        pool_id, name, tuple(addresses), tuple(re.compile(t, re.IGNORECASE) for t in tags), ""
    )


ALPHA = _pool(10, "Alpha", ["addrA1", "addrA2"], ["/Alpha/"])
BETA = _pool(20, "Beta", ["addrB"], ["beta pool", r"mined by b\d+"])
GAMMA = _pool(30, "Gamma", [], ["/alpha/|gamma"])  # shares Alpha's tag: list order decides
POOLS = [ALPHA, BETA, GAMMA]


def _pool_entry(**over) -> dict:
    entry = {"id": 1, "name": "P", "addresses": [], "tags": ["/P/"], "link": ""}
    entry.update(over)
    return entry


def _write_json(tmp_path: Path, value) -> Path:
    path = tmp_path / "pools.json"
    path.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
    return path


def _write(tmp_path: Path, text: str, name: str = "seeds.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- load_pools ---------------------------------------------------------------------------


def test_pools_load_in_file_order_with_case_insensitive_tags(tmp_path):
    path = _write_json(
        tmp_path,
        [
            {
                "id": 7,
                "name": "Foo Pool",
                "addresses": ["1Foo", "bc1qfoo", "1Foo"],
                "tags": ["/Foo/", "Mined by foo"],
                "link": "https://foo.example",
                "slug": "foo",  # other keys are ignored
            },
            {"id": 3, "name": "七彩", "addresses": [], "tags": [], "link": ""},
        ],
    )
    foo, other = load_pools(path)
    assert (foo.id, foo.name, foo.addresses, foo.link) == (
        7,
        "Foo Pool",
        ("1Foo", "bc1qfoo"),  # the repeat within one pool is dropped
        "https://foo.example",
    )
    assert [t.pattern for t in foo.tags] == ["/Foo/", "Mined by foo"]
    assert foo.tags[1].search("MINED BY FOO") is not None
    assert (other.id, other.name, other.addresses, other.tags) == (3, "七彩", (), ())


def test_a_file_that_is_not_json_is_named_with_line_and_column(tmp_path):
    path = _write(tmp_path, '[\n  {"id": 1,}\n]', "pools.json")
    with pytest.raises(LabelsError) as err:
        load_pools(path)
    assert str(err.value) == (
        f"{path}: not JSON: Expecting property name enclosed in double quotes (line 2, column 12)"
    )


def test_a_missing_pool_file_is_named(tmp_path):
    path = tmp_path / "absent.json"
    with pytest.raises(LabelsError, match=f"^{re.escape(str(path))}: cannot read: "):
        load_pools(path)


def test_a_pool_list_must_be_an_array(tmp_path):
    path = _write_json(tmp_path, {"pools": []})
    with pytest.raises(LabelsError) as err:
        load_pools(path)
    assert str(err.value) == f"{path}: must be a JSON array of pools, got a dict"


def test_a_pool_entry_must_be_an_object(tmp_path):
    path = _write_json(tmp_path, [_pool_entry(), "Foo"])
    with pytest.raises(LabelsError) as err:
        load_pools(path)
    assert str(err.value) == f"{path}: [1]: must be an object, got str"


@pytest.mark.parametrize("field", ["id", "name", "addresses", "tags", "link"])
def test_a_missing_field_is_named_with_its_index(tmp_path, field):
    entry = _pool_entry(id=2)
    del entry[field]
    path = _write_json(tmp_path, [_pool_entry(), entry])
    with pytest.raises(LabelsError) as err:
        load_pools(path)
    assert str(err.value) == f"{path}: [1]: missing field {field!r}"


@pytest.mark.parametrize(
    ("over", "where", "message"),
    [
        ({"id": "1"}, "id", "must be int, got str '1'"),
        ({"id": True}, "id", "must be int, got bool True"),
        ({"id": 1.0}, "id", "must be int, got float 1.0"),
        ({"id": -1}, "id", "must be between 0 and 2147483647, got -1"),
        ({"name": None}, "name", "must be str, got null None"),
        ({"name": " "}, "name", "must not be empty"),
        ({"addresses": "1Foo"}, "addresses", "must be list, got str '1Foo'"),
        ({"addresses": ["1Foo", 5]}, "addresses[1]", "must be str, got int 5"),
        ({"tags": ["/P/", ""]}, "tags[1]", "must not be empty"),
        ({"link": None}, "link", "must be str, got null None"),
    ],
)
def test_a_wrong_typed_field_is_named_with_its_index(tmp_path, over, where, message):
    path = _write_json(tmp_path, [_pool_entry(**over)])
    with pytest.raises(LabelsError) as err:
        load_pools(path)
    assert str(err.value) == f"{path}: [0].{where}: {message}"


def test_a_tag_that_does_not_compile_is_named(tmp_path):
    path = _write_json(tmp_path, [_pool_entry(tags=["/ok/", "(unclosed"])])
    with pytest.raises(LabelsError) as err:
        load_pools(path)
    assert str(err.value) == (
        f"{path}: [0].tags[1]: not a valid regular expression '(unclosed': "
        "missing ), unterminated subpattern at position 0"
    )


def test_a_duplicate_id_names_both_entries(tmp_path):
    path = _write_json(
        tmp_path, [_pool_entry(id=4), _pool_entry(id=5, name="Q"), _pool_entry(id=4, name="R")]
    )
    with pytest.raises(LabelsError) as err:
        load_pools(path)
    assert str(err.value) == f"{path}: [2].id: id 4 is already used by [0]"


def test_an_address_in_two_pools_names_both_places(tmp_path):
    path = _write_json(
        tmp_path,
        [
            _pool_entry(id=1, addresses=["1A", "1B"]),
            _pool_entry(id=2, addresses=["1C", "1B"]),
        ],
    )
    with pytest.raises(LabelsError) as err:
        load_pools(path)
    assert str(err.value) == f"{path}: [1].addresses[1]: address 1B is already in [0].addresses[1]"


# -- load_label_seeds ---------------------------------------------------------------------


def test_seeds_skip_comments_and_blank_lines_and_ignore_extra_columns(tmp_path):
    path = _write(
        tmp_path,
        "# exchange seeds\n"
        "\n"
        "source,address,label\n"
        "public,1Aaa,Binance\n"
        "  # an indented comment\n"
        "public, bc1qbbb ,Bitfinex\n"
        "\n"
        "again,1Aaa,Binance\n",
    )
    assert load_label_seeds(path) == [("1Aaa", "Binance"), ("bc1qbbb", "Bitfinex")]


def test_a_seed_file_with_only_comments_has_no_header(tmp_path):
    path = _write(tmp_path, "# nothing here\n\n")
    with pytest.raises(LabelsError) as err:
        load_label_seeds(path)
    assert str(err.value) == f"{path}: no header line (expected columns address,label)"


def test_a_header_without_label_is_named_with_its_line(tmp_path):
    path = _write(tmp_path, "# seeds\naddress,name\n1Aaa,Binance\n")
    with pytest.raises(LabelsError) as err:
        load_label_seeds(path)
    assert str(err.value) == (
        f"{path}: line 2: the header must name the columns address and label, got address,name"
    )


def test_an_empty_address_is_named_with_its_line(tmp_path):
    path = _write(tmp_path, "address,label\n1Aaa,Binance\n\n ,Kraken\n")
    with pytest.raises(LabelsError) as err:
        load_label_seeds(path)
    assert str(err.value) == f"{path}: line 4: empty address"


def test_an_empty_or_missing_label_is_named_with_its_line(tmp_path):
    path = _write(tmp_path, "address,label\r\n1Aaa,Binance\r\n# x\r\n1Bbb\r\n")
    with pytest.raises(LabelsError) as err:
        load_label_seeds(path)
    assert str(err.value) == f"{path}: line 4: empty label for address 1Bbb"


def test_an_address_with_two_labels_names_both_lines(tmp_path):
    path = _write(tmp_path, "address,label\n1Aaa,Binance\n1Bbb,Kraken\n1Aaa,Bitfinex\n")
    with pytest.raises(LabelsError) as err:
        load_label_seeds(path)
    assert str(err.value) == (
        f"{path}: line 4: address 1Aaa is labelled 'Bitfinex' here and 'Binance' on line 2"
    )


# -- match_pool ---------------------------------------------------------------------------


def test_an_address_match_beats_a_tag_match():
    assert match_pool("/Alpha/ mined", ["1x", "addrB"], POOLS) is BETA


def test_tags_match_without_regard_to_case():
    assert match_pool("xx MINED BY B42 yy", [], POOLS) is BETA


def test_the_first_pool_in_list_order_wins_a_tag():
    assert match_pool("/alpha/", [], POOLS) is ALPHA
    assert match_pool("/alpha/", [], [GAMMA, ALPHA]) is GAMMA


def test_the_first_pool_in_list_order_wins_an_address():
    assert match_pool(None, ["addrB", "addrA2"], POOLS) is ALPHA


def test_no_address_and_no_tag_match_no_pool():
    assert match_pool("Mined by someone", ["addrZ"], POOLS) is None
    assert match_pool(None, [], POOLS) is None
    assert match_pool("/Alpha/", ["addrA1"], []) is None


def test_tags_are_searched_not_matched_from_the_start():
    assert match_pool("\x03abc Gamma!", [], POOLS) is GAMMA


# -- block_pools --------------------------------------------------------------------------


BLOCK_ROWS = [
    (1, "/Alpha/ x"),  # tag says Alpha, the payout says Beta
    (2, "MINED BY B7"),
    (3, "/alpha/"),  # Alpha and Gamma tags: Alpha is first
    (4, "gamma"),
    (5, None),
    (6, "nothing"),  # pays addresses of Alpha and Beta: Alpha is first
    (7, "Gamma"),  # pays one Alpha address twice
    (8, ""),
]
OUTPUT_ROWS = [
    (1, "addrB"),
    (1, "addrZ"),
    (2, "addrZ"),
    (4, "addrZ"),
    (5, None),
    (6, "addrB"),
    (6, "addrA2"),
    (7, "addrA1"),
    (7, "addrA1"),
    (99, "addrB"),  # no such block
]


def test_block_pools_names_each_block_as_written_by_hand(spark):
    blocks = spark.createDataFrame(BLOCK_ROWS, BLOCKS)
    outputs = spark.createDataFrame(OUTPUT_ROWS, COINBASE_OUTPUTS)
    actual = block_pools(spark, blocks, outputs, POOLS)
    expected = spark.createDataFrame(
        [
            (1, 20, "Beta", "address"),
            (2, 20, "Beta", "tag"),
            (3, 10, "Alpha", "tag"),
            (4, 30, "Gamma", "tag"),
            (5, None, None, None),
            (6, 10, "Alpha", "address"),
            (7, 10, "Alpha", "address"),
            (8, None, None, None),
        ],
        POOLS_OUT,
    )
    assertDataFrameEqual(actual, expected)


def test_block_pools_equals_match_pool_on_every_row(spark):
    blocks = spark.createDataFrame(BLOCK_ROWS, BLOCKS)
    outputs = spark.createDataFrame(OUTPUT_ROWS, COINBASE_OUTPUTS)
    got = {r["height"]: r for r in block_pools(spark, blocks, outputs, POOLS).collect()}
    assert sorted(got) == [h for h, _ in BLOCK_ROWS]
    for height, text in BLOCK_ROWS:
        pool = match_pool(text, [a for h, a in OUTPUT_ROWS if h == height], POOLS)
        assert (got[height]["pool_id"], got[height]["pool_name"]) == (
            (pool.id, pool.name) if pool else (None, None)
        ), height


def test_block_pools_uses_python_regular_expressions(spark):
    # (?P<name>...) is Python's named group; Java's regex would reject it.
    delta = _pool(40, "Delta", [], [r"(?P<tag>/delta/)\s+\d"])
    blocks = spark.createDataFrame([(1, "/DELTA/ 7"), (2, "/delta/x")], BLOCKS)
    outputs = spark.createDataFrame([], COINBASE_OUTPUTS)
    actual = block_pools(spark, blocks, outputs, [delta])
    expected = spark.createDataFrame([(1, 40, "Delta", "tag"), (2, None, None, None)], POOLS_OUT)
    assertDataFrameEqual(actual, expected)


def test_block_pools_with_no_pools_names_no_block(spark):
    blocks = spark.createDataFrame([(1, "/Alpha/")], BLOCKS)
    outputs = spark.createDataFrame([(1, "addrA1")], COINBASE_OUTPUTS)
    actual = block_pools(spark, blocks, outputs, [])
    assertDataFrameEqual(actual, spark.createDataFrame([(1, None, None, None)], POOLS_OUT))


def test_block_pools_names_a_missing_column(spark):
    blocks = spark.createDataFrame([(1,)], "height int")
    outputs = spark.createDataFrame([], COINBASE_OUTPUTS)
    with pytest.raises(SchemaError, match=r"blocks: missing column\(s\) \['coinbase_tag'\]"):
        block_pools(spark, blocks, outputs, POOLS)


# -- shipped files ------------------------------------------------------------------------


def test_the_shipped_pool_list_loads_and_names_well_known_tags():
    pools = load_pools(ROOT / "conf" / "pools.json")
    assert len(pools) >= 20
    assert match_pool("\x03Foundry USA Pool #dropgold/", [], pools).name == "Foundry USA"
    assert match_pool("Mined by AntPool bj\x1e", [], pools).name == "AntPool"
    assert match_pool("/ViaBTC/Mined by x/", [], pools).name == "ViaBTC"
    assert match_pool("OCEAN.XYZ", [], pools).name == "OCEAN"
    assert match_pool("/BTCxCOM/", [], pools) is None  # dots are escaped


def test_the_shipped_exchange_seeds_load():
    seeds = load_label_seeds(ROOT / "conf" / "labels" / "exchanges.csv")
    assert 3 <= len(seeds) <= 8
    assert ("34xp4vRoCGJym3xR7yCVPFHoCNxv4Twseo", "Binance") in seeds
