"""docs/profile-reference.md is what the generator writes from qualify/profile/ now: it cannot drift."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from helpers import REPO
from qualify import cli
from qualify.docs import profile_reference, undocumented
from qualify.profile import BitsPerSecond, Revision, Seconds

REFERENCE = REPO / "docs" / "profile-reference.md"
REGENERATE = ".venv/bin/qualify profile reference --output docs/profile-reference.md"


def test_committed_profile_reference_is_what_the_schema_generates():
    assert REFERENCE.read_text() == profile_reference(), (
        f"docs/profile-reference.md differs from the schema in qualify/profile/: regenerate it with\n"
        f"    {REGENERATE}\nand commit it with the profile change")


def test_reference_names_every_field_of_every_section_with_its_dotted_key():
    text = profile_reference()
    for key in ("`checks.thermal`", "`max_package_temp_c`", "`watch.kernel_log`", "`checks.network.links[]`",
                "`checks.storage.drives[].spec`"):
        assert key in text


class _Item(BaseModel):
    """An entry of a list."""

    name: str = Field(min_length=1, description="what it is called")


class _Section(BaseModel):
    """A section of a made-up profile."""

    wait: Seconds = Field(90.0, gt=0, le=3600, description="how long | with a pipe")
    rate: BitsPerSecond | None = Field(None, description="a rate")
    revision: Revision | None = None
    mode: Literal["warn", "fail"] = Field("warn", description="what happens")
    items: list[_Item] = Field([], description="the entries")


class _Root(BaseModel):
    host: str = Field(description="where")
    section: _Section = _Section()


def test_types_defaults_bounds_and_descriptions_are_rendered_from_the_schema():
    text = profile_reference(_Root)
    assert "| `host` | text | **required** |  | where |" in text
    assert "| `section` | section | | | see [`section`](#section) |" in text
    assert "## `section`\n\nA section of a made-up profile." in text
    assert "| `wait` | duration | `1m30s` | > 0, ≤ 1h | how long \\| with a pipe |" in text  # the pipe escaped
    assert "| `rate` | rate | *unset* |  | a rate |" in text
    assert "| `revision` | revision | *unset* |  |  |" in text
    assert "| `mode` | `warn` or `fail` | `warn` |  | what happens |" in text
    assert "| `items` | list of [`section.items[]`](#sectionitems) entries | `[]` |  | the entries |" in text
    assert "## `section.items[]`\n\nAn entry of a list." in text
    assert "| `name` | text | **required** | not empty | what it is called |" in text


def test_fields_without_a_description_are_listed():
    assert undocumented(_Root) == ["section.revision"]


def test_qualify_profile_reference_prints_or_writes_the_reference(capsys, tmp_path):
    assert cli.main(["profile", "reference"]) == 0
    assert capsys.readouterr().out == profile_reference()
    assert cli.main(["profile", "reference", "--output", str(tmp_path / "ref.md")]) == 0
    assert (tmp_path / "ref.md").read_text() == profile_reference()
