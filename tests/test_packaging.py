from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from hatchling.builders.wheel import WheelBuilder

REPO = Path(__file__).resolve().parent.parent


def test_the_wheel_carries_templates_catalogs_data_and_migrations(tmp_path: Path) -> None:
    """An installed wheel finds its bundled files through the package, from any directory."""
    wheel = Path(next(iter(WheelBuilder(str(REPO)).build(directory=str(tmp_path / "dist")))))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "site")
    for expected in (
        "publisher/_bundled/locales/messages.pot",
        "publisher/_bundled/templates/README.md",
        "publisher/data/taxonomy.yaml",
        "publisher/_bundled/sample/subscriptions.yaml",
        "publisher/_bundled/sample/content/2024-12-06-tashkent-workshop.en.md",
        "publisher/_bundled/locales/ru/LC_MESSAGES/messages.po",
        "publisher/_bundled/templates/email/digest.html",
        "publisher/store/migrations/env.py",
        "publisher/store/migrations/script.py.mako",
    ):
        assert expected in names
    assert any(n.startswith("publisher/store/migrations/versions/0001_") for n in names)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = (
        "from publisher.resources import bundled\n"
        "from publisher.store import open_store\n"
        "from publisher.taxonomy import load_taxonomy\n"
        "print(bundled('locales'))\n"
        "print(len(load_taxonomy().fields_of_work))\n"
        "open_store('sqlite:///var/x.db')\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            f"import sys; sys.path.insert(0, {str(tmp_path / 'site')!r})\n" + script,
        ],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    locales, fields = result.stdout.splitlines()
    assert Path(locales) == tmp_path / "site" / "publisher" / "_bundled" / "locales"
    assert fields == "23"
    assert (elsewhere / "var" / "x.db").is_file()
