"""Segment-name parsing and the user-extensible name table (ParaspinalFatLib.names)."""
from __future__ import annotations

import csv
import warnings

import pytest

from ParaspinalFatLib.errors import InputError, LevelError
from ParaspinalFatLib.anatomy.muscle_names import KINDS, builtin_table_path, default_name_table, load_name_table, tokenize
from ParaspinalFatLib.errors import NameWarning
from ParaspinalFatLib.anatomy.segment_names import ParsedName, parse_segment_name, parse_segment_names
from ParaspinalFatLib.anatomy.level_names import adjacent_vertebrae, canonical_level, disc_between, is_disc_level, is_vertebra_level, level_sort_key, next_vertebra

# name -> (muscle, side, level, kind); expectations written by hand from the anatomy,
# not from the code.
NAME_CASES = [
    # the brief's real-world spellings
    ("MF_L_L4/5", "multifidus", "left", "L4/5", "muscle"),
    ("multifidus left L4-L5", "multifidus", "left", "L4/5", "muscle"),
    ("ES right L5S1", "erector_spinae", "right", "L5/S1", "muscle"),
    ("Psoas_R_L3-4", "psoas", "right", "L3/4", "muscle"),
    ("autochthon_left", "autochthon", "left", None, "muscle"),
    ("erector spinae (L) L5/S1", "erector_spinae", "left", "L5/S1", "muscle"),
    ("Multifidus (R) L4_5", "multifidus", "right", "L4/5", "muscle"),
    ("lt MF L45", "multifidus", "left", "L4/5", "muscle"),
    ("iliopsoas_right", "iliopsoas", "right", None, "muscle"),
    ("quadratus_lumborum_left", "quadratus_lumborum", "left", None, "muscle"),
    ("vertebrae_L3", "vertebra", None, "L3", "vertebra"),
    ("vertebrae_S1", "vertebra", None, "S1", "vertebra"),
    ("sacrum", "sacrum", None, None, "sacrum"),
    ("disc_L4_L5", "disc", None, "L4/5", "disc"),
    ("disc_L5_S", "disc", None, "L5/S1", "disc"),
    ("L4-L5 disc", "disc", None, "L4/5", "disc"),
    ("IVD L3-L4", "disc", None, "L3/4", "disc"),
    ("gluteus_maximus_left", "gluteus_maximus", "left", None, "muscle"),
    ("rectus femoris R", "rectus_femoris", "right", None, "muscle"),
    ("adductor magnus", "adductor_magnus", None, None, "muscle"),
    ("vastus lateralis", "vastus_lateralis", None, None, "muscle"),
    # "L" as a side versus the L of a level
    ("ES_L5S1", "erector_spinae", None, "L5/S1", "muscle"),
    ("MF_L4/5_L", "multifidus", "left", "L4/5", "muscle"),
    ("MF_R_L4-L5", "multifidus", "right", "L4/5", "muscle"),
    ("L MF L3/4", "multifidus", "left", "L3/4", "muscle"),
    ("MF_L4_L", "multifidus", "left", "L4", "muscle"),
    ("Psoas_L3", "psoas", None, "L3", "muscle"),
    ("psoas L L3", "psoas", "left", "L3", "muscle"),
    ("PS_l_l3-4", "psoas", "left", "L3/4", "muscle"),
    # side spellings
    ("MF rt L4/5", "multifidus", "right", "L4/5", "muscle"),
    ("Multifidus_Left_L5-S1", "multifidus", "left", "L5/S1", "muscle"),
    ("erector_spinae_R.", "erector_spinae", "right", None, "muscle"),
    ("M. multifidus links L4/5", "multifidus", "left", "L4/5", "muscle"),
    ("MultifidusRight", "multifidus", "right", None, "muscle"),
    ("ErectorSpinaeLeft_L4-5", "erector_spinae", "left", "L4/5", "muscle"),
    # psoas vs iliopsoas vs psoas minor
    ("psoas major left", "psoas", "left", None, "muscle"),
    ("psoas minor left", "psoas_minor", "left", None, "muscle"),
    ("ilio-psoas R", "iliopsoas", "right", None, "muscle"),
    ("iliopsoas", "iliopsoas", None, None, "muscle"),
    # level spellings
    ("MF L4 - L5 left", "multifidus", "left", "L4/5", "muscle"),
    ("QL_R_L3L4", "quadratus_lumborum", "right", "L3/4", "muscle"),
    ("ES left T12-L1", "erector_spinae", "left", "T12/L1", "muscle"),
    ("ES left Th12/L1", "erector_spinae", "left", "T12/L1", "muscle"),
    ("MF R L5-S", "multifidus", "right", "L5/S1", "muscle"),
    ("MF R L5S", "multifidus", "right", "L5/S1", "muscle"),
    ("MF R l4_5", "multifidus", "right", "L4/5", "muscle"),
    ("multifidus L4/L5 right", "multifidus", "right", "L4/5", "muscle"),
    # discs, vertebrae, sacrum
    ("disc_T12_L1", "disc", None, "T12/L1", "disc"),
    ("intervertebral disc L5-S1", "disc", None, "L5/S1", "disc"),
    ("IVD_L4L5", "disc", None, "L4/5", "disc"),
    ("L4-L5", "disc", None, "L4/5", "disc"),
    ("L3", "vertebra", None, "L3", "vertebra"),
    ("T12", "vertebra", None, "T12", "vertebra"),
    ("S1", "vertebra", None, "S1", "vertebra"),
    ("vertebraeL3", "vertebra", None, "L3", "vertebra"),
    ("L3 vertebral body", "vertebra", None, "L3", "vertebra"),
    ("vertebrae_body", "vertebra", None, None, "vertebra"),
    ("intervertebral_discs", "disc", None, None, "disc"),
    ("os sacrum", "sacrum", None, None, "sacrum"),
    ("vertebrae_L6", "vertebra", None, "L6", "vertebra"),
    ("disc_L6_S1", "disc", None, "L6/S1", "disc"),
    # thigh / gluteal (seed 002)
    ("gluteus medius R", "gluteus_medius", "right", None, "muscle"),
    ("Gracilis_L", "gracilis", "left", None, "muscle"),
    ("adductor longus right", "adductor_longus", "right", None, "muscle"),
    ("VL_R", "vastus_lateralis", "right", None, "muscle"),
    ("vastus medialis left", "vastus_medialis", "left", None, "muscle"),
    ("rectus_femoris_left", "rectus_femoris", "left", None, "muscle"),
    ("quadriceps_femoris_left", "quadriceps_femoris", "left", None, "muscle"),
    ("thigh_posterior_compartment_right", "thigh_posterior_compartment", "right", None, "muscle"),
    ("sartorius_left", "sartorius", "left", None, "muscle"),
    ("biceps femoris long head L", "biceps_femoris_long_head", "left", None, "muscle"),
    # combined posterior group
    ("MF+ES L", "autochthon", "left", None, "muscle"),
    ("paraspinal muscles right L4/5", "autochthon", "right", "L4/5", "muscle"),
    # other structures and unknown names (kept in snake_case, side split off)
    ("subcutaneous_fat", "subcutaneous_fat", None, None, "other"),
    ("Subcutaneous fat L4/5", "subcutaneous_fat", None, "L4/5", "other"),
    ("kidney_left", "kidney", "left", None, "other"),
    ("liver", "liver", None, None, "other"),
    ("Segment_1", "segment_1", None, None, "other"),
    ("lumbar vertebral column", "lumbar_vertebral_column", None, None, "other"),
    ("transversus abdominis left", "transversus_abdominis", "left", None, "other"),
    # strict rule: extra words make a different structure
    ("multifidus_fat", "multifidus_fat", None, None, "other"),
    ("MF lesion R", "mf_lesion", "right", None, "other"),
]


