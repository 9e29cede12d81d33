"""strategy.parser: markdown strategy documents → an Outline, or a StrategyError naming the line."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strategy.parser import Outline, StrategyError, parse_strategy

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
PROJECT = Path(__file__).resolve().parents[1]


def md(text: str) -> str:
    """A synthetic document written inline: dedented, starting at line 1."""
    return textwrap.dedent(text).lstrip("\n")


def corpus_line(name: str, startswith: str) -> int:
    """The 1-based number of the only line of a corpus file that starts with `startswith`."""
    lines = (CORPUS / name).read_text(encoding="utf-8").splitlines()
    numbers = [index + 1 for index, line in enumerate(lines) if line.startswith(startswith)]
    assert len(numbers) == 1, numbers
    return numbers[0]


def refusal(data: bytes | str, **kwargs: int) -> StrategyError:
    with pytest.raises(StrategyError) as caught:
        parse_strategy(data, **kwargs)
    return caught.value


def titles(outline: Outline, kind: str = "task") -> list[str]:
    return [item.title for item in outline.items if item.kind == kind]


# --- the primary corpus document -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def cloud() -> Outline:
    return parse_strategy((CORPUS / "advanced_cloud_infrastructure_strategy.md").read_bytes())


def test_it_reads_the_title_and_subtitle(cloud: Outline) -> None:
    assert cloud.title == "Advanced Cloud Infrastructure Strategy"
    assert cloud.subtitle == "Business Continuity Cloud Infrastructure Framework"


def test_it_reads_the_front_matter(cloud: Outline) -> None:
    assert cloud.front_matter["title"] == "Advanced Cloud Infrastructure Strategy"
    assert cloud.front_matter["category"] == "04_business_strategy"
    assert cloud.front_matter["tags"] == ["strategy"]
    assert cloud.front_matter["created"] == "2025-10-29"


def test_it_reads_document_control_from_the_header_and_the_footer(cloud: Outline) -> None:
    values = {name: control.value for name, control in cloud.control.items()}
    assert values == {
        "version": "1.0",
        "last_updated": "December 2024",
        "review_date": "March 2025",
        "owner": "Chief Cloud Officer",
        "approver": "CEO",
        "next_review": "March 2025",
        "distribution": "All Cloud Team Members",
    }
    assert cloud.control["last_updated"].date == date(2024, 12, 1)
    assert cloud.control["review_date"].date == date(2025, 3, 1)
    assert cloud.control["next_review"].date == date(2025, 3, 1)


def test_every_control_value_column_points_at_its_value(cloud: Outline) -> None:
    for control in cloud.control.values():
        line = cloud.lines[control.line - 1]
        assert line[control.value_column :].startswith(control.value), control


def test_it_finds_three_phases_with_windows_and_objectives(cloud: Outline) -> None:
    assert [phase.code for phase in cloud.phases] == ["P1", "P2", "P3"]
    assert [(phase.start_month, phase.end_month) for phase in cloud.phases] == [(1, 6), (7, 12), (13, 18)]
    assert [phase.objectives.split()[0] for phase in cloud.phases] == ["Establish", "Enhance", "Achieve"]


def test_it_counts_every_task_practice_and_metric(cloud: Outline) -> None:
    assert len(titles(cloud, "task")) == 216
    assert len(titles(cloud, "practice")) == 48
    assert len(cloud.metrics) == 32


def test_every_metric_sits_under_a_heading_about_metrics(cloud: Outline) -> None:
    for metric in cloud.metrics:
        assert any("Metric" in title for title in metric.path), metric.path


def test_every_roadmap_task_is_filed_under_its_phase_heading(cloud: Outline) -> None:
    roadmap_end = next(section.line for section in cloud.sections if section.path == ("Cloud Capabilities",))
    starts = [phase.line for phase in cloud.phases] + [roadmap_end]
    for phase, start, end in zip(cloud.phases, starts, starts[1:], strict=False):
        assert phase.section_path is not None
        assert phase.section_path[-1].startswith(f"Phase {phase.number}: ")
        tasks = [item for item in cloud.items if item.kind == "task" and start < item.line < end]
        assert tasks, phase
        for task in tasks:
            assert task.path[: len(phase.section_path)] == phase.section_path, task


def test_appendix_headings_are_kept_as_sections_without_items(cloud: Outline) -> None:
    appendices = [section for section in cloud.sections if section.path[:1] == ("Appendices",)]
    assert [section.title[:3] for section in appendices[1:]] == ["A. ", "B. ", "C. ", "D. ", "E. "]
    appendix_paths = {section.path for section in appendices}
    assert not [item for item in cloud.items if item.path in appendix_paths]
    assert not [metric for metric in cloud.metrics if metric.path in appendix_paths]


def test_it_reads_the_cloud_strategy_without_warnings(cloud: Outline) -> None:
    assert cloud.warnings == []


def test_item_and_metric_keys_are_unique(cloud: Outline) -> None:
    item_keys = [item.key for item in cloud.items]
    metric_keys = [metric.key for metric in cloud.metrics]
    assert all(item_keys) and len(set(item_keys)) == len(item_keys)
    assert all(metric_keys) and len(set(metric_keys)) == len(metric_keys)


# --- the other corpus documents ------------------------------------------------------------------------


def test_it_reads_the_hipaa_roadmap() -> None:
    name = "hipaa_attachments_security_hardening_roadmap.md"
    outline = parse_strategy((CORPUS / name).read_bytes())

    assert len(titles(outline, "task")) == 182
    assert outline.control["version"].value == "1.0"
    assert outline.control["last_updated"].date == date(2025, 11, 23)
    next_review = corpus_line(name, "**Next Review:**")
    assert outline.control["next_review"].line == next_review
    assert outline.control["next_review"].date is None
    assert [w for w in outline.warnings if w.startswith(f"line {next_review}: Next Review ")]


def test_it_reads_the_board_policy_and_flags_its_template_expressions() -> None:
    name = "noorg_board_governance_policy.md"
    outline = parse_strategy((CORPUS / name).read_bytes())

    assert outline.control["document_id"].value == "POL-BOD-2024-001"
    assert outline.control["version"].value == "1.0"
    assert outline.items == []
    for label in ("- Last Updated: <%", "- Next Review: <%"):
        number = corpus_line(name, label)
        assert [
            warning
            for warning in outline.warnings
            if warning.startswith(f"line {number}: ") and "unrendered template expression" in warning
        ], label


def test_it_reads_the_educational_technology_strategy() -> None:
    name = "noorg_educational_technology_strategy.md"
    outline = parse_strategy((CORPUS / name).read_bytes())

    assert outline.control["owner"].value == "Educational Technology Lead"
    # The last line has no newline after it and must still be read.
    assert outline.control["review_cycle"].value == "Annual with quarterly progress assessment"
    current_date = corpus_line(name, "**Last Updated**:")
    assert [w for w in outline.warnings if w.startswith(f"line {current_date}: ") and "[Current Date]" in w]
    assert [(phase.number, phase.start_month, phase.end_month) for phase in outline.phases] == [
        (1, 1, 6),
        (2, 7, 12),
        (3, 13, 18),
        (4, 19, 24),
        (5, 25, 36),
    ]
    assert outline.metrics
    assert {metric.path for metric in outline.metrics} == {("Success Metrics",)}
    assert outline.metrics[0].name == "Adoption Rates"


# --- tasks ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "done"),
    [
        ("- [ ] Write the plan", False),
        ("- [x] Write the plan", True),
        ("- [X] Write the plan", True),
        ("* [ ] Write the plan", False),
        ("+ [ ] Write the plan", False),
        ("    - [x] Write the plan", True),
        ("\t* [ ] Write the plan", False),
    ],
)
def test_it_reads_a_task_with_any_bullet_mark_and_indentation(line: str, done: bool) -> None:
    outline = parse_strategy(f"# T\n\n## Work\n{line}\n")

    [item] = outline.items
    assert (item.path, item.title, item.kind, item.done, item.line) == (
        ("Work",),
        "Write the plan",
        "task",
        done,
        4,
    )
    assert line[item.mark_column] in " xX"
    assert line[item.text_column :] == "Write the plan"


def test_an_empty_task_is_skipped_with_a_warning() -> None:
    outline = parse_strategy("# T\n\n## Work\n- [ ]\n- [ ] Real\n")

    assert titles(outline) == ["Real"]
    assert any(warning.startswith("line 4: empty checklist item") for warning in outline.warnings)


def test_a_duplicate_task_in_one_section_is_refused_naming_both_lines() -> None:
    error = refusal("# T\n\n## Work\n- [ ] Patch servers\n- [ ] Audit\n- [ ] patch servers.\n")

    assert error.line == 6
    assert "line 4" in error.message
    assert str(error).startswith("line 6: duplicate item")


def test_the_same_task_in_two_groups_is_two_items() -> None:
    outline = parse_strategy(
        md("""
        # T

        ## Work
        **Servers:**
        - [ ] Patch
        **Laptops:**
        - [ ] Patch
        """)
    )

    assert [(item.path, item.title) for item in outline.items] == [
        (("Work", "Servers"), "Patch"),
        (("Work", "Laptops"), "Patch"),
    ]
    assert outline.items[0].key != outline.items[1].key


def test_a_fence_is_closed_only_by_a_fence_at_least_as_long() -> None:
    outline = parse_strategy(
        md("""
        # T

        ## Work
        ````markdown
        ```
        - [ ] Example inside the outer fence
        ```
        ````
        - [ ] Real task
        """)
    )
    assert [item.title for item in outline.items] == ["Real task"]


def test_tasks_inside_fenced_code_are_not_items() -> None:
    outline = parse_strategy(
        md("""
        # T

        ## Work
        - [ ] Before
        ```markdown
        - [ ] Inside backticks
        ~~~
        - [ ] Still inside
        ```
        - [ ] Between
        ~~~
        - [ ] Inside tildes
        ~~~
        - [ ] After
        """)
    )

    assert titles(outline) == ["Before", "Between", "After"]


def test_crlf_input_parses_like_lf() -> None:
    lf = md("""
        ---
        title: Plan
        tags: [a, b]
        ---
        # Plan

        **Owner:** Jane

        ## Phase 1: Start (Months 1-6)
        **Objectives:** Begin
        **Core:**
        - [ ] One
        - [x] Two

        ## Metrics
        - **Uptime:** Share of minutes up
        """)
    crlf = lf.replace("\n", "\r\n")

    from_lf = parse_strategy(lf.encode())
    from_crlf = parse_strategy(crlf.encode())

    assert from_lf.newline == "\n"
    assert from_crlf.newline == "\r\n"
    assert dataclasses.replace(from_crlf, newline="\n") == from_lf
    assert len(from_lf.items) == 2 and len(from_lf.metrics) == 1


# --- phases --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("heading", "name", "window"),
    [
        ("Phase 2: Cloud Enhancement (Months 7–12)", "Cloud Enhancement", (7, 12)),
        ("Phase 2: Cloud Enhancement (Months 7-12)", "Cloud Enhancement", (7, 12)),
        ("Phase 1: Pilot (Month 3)", "Pilot", (3, 3)),
        ("Phase 1: Planning (Q1-Q2)", "Planning", (1, 6)),
        ("Stage 1 - Discovery", "Discovery", (None, None)),
        ("Phase 4", "Phase 4", (None, None)),
    ],
)
def test_a_phase_heading_creates_a_phase(heading: str, name: str, window: tuple[int | None, ...]) -> None:
    outline = parse_strategy(f"# T\n\n## Roadmap\n\n### {heading}\n- [ ] Do it\n")

    [phase] = outline.phases
    assert (phase.name, phase.start_month, phase.end_month, phase.line) == (name, *window, 5)
    assert phase.section_path == ("Roadmap", heading)
    assert outline.items[0].path == ("Roadmap", heading)


def test_objectives_on_the_label_line_set_the_phase_objectives() -> None:
    outline = parse_strategy("# T\n\n## Phase 1: Start (Months 1-6)\n**Objectives:** Lay the groundwork\n")

    assert outline.phases[0].objectives == "Lay the groundwork"


def test_objectives_written_as_bullets_under_the_label_are_collected() -> None:
    outline = parse_strategy(
        md("""
        # T

        ## Phase 1: Start (Months 1-6)
        **Objectives:**
        - Hire the team
        - Pick a provider

        - Sign the contract
        Other prose ends the list.
        - Not an objective
        """)
    )

    assert outline.phases[0].objectives == "Hire the team\nPick a provider\nSign the contract"


# --- groups and practices ------------------------------------------------------------------------------


def test_a_bold_label_opens_a_bold_group() -> None:
    outline = parse_strategy("# T\n\n## Phase 1: Start\n**Core Features:**\n- [ ] Build it\n")

    group = outline.sections[-1]
    assert (group.path, group.style, group.line) == (("Phase 1: Start", "Core Features"), "bold", 4)
    assert outline.items[0].path == group.path


def test_a_numbered_bold_label_opens_a_numbered_group_of_practices() -> None:
    text = md("""
        # T

        ## Architecture
        1. **Cloud-Native Design**
           - **Microservices:** Split the monolith
           - [ ] Containerise the build
        2. **Multi-Cloud**
           - **Diversification:** Two providers
        """)
    outline = parse_strategy(text)

    assert [(section.path, section.style) for section in outline.sections] == [
        (("Architecture",), "heading"),
        (("Architecture", "Cloud-Native Design"), "numbered"),
        (("Architecture", "Multi-Cloud"), "numbered"),
    ]
    practices = [item for item in outline.items if item.kind == "practice"]
    assert [(item.path[-1], item.title, item.description) for item in practices] == [
        ("Cloud-Native Design", "Microservices", "Split the monolith"),
        ("Multi-Cloud", "Diversification", "Two providers"),
    ]
    line = outline.lines[practices[0].line - 1]
    assert line[practices[0].text_column :] == "Split the monolith"
    assert titles(outline) == ["Containerise the build"]


def test_a_labelled_bullet_outside_a_numbered_group_is_not_an_item() -> None:
    outline = parse_strategy(
        md("""
        # T

        ## Risks
        - **Budget Constraints:** Phased implementation
        **Mitigations**
        - **Security Threats:** Monitoring
        """)
    )

    assert outline.items == []
    assert outline.metrics == []


def test_labelled_bullets_under_a_metrics_heading_are_metrics() -> None:
    outline = parse_strategy(
        md("""
        # T

        ## Cloud Metrics
        1. **Infrastructure Performance**
           - **Availability:** Share of time the platform is up

        ## Success Metrics
        - **Cost Efficiency:** Spend per workload
        """)
    )

    assert [(metric.path, metric.name, metric.description) for metric in outline.metrics] == [
        (("Cloud Metrics", "Infrastructure Performance"), "Availability", "Share of time the platform is up"),
        (("Success Metrics",), "Cost Efficiency", "Spend per workload"),
    ]
    assert outline.items == []


# --- document control ----------------------------------------------------------------------------------


def test_it_reads_document_control_from_a_two_column_table() -> None:
    outline = parse_strategy(
        md("""
        # T

        | Field | Value |
        |---|---|
        | Owner | Jane Doe |
        | **Version** | 2.1 |
        | Next Review Date | 2025-03 |
        | Status | Active | extra |
        """)
    )

    assert {name: control.value for name, control in outline.control.items()} == {
        "owner": "Jane Doe",
        "version": "2.1",
        "next_review": "2025-03",
    }
    assert outline.control["owner"].line == 5
    assert outline.control["next_review"].date == date(2025, 3, 1)


def test_a_table_value_column_points_into_the_value_cell() -> None:
    # The writer replaces the text at value_column; a column inside the label cell would overwrite the label.
    outline = parse_strategy("# T\n\n| Owner | Owner |\n")

    control = outline.control["owner"]
    line = outline.lines[control.line - 1]
    assert control.value_column > line.index("|", 1)


def test_it_reads_document_control_from_bold_bullets() -> None:
    outline = parse_strategy(
        md("""
        # T

        ## Governance
        - **Owner:** Chief Cloud Officer
        - **Approved By:** CEO
        - **Last Updated:** March 1, 2025
        """)
    )

    assert outline.control["owner"].value == "Chief Cloud Officer"
    assert outline.control["approver"].value == "CEO"
    assert outline.control["last_updated"].date == date(2025, 3, 1)
    assert outline.items == []


def test_it_reads_plain_control_bullets_under_a_metadata_line() -> None:
    outline = parse_strategy(
        md("""
        # T

        ## Notes
        - Owner: Not control, no control block yet

        ---
        **Metadata**
        - Created: 2024-01-01
        - Owner: Board of Directors
        - Document ID: POL-7
        """)
    )

    assert {name: control.value for name, control in outline.control.items()} == {
        "owner": "Board of Directors",
        "document_id": "POL-7",
    }
    assert outline.control["owner"].line == 9


def test_a_control_label_given_again_with_another_value_warns_and_keeps_the_first() -> None:
    outline = parse_strategy("# T\n\n**Owner:** Alice\n\n## Work\n- [ ] A\n\n**Document Owner:** Bob\n")

    assert outline.control["owner"].value == "Alice"
    [warning] = outline.warnings
    assert warning.startswith("line 8: ")
    assert "line 3" in warning and "Alice" in warning and "Bob" in warning


def test_a_control_label_given_again_with_the_same_value_is_silent() -> None:
    outline = parse_strategy("# T\n\n**Owner:** Alice\n\n## Work\n- [ ] A\n\n**Owner:** Alice\n")

    assert outline.control["owner"].line == 3
    assert outline.warnings == []


# --- headings ------------------------------------------------------------------------------------------


def test_a_deeper_heading_nests_under_the_nearest_shallower_one() -> None:
    outline = parse_strategy(
        md("""
        # T

        ## A
        #### Deep
        - [ ] One
        ### Middle
        - [ ] Two
        ## B
        - [ ] Three
        """)
    )

    assert [section.path for section in outline.sections] == [("A",), ("A", "Deep"), ("A", "Middle"), ("B",)]
    assert [item.path for item in outline.items] == [("A", "Deep"), ("A", "Middle"), ("B",)]


def test_a_repeated_heading_under_the_same_parent_merges_with_a_warning() -> None:
    outline = parse_strategy("# T\n\n## Work\n- [ ] One\n## Other\n## Work\n- [ ] Two\n")

    assert [section.path for section in outline.sections] == [("Work",), ("Other",)]
    assert [item.path for item in outline.items] == [("Work",), ("Work",)]
    [warning] = outline.warnings
    assert warning.startswith("line 6: ") and "line 3" in warning


def test_the_same_heading_under_different_parents_is_two_sections() -> None:
    outline = parse_strategy("# T\n\n## A\n### Tools\n- [ ] One\n## B\n### Tools\n- [ ] One\n")

    assert [item.path for item in outline.items] == [("A", "Tools"), ("B", "Tools")]
    assert outline.warnings == []


def test_content_before_the_first_section_heading_goes_to_general() -> None:
    outline = parse_strategy("# T\n\n- [ ] Early\n\n## Work\n- [ ] Later\n")

    assert [(item.path, item.title) for item in outline.items] == [
        (("General",), "Early"),
        (("Work",), "Later"),
    ]
    assert outline.sections[0].path == ("General",)
    [warning] = outline.warnings
    assert warning.startswith("line 3: ") and "General" in warning


def test_a_document_without_a_title_heading_takes_the_first_heading() -> None:
    outline = parse_strategy("## Work\n- [ ] A\n")

    assert outline.title == "Work"
    assert any("no '# Title' heading" in warning for warning in outline.warnings)


def test_the_executive_summary_becomes_the_summary() -> None:
    outline = parse_strategy("# T\n\n## Executive Summary\nFirst paragraph.\n\n\nSecond.\n\n---\n\nNot it.\n")

    assert outline.summary == "First paragraph.\n\nSecond."


def test_a_blank_group_label_does_not_make_an_untitled_section() -> None:
    # Empty headings are ignored with a warning; a bold label holding only a no-break space must not become
    # a section with an empty title either.
    outline = parse_strategy("# T\n\n## Work\n**\u00a0**\n- [ ] A\n")

    assert all(section.title for section in outline.sections), outline.sections


def test_a_blank_practice_label_is_not_an_untitled_item() -> None:
    # An empty task is skipped with a warning; an empty practice label must not become an item without a title.
    outline = parse_strategy("# T\n\n## Work\n1. **Group**\n   - ** :** Some text\n")

    assert all(item.title for item in outline.items), outline.items


# --- documents Cairn refuses ---------------------------------------------------------------------------


def test_strategy_error_text_names_the_line() -> None:
    assert str(StrategyError("bad", 7)) == "line 7: bad"
    assert str(StrategyError("bad")) == "bad"


def test_it_refuses_text_that_is_not_utf8_naming_the_line() -> None:
    error = refusal(b"# T\n\n## S\n- [ ] caf\xe9\n")

    assert error.line == 4
    assert "UTF-8" in error.message


def test_it_names_the_same_line_for_undecodable_text_whatever_the_line_endings() -> None:
    # The parser treats a lone CR as a line break, so its errors must count lines the same way.
    for newline in (b"\n", b"\r\n", b"\r"):
        error = refusal(newline.join([b"# T", b"", b"## S", b"- [ ] caf\xe9", b""]))
        assert error.line == 4, newline


@pytest.mark.parametrize(("data", "line"), [(b"# T\n\n## S\n- [ ] a\x00b\n", 4), (b"# T\x07\n", 1)])
def test_it_refuses_binary_content_naming_the_line(data: bytes, line: int) -> None:
    error = refusal(data)

    assert error.line == line
    assert "binary" in error.message


@pytest.mark.parametrize(
    "data", [b"", "", b"   \n\t\n  \r\n", "\ufeff\n"], ids=["no bytes", "no text", "whitespace", "bom"]
)
def test_it_refuses_an_empty_document(data: bytes | str) -> None:
    error = refusal(data)

    assert "empty" in error.message


def test_it_refuses_a_document_without_headings() -> None:
    error = refusal("Just prose.\n- [ ] A task\n**Owner:** Jane\n")

    assert "no headings" in error.message


def test_it_refuses_front_matter_that_is_never_closed() -> None:
    error = refusal("---\ntitle: Plan\n# Plan\n")

    assert error.line == 1
    assert "never closed" in error.message


def test_it_refuses_front_matter_that_is_not_yaml_naming_the_line() -> None:
    error = refusal("---\ntitle: Plan\ncategory: a: b\n---\n# Plan\n")

    assert error.line == 3
    assert "not valid YAML" in error.message


def test_it_refuses_front_matter_that_is_a_list() -> None:
    error = refusal("---\n- title\n- tags\n---\n# Plan\n")

    assert error.line == 2
    assert "key: value" in error.message


def test_it_refuses_an_impossible_front_matter_date_naming_its_line() -> None:
    error = refusal("---\ncreated: 2025-13-45\n---\n# Plan\n")

    assert "front matter" in error.message
    assert error.line == 2


def test_it_refuses_a_file_over_the_size_limit() -> None:
    data = b"# Plan\n" + b"x" * 100

    assert parse_strategy(data, max_bytes=len(data)).title == "Plan"
    error = refusal(data, max_bytes=len(data) - 1)
    assert "CAIRN_STRATEGY_MAX_BYTES" in error.message


def test_it_refuses_a_task_longer_than_1000_characters() -> None:
    assert titles(parse_strategy(f"# T\n\n## S\n- [ ] {'a' * 1000}\n")) == ["a" * 1000]

    error = refusal(f"# T\n\n## S\n- [ ] {'a' * 1001}\n")
    assert error.line == 4
    assert "1001" in error.message and "1000" in error.message


def test_it_refuses_a_title_longer_than_200_characters() -> None:
    assert parse_strategy(f"# {'T' * 200}\n").title == "T" * 200

    error = refusal(f"# {'T' * 201}\n\n## S\n")
    assert error.line == 1
    assert "title" in error.message


def test_a_tiny_front_matter_with_yaml_aliases_is_refused_without_exhausting_memory() -> None:
    # 450 bytes of nested YAML aliases expand to billions of characters when a value is turned into text.
    # Run in a child whose address space is capped, so a regression fails with MemoryError instead of
    # taking this machine's memory.
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 9)]
    document = "---\n" + "\n".join(levels) + "\ntitle: *a8\n---\n# Plan\n"
    child = textwrap.dedent("""
        import resource, sys
        from strategy.parser import StrategyError, parse_strategy
        resource.setrlimit(resource.RLIMIT_AS, (256 * 1024 * 1024, 256 * 1024 * 1024))
        try:
            parse_strategy(sys.stdin.read())
        except StrategyError:
            pass
    """)

    result = subprocess.run(
        [sys.executable, "-c", child],
        input=document,
        capture_output=True,
        text=True,
        cwd=PROJECT,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr[-500:]


# --- properties ----------------------------------------------------------------------------------------


def parse_or_refuse(data: bytes | str) -> Outline | None:
    """The outline, or None when refused; any exception but StrategyError fails the test."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    last_line = raw.count(b"\n") + raw.count(b"\r") + 1
    try:
        outline = parse_strategy(data)
    except StrategyError as error:
        assert error.message
        assert error.line is None or 1 <= error.line <= last_line
        return None
    assert isinstance(outline, Outline)
    assert outline.title
    for warning in outline.warnings:
        assert 1 <= int(warning.split(":", 1)[0].removeprefix("line ")) <= len(outline.lines)
    return outline


