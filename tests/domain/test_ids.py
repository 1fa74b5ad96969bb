"""Identifier parsing, validation and masking (spec: identifiers.md)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from socred.domain.ids import (
    IdentifierError,
    SubjectId,
    check_identifier,
    mask_person_name,
    mask_plate,
    mask_resident_id,
    mask_subject_id,
    normalise,
    org_code_check_char,
    parse_many,
    parse_subject_id,
    resident_check_char,
    uscc_check_char,
    validate_resident,
    validate_uscc,
)

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
DIGITS = "0123456789"
TODAY = date(2025, 6, 30)
PILOT_CODE = "91350100M0001TGQXM"

VALID_USCC = {
    "91330100799655058B": "330100",
    "9144030071526726XG": "440300",
    "91440300708461136T": "440300",
    "91110000600037341L": "110000",
    "91310114MA1GTPB26F": "310114",
    "914101086905876455": "410108",
    "121200004013590816": "120000",
}
VALID_RESIDENT = {
    "11010519491231002X": "110105",
    "360426199101010071": "360426",
    "44011320141005001X": "440113",
}


# --- independent reference implementations, written straight from the spec formulas ---------------


def ref_resident_check(first17: str) -> str:
    s = sum(int(c) * (2 ** (18 - i) % 11) for i, c in enumerate(first17, start=1)) % 11
    return "10X98765432"[s]


def ref_org_check(body8: str) -> str:
    weights = [3, 7, 9, 10, 5, 8, 4, 2]
    s = sum(
        (int(c) if c.isdigit() else ord(c) - ord("A") + 10) * w for c, w in zip(body8, weights, strict=True)
    )
    c = 11 - s % 11
    return {10: "X", 11: "0"}.get(c, str(c))


def ref_uscc_check(first17: str) -> str:
    s = sum(ALPHABET.index(ch) * (3 ** (i - 1) % 31) for i, ch in enumerate(first17, start=1))
    c = 31 - s % 31
    return ALPHABET[0 if c == 31 else c]


def ref_resident_valid(value: str, today: date) -> bool:
    if len(value) != 18 or any(c not in DIGITS for c in value[:17]) or value[17] not in DIGITS + "X":
        return False
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    return born.year >= 1900 and born <= today and ref_resident_check(value[:17]) == value[17]


def ref_uscc_valid(value: str) -> bool:
    return (
        len(value) == 18
        and all(c in ALPHABET for c in value)
        and ref_org_check(value[8:16]) == value[16]
        and ref_uscc_check(value[:17]) == value[17]
    )


def reason_of(raw: str, today: date | None = TODAY) -> tuple[str, str | None]:
    with pytest.raises(IdentifierError) as ei:
        parse_subject_id(raw, today)
    return ei.value.reason, ei.value.kind


def with_check(first17: str) -> str:
    return first17 + ref_resident_check(first17)


# --- the spec's vectors ------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "region"), sorted(VALID_USCC.items()))
def test_valid_uscc_vectors(value: str, region: str) -> None:
    assert parse_subject_id(value) == SubjectId(value=value, kind="organization", region=region)
    validate_uscc(value)
    assert ref_uscc_valid(value)


@pytest.mark.parametrize(("value", "region"), sorted(VALID_RESIDENT.items()))
def test_valid_resident_vectors(value: str, region: str) -> None:
    assert parse_subject_id(value) == SubjectId(value=value, kind="person", region=region)
    assert parse_subject_id(value, TODAY) == SubjectId(value=value, kind="person", region=region)
    validate_resident(value)


def test_resident_vector_with_wrong_check_character() -> None:
    assert reason_of("110101199003077777") == ("check character should be '4', got '7'", "person")
    with pytest.raises(IdentifierError) as ei:
        validate_resident("110101199003077777")
    assert ei.value.reason == "check character should be '4', got '7'"
    assert ei.value.kind == "person"


def test_resident_vector_born_before_1900() -> None:
    assert reason_of("440524188001010014") == (
        "date of birth 1880-01-01 (characters 7-14) is before 1900",
        "person",
    )


def test_early_pilot_code_is_rejected_with_a_checksum_explanation() -> None:
    reason, kind = reason_of(PILOT_CODE)
    assert kind == "organization"
    assert reason.startswith("check character should be '1', got 'M'")
    assert "checksum fails" in reason
    assert "pilot codes" in reason
    result = check_identifier(PILOT_CODE)
    assert result["valid"] is False
    assert result["error"] == reason


# --- normalisation and regions -----------------------------------------------------------------------


def test_normalise_strips_and_upper_cases() -> None:
    assert normalise("  11010519491231002x\t") == "11010519491231002X"
    assert normalise("\u300091310114ma1gtpb26f\n") == "91310114MA1GTPB26F"
    assert normalise("") == ""


def test_parse_normalises_before_reading() -> None:
    assert parse_subject_id(" 11010519491231002x ") == SubjectId("11010519491231002X", "person", "110105")
    assert parse_subject_id("\t91310114ma1gtpb26f\n") == SubjectId(
        "91310114MA1GTPB26F", "organization", "310114"
    )
    validate_resident(" 11010519491231002x")
    validate_uscc("91310114ma1gtpb26f ")


def test_region_is_chars_1_to_6_of_a_resident_and_3_to_8_of_a_credit_code() -> None:
    assert parse_subject_id("360426199101010071").region == "360426"
    assert parse_subject_id("91310114MA1GTPB26F").region == "310114"
    assert parse_subject_id("121200004013590816").region == "120000"


def test_subject_id_is_frozen() -> None:
    sid = parse_subject_id("360426199101010071")
    with pytest.raises(AttributeError):
        sid.value = "x"  # type: ignore[misc]


# --- errors of the whole reading ---------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["", "   ", "\t\n"])
def test_empty_value(raw: str) -> None:
    assert reason_of(raw) == (
        "identifier is empty: enter an 18-character resident identity number or unified social credit code",
        None,
    )


@pytest.mark.parametrize(
    ("raw", "n"),
    [
        ("1101051949123100", 16),
        ("11010519491231002", 17),
        ("11010519491231002XX", 19),
        ("9133010079965505", 16),
    ],
)
def test_wrong_length(raw: str, n: int) -> None:
    assert reason_of(raw) == (f"identifier must be 18 characters, got {n}", None)


def test_length_counts_the_normalised_value() -> None:
    assert reason_of("  11010519491231002  ") == ("identifier must be 18 characters, got 17", None)


@pytest.mark.parametrize("letter", ["I", "O", "Z", "S", "V"])
def test_letters_outside_the_credit_code_alphabet(letter: str) -> None:
    raw = f"9133{letter}100799655058B"
    assert reason_of(raw) == (
        f"character 5 '{letter}' is not allowed in a unified social credit code (no I, O, Z, S, V)",
        "organization",
    )
    assert reason_of(raw.lower())[0].startswith(f"character 5 '{letter}' is not allowed")


def test_other_characters_outside_the_alphabet_name_their_position() -> None:
    assert reason_of("91330100-99655058B") == (
        "character 9 '-' is not allowed in a unified social credit code "
        "(only digits and the letters A-Y except I, O, S, V)",
        "organization",
    )
    assert reason_of("91330100７99655058B")[0].startswith("character 9 '７' is not allowed")


def test_organization_code_check_failure() -> None:
    assert ref_org_check("79965504") == "X"
    assert reason_of("91330100799655048B") == (
        "organization code check character (position 17) should be 'X', got '8'",
        "organization",
    )
    with pytest.raises(IdentifierError) as ei:
        validate_uscc("91330100799655048B")
    assert ei.value.reason == "organization code check character (position 17) should be 'X', got '8'"
    assert ei.value.kind == "organization"


def test_whole_code_check_failure() -> None:
    reason, kind = reason_of("91330100799655058C")
    assert kind == "organization"
    assert reason.startswith("check character should be 'B', got 'C'")
    assert "checksum fails" in reason


def test_an_18_digit_value_with_a_real_date_reads_as_a_resident_number() -> None:
    # born in the future: the resident reading names the date
    future = with_check("11010120300101123")
    assert reason_of(future) == (
        "date of birth 2030-01-01 (characters 7-14) is in the future (today is 2025-06-30)",
        "person",
    )
    # born 1880 with a wrong check character: the date is reported first
    assert reason_of("440524188001010015")[1] == "person"
    # the check character X also reads as a resident number
    assert reason_of("11010519491231003X") == (
        f"check character should be '{ref_resident_check('11010519491231003')}', got 'X'",
        "person",
    )


def test_an_18_digit_value_without_a_real_date_reads_as_a_credit_code() -> None:
    value = "110101199002301234"  # 30 February
    reason, kind = reason_of(value)
    assert kind == "organization"
    assert reason == "organization code check character (position 17) should be '7', got '3'"
    assert ref_org_check(value[8:16]) == "7"


def test_a_credit_code_letter_at_position_18_reads_as_a_credit_code() -> None:
    value = "11010119900307777Y"
    reason, kind = reason_of(value)
    assert kind == "organization"
    assert (
        reason
        == f"organization code check character (position 17) should be '{ref_org_check(value[8:16])}', got '7'"
    )


def test_a_character_outside_both_alphabets_at_position_18_reads_as_a_resident_number() -> None:
    assert reason_of("11010119900307777I") == (
        "check character (position 18) 'I' is not allowed in a resident identity number (must be a digit or 'X')",
        "person",
    )


# --- resident-number errors (validate_resident) ------------------------------------------------------


def resident_reason(value: str, today: date | None = TODAY) -> str:
    with pytest.raises(IdentifierError) as ei:
        validate_resident(value, today)
    assert ei.value.kind == "person"
    return ei.value.reason


def test_resident_length() -> None:
    assert resident_reason("11010519491231002") == "resident identity number must be 18 characters, got 17"
    assert resident_reason("") == "resident identity number must be 18 characters, got 0"


def test_resident_non_digit_names_the_position() -> None:
    assert resident_reason("11010519491231A02X") == (
        "character 15 'A' is not allowed in a resident identity number (characters 1-17 must be digits)"
    )
    assert resident_reason("9131011AMA1GTPB26F") == (
        "character 8 'A' is not allowed in a resident identity number (characters 1-17 must be digits)"
    )
    assert resident_reason("91330100799655058B") == (
        "check character (position 18) 'B' is not allowed in a resident identity number (must be a digit or 'X')"
    )


def test_resident_bad_check_character() -> None:
    assert resident_reason("11010519491231002*") == (
        "check character (position 18) '*' is not allowed in a resident identity number (must be a digit or 'X')"
    )


@pytest.mark.parametrize(
    ("ymd", "why"),
    [
        ("19900230", "'19900230' (characters 7-14) is not a real calendar date"),
        ("19001301", "'19001301' (characters 7-14) is not a real calendar date"),
        ("19000229", "'19000229' (characters 7-14) is not a real calendar date"),  # 1900 is no leap year
        ("20230229", "'20230229' (characters 7-14) is not a real calendar date"),
        ("00000101", "'00000101' (characters 7-14) is not a real calendar date"),
        ("18991231", "1899-12-31 (characters 7-14) is before 1900"),
        ("20250701", "2025-07-01 (characters 7-14) is in the future (today is 2025-06-30)"),
    ],
)
def test_resident_date_of_birth(ymd: str, why: str) -> None:
    assert resident_reason(with_check(f"110101{ymd}123")) == f"date of birth {why}"


@pytest.mark.parametrize("ymd", ["19000101", "20000229", "20040229", "20250630"])
def test_resident_date_of_birth_limits_that_are_accepted(ymd: str) -> None:
    value = with_check(f"110101{ymd}123")
    validate_resident(value, TODAY)
    assert parse_subject_id(value, TODAY) == SubjectId(value, "person", "110101")


def test_today_accepts_a_datetime() -> None:
    value = with_check("11010120250701123")
    assert resident_reason(value, datetime(2025, 6, 30, 12, 0)) == (
        "date of birth 2025-07-01 (characters 7-14) is in the future (today is 2025-06-30)"
    )


def test_default_today_is_the_shanghai_date() -> None:
    shanghai_today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    born_today = with_check(f"110101{shanghai_today:%Y%m%d}123")
    tomorrow = shanghai_today + timedelta(days=1)
    born_tomorrow = with_check(f"110101{tomorrow:%Y%m%d}123")
    assert parse_subject_id(born_today).kind == "person"
    validate_resident(born_today)
    assert resident_reason(born_tomorrow, None) == (
        f"date of birth {tomorrow.isoformat()} (characters 7-14) is in the future "
        f"(today is {shanghai_today.isoformat()})"
    )
    assert reason_of(born_tomorrow, None)[1] == "person"


# --- credit-code errors (validate_uscc) ---------------------------------------------------------------


def uscc_reason(value: str) -> str:
    with pytest.raises(IdentifierError) as ei:
        validate_uscc(value)
    assert ei.value.kind == "organization"
    return ei.value.reason


def test_uscc_errors_in_order() -> None:
    assert uscc_reason("91330100799655058") == "unified social credit code must be 18 characters, got 17"
    # alphabet before checksums
    assert uscc_reason("91330100799655048O") == (
        "character 18 'O' is not allowed in a unified social credit code (no I, O, Z, S, V)"
    )
    # organization-code check before the whole-code check
    assert uscc_reason("91330100799655048C") == (
        "organization code check character (position 17) should be 'X', got '8'"
    )
    assert uscc_reason("9133010079965505XB").startswith("organization code check character (position 17)")
    assert uscc_reason("91330100799655058C").startswith("check character should be 'B', got 'C'")
    assert uscc_reason(PILOT_CODE).startswith("check character should be '1', got 'M'")


def test_a_resident_number_is_no_credit_code() -> None:
    assert uscc_reason("11010519491231002X").startswith("organization code check character (position 17)")


# --- check characters ----------------------------------------------------------------------------------


def test_check_characters() -> None:
    assert resident_check_char("11010519491231002") == "X"
    assert resident_check_char("36042619910101007") == "1"
    assert resident_check_char("11010119900307777") == "4"
    assert uscc_check_char("91330100799655058") == "B"
    assert uscc_check_char("91310114ma1gtpb26") == "F"
    assert uscc_check_char("91350100M0001TGQX") == "1"
    assert org_code_check_char("79965505") == "8"
    assert org_code_check_char("71526726") == "X"
    assert org_code_check_char("11070434") == "0"
    assert org_code_check_char("MA1GTPB2") == "6"


def test_check_character_input_errors() -> None:
    with pytest.raises(IdentifierError) as ei:
        resident_check_char("1101051949123100")
    assert (
        ei.value.reason == "a resident check character is computed from exactly 17 digits, got 16 characters"
    )
    with pytest.raises(IdentifierError) as ei:
        resident_check_char("1101051949123100A")
    assert ei.value.reason.startswith("character 17 'A' is not allowed")
    with pytest.raises(IdentifierError) as ei:
        uscc_check_char("9133010079965505")
    assert ei.value.reason == "a credit-code check character is computed from exactly 17 characters, got 16"
    with pytest.raises(IdentifierError) as ei:
        uscc_check_char("9133010079965505I")
    assert (
        ei.value.reason
        == "character 17 'I' is not allowed in a unified social credit code (no I, O, Z, S, V)"
    )
    with pytest.raises(IdentifierError) as ei:
        org_code_check_char("7996550")
    assert (
        ei.value.reason == "an organization code check character is computed from exactly 8 characters, got 7"
    )
    with pytest.raises(IdentifierError) as ei:
        org_code_check_char("7996-505")
    assert (
        ei.value.reason
        == "character 5 '-' is not allowed in an organization code body (digits and letters only)"
    )


# --- the error type and check_identifier ---------------------------------------------------------------


def test_identifier_error() -> None:
    e = IdentifierError("check character should be 'X', got '7'", "person")
    assert isinstance(e, ValueError)
    assert str(e) == "check character should be 'X', got '7'"
    assert e.reason == "check character should be 'X', got '7'"
    assert e.kind == "person"
    assert IdentifierError("identifier is empty").kind is None


def test_check_identifier_valid() -> None:
    assert check_identifier(" 11010519491231002x") == {
        "value": " 11010519491231002x",
        "valid": True,
        "kind": "person",
        "region": "110105",
        "error": None,
    }
    assert check_identifier("91310114MA1GTPB26F") == {
        "value": "91310114MA1GTPB26F",
        "valid": True,
        "kind": "organization",
        "region": "310114",
        "error": None,
    }


def test_check_identifier_invalid() -> None:
    assert check_identifier("110101199003077777", TODAY) == {
        "value": "110101199003077777",
        "valid": False,
        "kind": None,
        "region": None,
        "error": "check character should be '4', got '7'",
    }
    assert check_identifier("1234") == {
        "value": "1234",
        "valid": False,
        "kind": None,
        "region": None,
        "error": "identifier must be 18 characters, got 4",
    }


# --- masking ------------------------------------------------------------------------------------------


def test_mask_resident_id() -> None:
    assert mask_resident_id("11010519491231002X") == "1101**********002X"
    assert mask_resident_id(" 11010519491231002x ") == "1101**********002X"
    assert mask_resident_id("360426199101010071") == "3604**********0071"
    assert mask_resident_id("11010519491231002") == "*" * 17
    assert mask_resident_id("") == ""


def test_mask_subject_id() -> None:
    assert mask_subject_id("11010519491231002X") == "1101**********002X"
    assert mask_subject_id("11010519491231002x") == "1101**********002X"
    assert mask_subject_id("91330100799655058B") == "91330100799655058B"
    assert mask_subject_id("91310114ma1gtpb26f") == "91310114MA1GTPB26F"
    assert mask_subject_id("121200004013590816") == "121200004013590816"
    # invalid values: first 4 and last 4 at most, never the whole value
    assert mask_subject_id("110101199003077777") == "1101**********7777"
    assert mask_subject_id(PILOT_CODE) == "9135**********GQXM"
    assert mask_subject_id("11010519491231002") == "*" * 17
    assert mask_subject_id("1234") == "****"
    assert mask_subject_id("") == ""


def test_mask_person_name() -> None:
    assert mask_person_name("张三丰") == "张**"
    assert mask_person_name("张三") == "张*"
    assert mask_person_name("欧阳修") == "欧**"
    assert mask_person_name("阿依古丽·买买提") == "阿***·***"
    assert mask_person_name("John Smith") == "J*** *****"
    assert mask_person_name("  John   Smith ") == "J*** *****"
    assert mask_person_name("张") == "*"
    assert mask_person_name("") == ""


def test_mask_plate() -> None:
    assert mask_plate("沪A12345") == "沪A***45"
    assert mask_plate("沪AD12345") == "沪A****45"
    assert mask_plate(" 沪a·12345 ") == "沪A***45"
    assert mask_plate("沪A-12345") == "沪A***45"
    assert mask_plate("沪A12") == "沪A**"
    assert mask_plate("沪") == "*"


# --- properties ---------------------------------------------------------------------------------------

birth_dates = st.dates(min_value=date(1900, 1, 1), max_value=TODAY)


@given(
    region=st.text(alphabet=DIGITS, min_size=6, max_size=6),
    born=birth_dates,
    seq=st.text(alphabet=DIGITS, min_size=3, max_size=3),
    other=st.sampled_from(DIGITS + "X"),
)
def test_property_resident_check_character(region: str, born: date, seq: str, other: str) -> None:
    body = f"{region}{born:%Y%m%d}{seq}"
    check = resident_check_char(body)
    assert check == ref_resident_check(body)
    value = body + check
    validate_resident(value, TODAY)
    expected = SubjectId(value, "person", region)
    assert parse_subject_id(value, TODAY) == expected
    assert parse_subject_id(value.lower(), TODAY) == expected
    assert mask_subject_id(value) == f"{value[:4]}{'*' * 10}{value[14:]}"

    assume(other != check)
    wrong = body + other
    message = f"check character should be '{check}', got '{other}'"
    with pytest.raises(IdentifierError) as ei:
        validate_resident(wrong, TODAY)
    assert (ei.value.reason, ei.value.kind) == (message, "person")
    if ref_uscc_valid(wrong):  # an all-digit value may still be a valid credit code
        assert parse_subject_id(wrong, TODAY).kind == "organization"
    else:
        assert reason_of(wrong) == (message, "person")
    assert mask_subject_id(wrong) == f"{wrong[:4]}{'*' * 10}{wrong[14:]}"


@given(
    head=st.text(alphabet=ALPHABET, min_size=8, max_size=8),
    org_body=st.text(alphabet=ALPHABET, min_size=8, max_size=8),
    other=st.sampled_from(ALPHABET),
    other_org=st.sampled_from(DIGITS + "X"),
)
def test_property_uscc_check_characters(head: str, org_body: str, other: str, other_org: str) -> None:
    org_check = org_code_check_char(org_body)
    assert org_check == ref_org_check(org_body)
    first17 = head + org_body + org_check
    check = uscc_check_char(first17)
    assert check == ref_uscc_check(first17)
    value = first17 + check
    validate_uscc(value)
    parsed = parse_subject_id(value, TODAY)
    if ref_resident_valid(value, TODAY):  # the resident reading comes first
        assert parsed == SubjectId(value, "person", value[:6])
    else:
        assert parsed == SubjectId(value, "organization", head[2:])

    if other != check:
        wrong = first17 + other
        with pytest.raises(IdentifierError) as ei:
            validate_uscc(wrong)
        assert ei.value.reason.startswith(f"check character should be '{check}', got '{other}'")
        assert "checksum fails" in ei.value.reason
        if not ref_resident_valid(wrong, TODAY):
            reason, kind = reason_of(wrong)
            if kind == "organization":
                assert reason == ei.value.reason
            else:  # 17 digits, a digit or X, a real date of birth: read as a resident number
                assert kind == "person"
                assert wrong[:17].isdigit() and wrong[17] in DIGITS + "X"

    if other_org != org_check:
        wrong_org = head + org_body + other_org + check
        with pytest.raises(IdentifierError) as ei:
            validate_uscc(wrong_org)
        assert ei.value.reason == (
            f"organization code check character (position 17) should be '{org_check}', got '{other_org}'"
        )


@given(st.text(alphabet=DIGITS + ALPHABET + "xIOZSV-* ", min_size=16, max_size=20))
def test_property_parse_agrees_with_the_validators(raw: str) -> None:
    value = normalise(raw)
    resident_ok = ref_resident_valid(value, TODAY)
    uscc_ok = ref_uscc_valid(value)
    result = check_identifier(raw, TODAY)
    assert set(result) == {"value", "valid", "kind", "region", "error"}
    assert result["value"] == raw
    if resident_ok:
        assert result == {"value": raw, "valid": True, "kind": "person", "region": value[:6], "error": None}
    elif uscc_ok:
        assert result == {
            "value": raw,
            "valid": True,
            "kind": "organization",
            "region": value[2:8],
            "error": None,
        }
    else:
        assert result["valid"] is False
        assert result["kind"] is None and result["region"] is None
        assert isinstance(result["error"], str) and result["error"]
        with pytest.raises(IdentifierError):
            validate_resident(value, TODAY)
        with pytest.raises(IdentifierError):
            validate_uscc(value)


@given(st.text(max_size=30))
def test_property_parse_only_raises_identifier_error(raw: str) -> None:
    try:
        sid = parse_subject_id(raw, TODAY)
    except IdentifierError as e:
        assert e.reason
        assert e.kind in (None, "person", "organization")
    else:
        assert sid.kind in ("person", "organization")
        assert len(sid.value) == 18
        assert len(sid.region) == 6


@given(st.text(alphabet=DIGITS + "X", min_size=18, max_size=18))
def test_property_mask_subject_id_never_shows_a_resident_number(value: str) -> None:
    masked = mask_subject_id(value)
    if "*" in masked:
        assert masked == f"{value[:4]}{'*' * 10}{value[14:]}"
    else:
        # only a valid credit code that could not pass for a resident number, even one born later, is shown
        assert masked == value
        assert ref_uscc_valid(value)
        assert not ref_resident_valid(value, date.max)


def test_mask_subject_id_hides_a_credit_code_that_could_pass_for_a_resident_number() -> None:
    # a valid all-digit credit code whose characters 7-14 form a date of birth (1990-01-01) and that
    # ends in digits: it might be a mistyped resident number, so it is masked
    value = "911010199001011226"
    assert ref_uscc_valid(value)
    assert not ref_resident_valid(value, TODAY)
    assert parse_subject_id(value, TODAY) == SubjectId(value, "organization", "101019")
    assert mask_subject_id(value) == "9110**********1226"


@given(st.text(min_size=2, max_size=12).filter(lambda s: len(" ".join(s.split())) >= 2))
def test_property_mask_person_name_never_returns_the_name(name: str) -> None:
    cleaned = " ".join(name.split())
    masked = mask_person_name(name)
    assert masked != cleaned
    assert len(masked) == len(cleaned)
    assert "*" in masked


# ---------------------------------------------------------------- many at once


@st.composite
def _candidates(draw: st.DrawFn) -> str:
    """Valid residents and credit codes, and small corruptions of them (a character, the case, space)."""
    if draw(st.booleans()):
        region = draw(st.sampled_from(["110105", "310104", "440113", "360426"]))
        day = date(1900, 1, 1) + timedelta(days=draw(st.integers(-400, 48_000)))
        seq = draw(st.integers(0, 999))
        first17 = f"{region}{day:%Y%m%d}{seq:03d}"
        value = first17 + ref_resident_check(first17)
    else:
        alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
        head = draw(st.text(alphabet, min_size=8, max_size=8))
        body = draw(st.text("0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=8, max_size=8))
        first17 = head + body + ref_org_check(body)
        value = first17 + ref_uscc_check(first17)
    how = draw(st.integers(0, 5))
    if how == 1:
        i = draw(st.integers(0, 17))
        value = value[:i] + draw(st.sampled_from("0123456789XIOZ中 x")) + value[i + 1 :]
    elif how == 2:
        value = " " + value.lower() + "\t"
    elif how == 3:
        value = value[: draw(st.integers(0, 17))]
    return value


@settings(max_examples=300, deadline=None)
@given(st.lists(_candidates(), max_size=40), st.sampled_from([TODAY, date(1950, 6, 1), date(2200, 1, 1)]))
def test_parse_many_reads_as_parse_subject_id(values: list[str], today: date) -> None:
    got = parse_many(values, today)
    for v, g in zip(values, got, strict=True):
        try:
            want: SubjectId | None = parse_subject_id(v, today)
        except IdentifierError:
            want = None
        assert g == want, v