@pytest.mark.parametrize("name, muscle, side, level, kind", NAME_CASES)
def test_parse_real_world_names(name, muscle, side, level, kind):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none of these well-formed names may warn
        parsed = parse_segment_name(name)
    assert isinstance(parsed, ParsedName)
    assert (parsed.muscle, parsed.side, parsed.level, parsed.kind) == (muscle, side, level, kind)
    assert parsed.raw == name
    assert parsed.kind in KINDS
    assert parsed.key == (muscle, side, level)


def test_parsed_name_is_frozen():
    p = parse_segment_name("MF_L_L4/5")
    with pytest.raises(Exception):
        p.side = "right"


LEVEL_CASES = [
    ("L4-L5", "L4/5"),
    ("L45", "L4/5"),
    ("l4_5", "L4/5"),
    ("L4/L5", "L4/5"),
    ("L4/5", "L4/5"),
    ("L4 5", "L4/5"),
    ("L4\u2013L5", "L4/5"),  # en dash
    ("L5-S1", "L5/S1"),
    ("L5S1", "L5/S1"),
    ("L5S", "L5/S1"),
    ("L5_S", "L5/S1"),
    ("S1-L5", "L5/S1"),  # reversed order
    ("L5-L4", "L4/5"),
    ("T12-L1", "T12/L1"),
    ("T12L1", "T12/L1"),
    ("Th12/L1", "T12/L1"),
    ("L1-2", "L1/2"),
    ("L12", "L1/2"),  # there is no vertebra L12
    ("C7-T1", "C7/T1"),
    ("T11/12", "T11/12"),
    ("L5-L6", "L5/6"),
    ("L6-S1", "L6/S1"),
    ("T13-L1", "T13/L1"),
    ("L3", "L3"),
    ("T12", "T12"),  # a vertebra, not T1/2
    ("S1", "S1"),
    ("vertebrae_L3", "L3"),
    ("mid L4-5 disc", "L4/5"),
    # not a (single) level
    ("L3-L5", None),
    ("L9", None),
    ("S1-S2", None),
    ("C1-C2", None),
    ("L4/5 and L5/S1", None),
    ("F-1", None),
    ("", None),
    (None, None),
    ("MF", None),
]


