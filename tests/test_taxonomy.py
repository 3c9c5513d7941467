from __future__ import annotations

import io
from pathlib import Path

import pytest
from babel import Locale

from publisher.resources import package_data
from publisher.taxonomy import TaxonomyError, extract_taxonomy, load_taxonomy, slugify

# The page the taxonomy was taken from (its navigation lists the fields of work).
SEED = Path(__file__).resolve().parent / "data" / "seed-page.txt"
LOCALES = ["en", "fr", "de", "it", "ru", "es", "uk", "tr", "ar"]


@pytest.mark.parametrize(
    ("label", "slug"),
    [
        ("Cyber/ICT Security", "cyber-ict-security"),
        (
            "Reform and co-operation in the security sector",
            "reform-and-co-operation-in-the-security-sector",
        ),
        ("  Roma and Sinti ", "roma-and-sinti"),
        ("OSCE Secretariat", "osce-secretariat"),
    ],
)
def test_slugs_follow_the_contract(label: str, slug: str) -> None:
    """A slug is the label lower-cased, each run of non-alphanumerics turned into '-'."""
    assert slugify(label) == slug


def test_every_field_of_work_of_the_seed_is_in_the_taxonomy() -> None:
    """The 23 fields of work listed in the seed page's navigation are all there."""
    lines = SEED.read_text(encoding="utf-8").splitlines()
    start = lines.index("Fields of work") + 1
    labels = [line.removeprefix("- ") for line in lines[start : lines.index("- Field operations")]]
    taxonomy = load_taxonomy()
    assert [taxonomy.fields_of_work[slugify(label)].label for label in labels] == labels
    assert len(taxonomy.fields_of_work) == 23


def test_participating_states_and_partners_are_iso_codes_named_in_every_locale() -> None:
    """57 participating states and 11 partners, each named by CLDR in all nine locales."""
    taxonomy = load_taxonomy()
    assert len(taxonomy.country_groups["participating_states"]) == 57
    assert len(taxonomy.country_groups["asian_partners"]) == 5
    assert len(taxonomy.country_groups["mediterranean_partners"]) == 6
    assert "NO" in taxonomy.countries  # YAML 1.1 would read a bare NO as false
    for name in LOCALES:
        locale = Locale.parse(name)
        for code in taxonomy.countries:
            assert taxonomy.country_name(code, locale) != code, (name, code)


def test_the_organisation_s_own_names_win_in_english_only() -> None:
    """RU is 'Russian Federation' in English; other languages take CLDR's name."""
    taxonomy = load_taxonomy()
    assert taxonomy.country_name("RU", Locale("en")) == "Russian Federation"
    assert taxonomy.country_name("VA", Locale("en")) == "Holy See"
    assert taxonomy.country_name("RU", Locale("ru")) == "Россия"
    assert taxonomy.country_name("UZ", Locale("fr")) == "Ouzbékistan"


def test_issuers_regions_and_lookups() -> None:
    """Issuers resolve from 'Parent, Child' names; regions expand; names map to codes."""
    taxonomy = load_taxonomy()
    slug = taxonomy.issuer("OSCE Secretariat, Transnational Threats Department")
    assert slug == "transnational-threats-department"
    assert taxonomy.issuer_name(slug) == "OSCE Secretariat, Transnational Threats Department"
    assert taxonomy.issuers["project-co-ordinator-in-uzbekistan"].country == "UZ"
    assert taxonomy.issuer("Ministry of Silly Walks") is None
    assert taxonomy.expand(["central-asia", "GE"]) == {"KZ", "KG", "TJ", "TM", "UZ", "GE"}
    assert taxonomy.country("Russian Federation") == "RU"
    assert taxonomy.country("uzbekistan") == "UZ"
    assert taxonomy.field_of_work("Cyber/ICT Security") == "cyber-ict-security"
    extended = taxonomy.with_regions({"baltic-states": ["EE", "LV", "LT"]})
    assert extended.expand(["baltic-states"]) == {"EE", "LV", "LT"}
    assert "baltic-states" not in taxonomy.regions


def test_an_operator_taxonomy_with_an_unknown_region_member_is_refused(tmp_path: Path) -> None:
    """A region naming a country the taxonomy does not list is an error naming both."""
    path = tmp_path / "taxonomy.yaml"
    path.write_text(
        "fields_of_work: [Policing]\nissuers: [{label: Chairpersonship}]\n"
        "countries: {states: [AT]}\nregions: {alps: [AT, CH]}\n"
    )
    with pytest.raises(TaxonomyError, match=r"region 'alps' names unknown countries \['CH'\]"):
        load_taxonomy(path)


def test_the_babel_extractor_yields_every_label_with_its_line() -> None:
    """pybabel extract gets each field-of-work and issuer label from taxonomy.yaml."""
    data = package_data("data/taxonomy.yaml").read_bytes()
    messages = list(extract_taxonomy(io.BytesIO(data), None, None, None))
    texts = [m[2] for m in messages]
    assert "Cyber/ICT Security" in texts
    assert "Transnational Threats Department" in texts
    assert "Russian Federation" in texts
    lines = data.decode().splitlines()
    for line, _func, text, _comments in messages:
        assert text in lines[line - 1]