# Bounded so the module runs in seconds; no example database, so a run writes nothing into the project.
BOUNDED = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

words = st.text(alphabet="abcXYZ Metric Phase 0123456789:()-–_*`.", max_size=24)
labels = (
    st.sampled_from(
        [
            "Owner",
            "Version",
            "Last Updated",
            "Next Review",
            "Distribution",
            "Objectives",
            "Metrics",
            "Phase 1",
            "Core",
        ]
    )
    | words
)
lines = st.one_of(
    st.builds(lambda n, t: f"{'#' * n} {t}", st.integers(1, 7), words),
    st.builds(lambda n, t: f"{'#' * n} Phase {t}", st.integers(1, 4), words),
    st.builds(lambda i, m, t: f"{' ' * i}- [{m}] {t}", st.integers(0, 4), st.sampled_from(" xX"), words),
    st.builds(lambda b, t: f"{b} [ ] {t}", st.sampled_from("*+"), words),
    st.builds(lambda i, lab, v: f"{' ' * i}**{lab}:** {v}", st.integers(0, 3), labels, words),
    st.builds(lambda lab, v: f"   - **{lab}:** {v}", labels, words),
    st.builds(lambda lab, v: f"- {lab}: {v}", labels, words),
    st.builds(lambda n, t: f"{n}. **{t}**", st.integers(1, 12), labels),
    st.builds(lambda t: f"**{t}**", labels),
    st.builds(lambda a, b: f"| {a} | {b} |", labels, words),
    st.sampled_from(
        [
            "",
            "---",
            "```",
            "~~~",
            "| a | b |",
            "**Document Control:**",
            "**Metadata**",
            "title: Plan",
            "tags: [a, b",
            "created: 2025-13-45",
            "## Executive Summary",
            "## Phase 2: Build (Months 7–12)",
            "### Phase 3: Scale (Q1-Q2)",
            "**Objectives:**",
            "- **Phase 1 (0-6 months)**: Start",
        ]
    ),
    st.text(st.characters(exclude_characters="\r\n"), max_size=30),
)
documents = st.builds(
    lambda body, end: "\n".join(body) + end, st.lists(lines, max_size=40), st.sampled_from(["", "\n"])
)