@pytest.mark.parametrize("text, expected", LEVEL_CASES)
def test_canonical_level(text, expected):
    assert canonical_level(text) == expected


def test_canonical_level_keeps_its_answers_when_asked_again_and_when_its_memo_is_full():
    import ParaspinalFatLib.anatomy.level_names as level_names

    memo = level_names._canonical_of_text
    memo.cache_clear()
    for _ in range(3):
        assert [canonical_level(text) for text, _ in LEVEL_CASES] == [expected for _, expected in LEVEL_CASES]
    # more spellings than the memo holds: it stays bounded and the answers stay right
    assert [canonical_level(f"MF L4-5 copy {i}") for i in range(memo.cache_info().maxsize + 50)] == \
        ["L4/5"] * (memo.cache_info().maxsize + 50)
    assert memo.cache_info().currsize <= memo.cache_info().maxsize
    assert [canonical_level(text) for text, _ in LEVEL_CASES] == [expected for _, expected in LEVEL_CASES]

    class Odd(str):  # a str subclass is scanned every time, never kept
        pass

    memo.cache_clear()
    assert canonical_level(Odd("L4-L5")) == "L4/5"
    assert memo.cache_info().currsize == 0


def test_disc_helpers():
    assert adjacent_vertebrae("L5/S1") == ("L5", "S1")
    assert adjacent_vertebrae("L4-L5") == ("L4", "L5")
    assert adjacent_vertebrae("L45") == ("L4", "L5")
    assert adjacent_vertebrae("T12/L1") == ("T12", "L1")
    assert disc_between("L5", "S1") == "L5/S1"
    assert disc_between("L4", "L5") == "L4/5"
    assert disc_between("L4", "L3") == "L3/4"  # order does not matter
    assert disc_between("vertebrae_T12", "vertebrae_L1") == "T12/L1"
    for level in ("L3/4", "L4/5", "L5/S1", "T12/L1"):
        assert disc_between(*adjacent_vertebrae(level)) == level
    with pytest.raises(LevelError, match="adjacent"):
        disc_between("L3", "L5")
    with pytest.raises(LevelError, match="L4/5"):
        adjacent_vertebrae("L4")
    assert next_vertebra("L5") == "S1"
    assert next_vertebra("L5", present=["L6", "L5"]) == "L6"
    assert next_vertebra("T12") == "L1"
    assert next_vertebra("S1") is None
    assert is_disc_level("L4/5") and not is_disc_level("L4-5") and not is_disc_level("L4")
    assert is_vertebra_level("S1") and not is_vertebra_level("L4/5")
    assert sorted(["L5/S1", "S1", "L3", "T12/L1", "L4/5", "L4", "junk"], key=level_sort_key) == [
        "T12/L1",
        "L3",
        "L4",
        "L4/5",
        "L5/S1",
        "S1",
        "junk",
    ]


