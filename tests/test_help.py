"""Help texts and documents say what is there: no doubled defaults, every argument explained, examples
that match the README, and no pointer to a file that does not exist."""

import re
from pathlib import Path

import pytest

from i2sb.cli import build_parser

REPO = Path(__file__).resolve().parents[1]


def subparser(*names: str):
    parser = build_parser()
    for name in names:
        action = next(
            a for a in parser._actions if getattr(a, "choices", None) and name in a.choices
        )
        parser = action.choices[name]
    return parser


@pytest.mark.parametrize("command", [("data", "convert"), ("data", "demo"), ("data", "subset")])
def test_every_data_argument_is_explained_once(command):
    parser = subparser(*command)
    text = parser.format_help()
    assert "(default: None)" not in text
    for action in parser._actions:
        assert action.help, f"i2sb {' '.join(command)}: {action.dest} has no help"
        expanded = parser._get_formatter()._expand_help(action)  # as --help prints it
        assert expanded.count("(default") <= 1, expanded


def test_fid_reference_help_names_only_the_inception_weights():
    text = subparser("fid-reference").format_help()
    assert "pt_inception-2015-12-05-6726825d.pth" in text
    assert "resnet50" not in text and "CA" not in text and "LPIPS" not in text


def test_the_sample_help_example_is_the_readme_line():
    example = re.search(
        r"Example \(the README's\): (i2sb sample .*)",
        " ".join(subparser("sample").description.split()),
    )[1]
    readme = " ".join((REPO / "README.md").read_text().replace("\\\n", " ").split())
    documented = re.search(r"i2sb sample --ckpt .*?\.npz", readme)[0]
    options = lambda line: dict(re.findall(r"(--[\w-]+) (\S+)", line))  # noqa: E731
    assert {k: v for k, v in options(documented).items() if k in options(example)} == options(
        example
    )


def test_documents_point_only_to_files_that_exist():
    documents = [
        REPO / "README.md",
        REPO / "config" / "README.md",
        *sorted((REPO / "docs").glob("*.md")),
    ]
    for document in documents:
        text = document.read_text()
        named = set(re.findall(r"\]\(([^)#]+\.md)\)", text)) | set(
            re.findall(r"\b([A-Z]+\.md)\b", text)
        )
        for name in named:
            candidates = [document.parent / name, REPO / name, *REPO.glob(f"**/{name}")]
            assert any(c.is_file() for c in candidates), (
                f"{document.name} points to {name}, not in the repository"
            )