@BOUNDED
@given(st.text())
def test_any_text_parses_or_is_refused_with_a_strategy_error(text: str) -> None:
    parse_or_refuse(text)


@BOUNDED
@given(st.binary())
def test_any_bytes_parse_or_are_refused_with_a_strategy_error(data: bytes) -> None:
    parse_or_refuse(data)


@BOUNDED
@given(st.text(st.characters(codec=None) | st.characters(categories=["Cs"]), max_size=200))
def test_text_with_lone_surrogates_parses_or_is_refused_with_a_strategy_error(text: str) -> None:
    parse_or_refuse(text)


@BOUNDED
@given(documents)
def test_markdown_like_documents_parse_or_are_refused_with_a_strategy_error(text: str) -> None:
    parse_or_refuse(text)
    parse_or_refuse(text.encode("utf-8", "surrogatepass"))


@BOUNDED
@given(documents)
def test_parsed_items_have_unique_keys_and_known_sections(text: str) -> None:
    outline = parse_or_refuse(text)
    if outline is None:
        return
    section_paths = {section.path for section in outline.sections}
    keys = [item.key for item in outline.items]
    assert len(set(keys)) == len(keys)
    for item in outline.items:
        assert item.path in section_paths, item
    for metric in outline.metrics:
        assert metric.path in section_paths, metric


@BOUNDED
@given(documents)
def test_crlf_and_lf_documents_parse_alike(text: str) -> None:
    def outcome(data: str) -> Outline | str:
        try:
            return dataclasses.replace(parse_strategy(data), newline="\n")
        except StrategyError as error:
            return f"refused at line {error.line}"  # the message may give a byte offset, which CR shifts

    assert outcome(text.replace("\n", "\r\n")) == outcome(text)