def test_tokenize():
    assert tokenize("Erector-Spinae (L)") == ("erector", "spinae", "l")
    assert tokenize("MultifidusLeft") == ("multifidus", "left")
    assert tokenize("  ") == ()


@pytest.mark.parametrize(
    "name, message",
    [
        ("MF L3-L5", "not a single vertebra"),
        ("MF_L4/5_L5/S1", "several levels"),
        ("disc_L4", "vertebra level"),
        ("MF left right", "both sides"),
    ],
)
def test_ambiguous_names_warn_and_leave_field_empty(name, message):
    with pytest.warns(NameWarning, match=message):
        parsed = parse_segment_name(name)
    assert parsed.muscle in ("multifidus", "disc")
    if "sides" in message:
        assert parsed.side is None
    else:
        assert parsed.level is None


def test_parsing_again_gives_the_same_result_and_the_same_warnings(tmp_path):
    # each table keeps its names' results: a repeated name must warn again, per call, and a
    # user table must not see the built-in table's results (SM is semimembranosus there)
    for _ in range(3):
        with pytest.warns(NameWarning) as caught:
            parsed = parse_segment_name("MF_L4/5_L5/S1 left right")
        texts = sorted(str(w.message) for w in caught)
        assert len(texts) == 2 and "both sides" in texts[0] and "several levels" in texts[1]
        assert parsed.key == ("multifidus", None, None)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert parse_segment_name("SM_R").key == ("semimembranosus", "right", None)
    path = tmp_path / "names.csv"
    path.write_text("kind,canonical,alias,side\nmuscle,semispinalis,SM,\n", encoding="utf-8")
    table = load_name_table(path)
    assert parse_segment_name("SM_R", table).key == ("semispinalis", "right", None)
    assert parse_segment_name("SM_R").key == ("semimembranosus", "right", None)
    # not a string: parsed as its text, never kept
    assert parse_segment_name(None).raw == "" and parse_segment_name(12).raw == "12"



def test_parsing_many_names_gives_each_names_result_and_warnings_in_order(tmp_path):
    names = ["MF_L_L4/5", "MF_L4/5_L5/S1 left right", "SM_R", None, "ES_L5S1", "vertebrae_L4", "MF_L_L4/5"]
    one_by_one = []
    with pytest.warns(NameWarning) as single:
        for name in names:
            one_by_one.append(parse_segment_name(name))
    with pytest.warns(NameWarning) as bulk:
        parsed = parse_segment_names(names)
    assert parsed == one_by_one
    assert [p.key for p in parsed[:3]] == [("multifidus", "left", "L4/5"), ("multifidus", None, None),
                                           ("semimembranosus", "right", None)]
    assert parsed[3].raw == "" and parsed[4].key == ("erector_spinae", None, "L5/S1")
    assert [str(w.message) for w in bulk] == [str(w.message) for w in single] and len(bulk) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warn=False: the parsing only
        assert parse_segment_names(names, warn=False) == one_by_one
    path = tmp_path / "names.csv"
    path.write_text("kind,canonical,alias,side\nmuscle,semispinalis,SM,\n", encoding="utf-8")
    assert parse_segment_names(["SM_R"], load_name_table(path))[0].key == ("semispinalis", "right", None)
    assert parse_segment_names([]) == []

