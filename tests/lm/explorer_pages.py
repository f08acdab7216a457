"""The explorer's pages read back as a tree (the standard library's HTML parser; no browser): an element by id, its
text, a table's rows of cell texts, a plot's points by their tooltips."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = {"meta", "input", "br", "img", "link", "hr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(child if isinstance(child, str) else child.text() for child in self.children)

    def all(self, tag: str) -> list[Node]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                found += [child] if child.tag == tag else []
                found += child.all(tag)
        return found

    def by_id(self, ident: str) -> Node:
        for child in self.children:
            if isinstance(child, Node):
                if child.attrs.get("id") == ident:
                    return child
                try:
                    return child.by_id(ident)
                except KeyError:
                    pass
        raise KeyError(ident)

    def rows(self) -> list[list[str]]:
        """A table's rows (its header row first), each a list of its cells' texts."""
        return [[cell.text().strip() for cell in row.children if isinstance(cell, Node) and cell.tag in ("td", "th")]
                for row in self.all("tr")]

    def pairs(self) -> dict[str, str]:
        """A two-column table of names and values."""
        return {row[0]: row[1] for row in self.rows()}

    def points(self) -> dict[str, list[tuple[float, float]]]:
        """A line chart's points by series, from each dot's tooltip (``series: x, y``)."""
        series: dict[str, list[tuple[float, float]]] = {}
        for dot in self.all("circle"):
            name, _, xy = dot.text().rpartition(": ")
            x, y = (float(value) for value in xy.split(", "))
            series.setdefault(name, []).append((x, y))
        return series


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {key: value or "" for key, value in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {key: value or "" for key, value in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        while len(self.stack) > 1 and self.stack.pop().tag != tag:
            pass

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: str) -> Node:
    builder = _Builder()
    builder.feed(html)
    builder.close()
    return builder.root
