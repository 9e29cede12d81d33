"""YAML from users (front matter, import mappings, YAML uploads): safe types only, no aliases.

Aliases let a few hundred bytes expand into gigabytes; no document Cairn reads needs them. A bad date is
reported at its line like every other YAML error.
"""

from __future__ import annotations

from typing import Any

import yaml


class _UserYamlLoader(yaml.SafeLoader):
    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed here", self.peek_event().start_mark
            )
        return super().compose_node(parent, index)

    def construct_yaml_timestamp(self, node: Any) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is not a valid date ({exc})", node.start_mark
            ) from None


_UserYamlLoader.add_constructor("tag:yaml.org,2002:timestamp", _UserYamlLoader.construct_yaml_timestamp)


def load_yaml(text: str) -> Any:
    """Parse `text`; raises yaml.YAMLError (with a problem_mark where known) for anything it refuses."""
    return yaml.load(text, Loader=_UserYamlLoader)  # noqa: S506 - a SafeLoader subclass without aliases