# ----------------------------------------------------------------------------- table
def test_builtin_table_is_well_formed():
    table = default_name_table()
    with builtin_table_path().open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    assert {"alias", "canonical", "kind"} <= set(rows[0])
    assert len(table) == len(rows)
    muscles = table.canonical_names("muscle")
    for required in (
        "multifidus",
        "erector_spinae",
        "psoas",
        "autochthon",
        "iliopsoas",
        "quadratus_lumborum",
        "gluteus_maximus",
        "gracilis",
        "rectus_femoris",
        "adductor_magnus",
        "adductor_longus",
        "vastus_lateralis",
        "vastus_medialis",
        "vastus_intermedius",
    ):
        assert required in muscles
    assert table.lookup("Erector_Spinae").canonical == "erector_spinae"
    assert table.lookup("nonsense") is None
    assert "MF" in table


def test_table_is_read_by_column_name(tmp_path):
    """The built-in rows with columns reordered (and an extra column) give the same table."""
    with builtin_table_path().open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    path = tmp_path / "reordered.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["comment", "side", "kind", "canonical", "alias"], extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({**r, "comment": "x"})
    table = load_name_table(path)
    base = default_name_table()
    assert {k: (e.canonical, e.kind, e.side) for k, e in table.entries.items()} == {
        k: (e.canonical, e.kind, e.side) for k, e in base.entries.items()
    }


def test_user_table_adds_and_overrides_synonyms(tmp_path):
    path = tmp_path / "my_names.csv"
    path.write_text(
        "# my clinic's spellings\n"
        "kind,canonical,alias,side\n"
        "muscle,erector_spinae,Rückenstrecker,\n"
        "muscle,multifidus,lmf,left\n"
        "muscle,multifidus,rmf,right\n"
        "muscle,semispinalis,SM,\n"  # overrides the built-in SM = semimembranosus
        "ignore,,ROI2,\n",
        encoding="utf-8",
    )
    table = load_name_table(path)
    assert parse_segment_name("Rückenstrecker links L4/5", table).key == ("erector_spinae", "left", "L4/5")
    assert parse_segment_name("LMF L5-S1", table).key == ("multifidus", "left", "L5/S1")
    assert parse_segment_name("rmf_L3-4", table).key == ("multifidus", "right", "L3/4")
    assert parse_segment_name("SM_R", table).key == ("semispinalis", "right", None)
    assert parse_segment_name("SM_R").key == ("semimembranosus", "right", None)  # default untouched
    assert parse_segment_name("MF ROI2 R", table).key == ("multifidus", "right", None)
    # the built-in vocabulary is still there
    assert parse_segment_name("MF_L_L4/5", table).key == ("multifidus", "left", "L4/5")
    # without the user table the synonym is unknown
    assert parse_segment_name("Rückenstrecker links L4/5").kind == "other"


def test_extra_aliases():
    table = load_name_table(
        extra={
            "RMS": "erector_spinae",  # kind taken from the table
            "lower back fat": ("subcutaneous_fat", "other"),
            "lpm": ("psoas", "muscle", "left"),
        }
    )
    assert parse_segment_name("RMS_R_L4/5", table).key == ("erector_spinae", "right", "L4/5")
    assert parse_segment_name("RMS_R_L4/5", table).kind == "muscle"
    p = parse_segment_name("lower back fat", table)
    assert (p.muscle, p.kind) == ("subcutaneous_fat", "other")
    assert parse_segment_name("LPM L3/4", table).key == ("psoas", "left", "L3/4")
    rows_table = load_name_table(extra=[{"alias": "dorsal mass", "canonical": "autochthon", "kind": "muscle"}])
    assert parse_segment_name("dorsal mass left", rows_table).key == ("autochthon", "left", None)


