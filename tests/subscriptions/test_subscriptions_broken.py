"""Golden tests: each broken file in ``broken/`` and the exact lines ``publisher check``
would print for it, in ``broken/NAME.expected`` (paths written as ``NAME.yaml``).

To add a case, write ``NAME.yaml`` and its ``NAME.expected`` by hand, and check that
the messages say where, what was found and what was expected.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from publisher.errors import ValidationFailed
from publisher.subscriptions import check_subscriptions, load_subscriptions
from publisher.taxonomy import Taxonomy, load_taxonomy

BROKEN = Path(__file__).parent / "broken"
CASES = sorted(path.stem for path in BROKEN.glob("*.yaml"))
LOCALES = ["en", "fr", "de", "it", "ru", "es", "uk", "tr", "ar"]


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return load_taxonomy()


@pytest.mark.parametrize("name", CASES)
def test_broken_file_reports_exactly_the_expected_lines(
    name: str, taxonomy: Taxonomy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each broken file yields exactly its .expected lines, in file order."""
    monkeypatch.chdir(BROKEN)
    problems = check_subscriptions(Path(f"{name}.yaml"), taxonomy=taxonomy, locales=LOCALES)
    expected = (BROKEN / f"{name}.expected").read_text(encoding="utf-8").splitlines()
    assert [str(problem) for problem in problems] == expected


def test_corpus_covers_every_kind_of_problem() -> None:
    """The corpus keeps at least one pair per problem kind, and no file without its lines."""
    assert len(CASES) >= 20
    for name in CASES:
        assert (BROKEN / f"{name}.expected").is_file(), f"{name}.yaml has no .expected"
        assert (BROKEN / f"{name}.expected").read_text(encoding="utf-8").strip(), name


def test_load_raises_with_every_problem_at_once(taxonomy: Taxonomy) -> None:
    """load_subscriptions raises ValidationFailed carrying all problems, not the first."""
    path = BROKEN / "many-problems.yaml"
    with pytest.raises(ValidationFailed) as caught:
        load_subscriptions(path, taxonomy=taxonomy, locales=LOCALES)
    expected = (BROKEN / "many-problems.expected").read_text(encoding="utf-8").splitlines()
    assert len(caught.value.problems) == len(expected) >= 15
    assert str(caught.value).splitlines() == [f"{path.parent}/{line}" for line in expected]


def test_a_huge_file_points_at_its_one_mistake(tmp_path: Path, taxonomy: Taxonomy) -> None:
    """Among 20,000 well-formed subscribers, one unknown slug is found at its line."""
    lines = ["subscribers:"]
    for n in range(20_000):
        lines += [f"  - email: reader{n}@example.org", "    fields_of_work: [policing]"]
    lines[-1] = "    fields_of_work: [policeing]"
    path = tmp_path / "huge.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    problems = [str(p) for p in check_subscriptions(path, taxonomy=taxonomy, locales=LOCALES)]
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:{len(lines)}:22: ")  # the slug, not the list
    assert "'policeing'" in problems[0] and "policing" in problems[0]