def test_parsing_with_alternating_tables_uses_each_tables_own_aliases():
    # the results are kept per table (the last table's memo is reused): switching back and forth
    # must never give one table's parse under another
    import gc
    import weakref

    custom = load_name_table(extra={"RMS": "erector_spinae"})
    for _ in range(3):
        assert parse_segment_name("RMS_left").key == ("rms", "left", None)  # unknown to the built-in table
        assert parse_segment_name("RMS_left", custom).key == ("erector_spinae", "left", None)
    other = load_name_table(extra={"RMS": "multifidus"})
    assert parse_segment_name("RMS_left", other).key == ("multifidus", "left", None)
    assert parse_segment_name("RMS_left", custom).key == ("erector_spinae", "left", None)
    # the parser keeps no table alive
    gone = weakref.ref(other)
    del other
    gc.collect()
    assert gone() is None


@pytest.mark.parametrize(
    "content, message",
    [
        ("alias,canonical\nmf,multifidus\n", r"lacks column\(s\) \['kind'\]"),
        ("alias,canonical,kind\nmf,multifidus,musle\n", r"line 2: kind 'musle'"),
        ("alias,canonical,kind,side\nmf,multifidus,muscle,up\n", "side 'up'"),
        ("alias,canonical,kind\nxx,,muscle\n", "canonical"),
        ("alias,canonical,kind\nabc,multifidus,muscle\nABC,psoas,muscle\n", "line 3: alias 'ABC' is already defined"),
        ("", "empty"),
    ],
)
def test_bad_user_tables_name_file_and_problem(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message) as info:
        load_name_table(path)
    assert "bad.csv" in str(info.value)


def test_missing_user_table(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_name_table(tmp_path / "nope.csv")


# ----------------------------------------------------------------------------- real names
def test_totalsegmentator_snomed_names(realdata):
    """Every TotalSegmentator structure name: side agrees with its SNOMED codes, vertebra
    levels agree with the SNOMED code meaning ('L3 vertebra')."""
    path = realdata / "totalsegmentator" / "totalsegmentator_snomed_mapping.csv"
    with path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) > 100
    kinds = {}
    for row in rows:
        meanings = " ".join(v for k, v in row.items() if k.endswith("CodeMeaning")).lower().split()
        expected_side = "left" if "left" in meanings else "right" if "right" in meanings else None
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            parsed = parse_segment_name(row["Structure"])
        assert parsed.side == expected_side, row["Structure"]
        type_meaning = row["SegmentedPropertyTypeCodeSequence.CodeMeaning"]
        if type_meaning.endswith(" vertebra") and canonical_level(type_meaning):
            assert (parsed.kind, parsed.level) == ("vertebra", canonical_level(type_meaning)), row["Structure"]
        kinds[row["Structure"]] = parsed
    assert kinds["autochthon_left"].key == ("autochthon", "left", None)
    assert kinds["iliopsoas_right"].key == ("iliopsoas", "right", None)
    assert kinds["sacrum"].kind == "sacrum"
    assert kinds["vertebrae_S1"].key == ("vertebra", None, "S1")
    assert sum(p.kind == "vertebra" and p.level is not None for p in kinds.values()) == 25


@pytest.mark.parametrize("name,muscle,side", [
    ("ESL", "erector_spinae", "left"), ("ESR", "erector_spinae", "right"), ("MFL", "multifidus", "left"),
    ("RMF", "multifidus", "right"), ("LES L4/5", "erector_spinae", "left"), ("RES", "erector_spinae", "right"),
])
def test_side_glued_abbreviations(name, muscle, side):
    parsed = parse_segment_name(name)
    assert (parsed.muscle, parsed.side, parsed.kind) == (muscle, side, "muscle")
